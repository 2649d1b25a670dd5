//! Configuration, read once at start: `config/nudge.toml` (or the file `NUDGE_CONFIG` names),
//! overridden by environment variables. Every setting has a file key, an environment variable, a
//! default and an example; a bad value is reported with all three so the fix is obvious.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use url::Url;

use crate::domain::schedule::{QuietDays, Schedule, parse_time_zone, parse_weekday};
use crate::platforms::{Configured, REGISTRY};
use crate::store::{Backend, backend_of};

/// The file read when `NUDGE_CONFIG` is not set, relative to the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "config/nudge.toml";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where platforms reach this server; needed to print the URLs to paste into their settings.
    pub public_url: Option<Url>,
    pub request_timeout: Duration,
    /// Connections served at once, and how long one may take to send its headers or sit idle.
    pub connections: crate::http::ConnectionLimits,
    pub log_format: LogFormat,
    pub database_url: SecretString,
    pub database_max_connections: u32,
    pub encryption_key: Option<EncryptionKey>,
    pub defaults: Defaults,
    /// How long a post may stay "sending" before its outcome is looked up on the platform.
    pub reconcile_after: Duration,
    /// The chat platforms configured, each with its own settings (see `platforms`).
    pub platforms: Vec<Arc<dyn Configured>>,
    /// The file the settings were read from, if any.
    pub file: Option<PathBuf>,
}

/// What a channel gets until its team changes it.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub time_zone: Tz,
    pub checkin: Schedule,
    pub max_open_pledges: u32,
    pub escalate_after_days: u32,
    /// The shortest time allowed between two check-ins of a channel; a schedule that fires more
    /// often is refused, so no team can make nudge nag.
    pub min_checkin_interval_minutes: u32,
    /// Weekdays on which a new channel gets no automated posts (existing channels keep theirs).
    pub quiet_days: QuietDays,
    /// Where people reach this server, for the links nudge gives in chat (the dashboard).
    pub public_url: Option<Url>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The 32-byte key that encrypts bot tokens at rest (AES-256-GCM).
#[derive(Clone)]
pub struct EncryptionKey(std::sync::Arc<SecretBox<[u8; 32]>>);

impl EncryptionKey {
    pub fn bytes(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([REDACTED])")
    }
}

impl Config {
    pub fn backend(&self) -> Backend {
        backend_of(self.database_url.expose_secret()).unwrap_or(Backend::Sqlite)
    }

    /// The database location safe to print: the SQLite path, or the Postgres host and database
    /// without user or password.
    pub fn database_display(&self) -> String {
        let url = self.database_url.expose_secret();
        match self.backend() {
            Backend::Sqlite => {
                let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                format!("SQLite at {path}")
            }
            Backend::Postgres => match Url::parse(url) {
                Ok(u) => format!("Postgres at {}{}", u.host_str().unwrap_or("localhost"), u.path()),
                Err(_) => "Postgres".to_string(),
            },
        }
    }
}

/// One bad setting: which key, what is wrong, and a value that would work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
    pub example: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (example: {})", self.key, self.problem, self.example)
    }
}

/// Every bad setting at once, so one restart fixes them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for error in &self.0 {
            writeln!(f, "  - {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// One setting as documented in config/nudge.toml. The core's are below; each platform brings its
/// own section (see `platforms::REGISTRY`).
#[derive(Debug)]
pub struct Setting {
    /// Dotted key in the TOML file: `section.name`.
    pub key: &'static str,
    pub env: &'static str,
    pub default: Option<&'static str>,
    pub example: &'static str,
    pub secret: bool,
}

/// Every setting nudge knows: the core's and each registered platform's.
fn all_settings() -> impl Iterator<Item = &'static Setting> {
    SETTINGS.iter().chain(REGISTRY.iter().flat_map(|platform| platform.settings.iter()))
}

const SETTINGS: &[Setting] = &[
    Setting {
        key: "server.listen",
        env: "NUDGE_LISTEN",
        default: Some("127.0.0.1:3000"),
        example: "0.0.0.0:8080",
        secret: false,
    },
    Setting {
        key: "server.public_url",
        env: "NUDGE_PUBLIC_URL",
        default: None,
        example: "https://nudge.example.com",
        secret: false,
    },
    Setting {
        key: "server.request_timeout_secs",
        env: "NUDGE_REQUEST_TIMEOUT_SECS",
        default: Some("10"),
        example: "10",
        secret: false,
    },
    Setting {
        key: "server.max_connections",
        env: "NUDGE_MAX_CONNECTIONS",
        default: Some("1024"),
        example: "1024",
        secret: false,
    },
    Setting {
        key: "server.idle_timeout_secs",
        env: "NUDGE_IDLE_TIMEOUT_SECS",
        default: Some("20"),
        example: "20",
        secret: false,
    },
    Setting {
        key: "server.log_format",
        env: "NUDGE_LOG_FORMAT",
        default: Some("text"),
        example: "json",
        secret: false,
    },
    Setting {
        key: "database.url",
        env: "DATABASE_URL",
        default: Some("sqlite://nudge.db"),
        example: "postgres://nudge@127.0.0.1:5432/nudge",
        secret: true,
    },
    Setting {
        key: "database.max_connections",
        env: "NUDGE_DATABASE_MAX_CONNECTIONS",
        default: Some("10"),
        example: "20",
        secret: false,
    },
    Setting {
        key: "security.encryption_key",
        env: "NUDGE_ENCRYPTION_KEY",
        default: None,
        example: "the output of `openssl rand -base64 32`",
        secret: true,
    },
    Setting {
        key: "defaults.time_zone",
        env: "NUDGE_DEFAULT_TIME_ZONE",
        default: Some("UTC"),
        example: "Europe/Berlin",
        secret: false,
    },
    Setting {
        key: "defaults.checkin",
        env: "NUDGE_DEFAULT_CHECKIN",
        default: Some("mon 09:30"),
        example: "mon 09:30 or 30 9 * * 1",
        secret: false,
    },
    Setting {
        key: "defaults.max_open_pledges",
        env: "NUDGE_MAX_OPEN_PLEDGES",
        default: Some("3"),
        example: "3",
        secret: false,
    },
    Setting {
        key: "outbox.reconcile_after_secs",
        env: "NUDGE_OUTBOX_RECONCILE_AFTER_SECS",
        default: Some("120"),
        example: "120",
        secret: false,
    },
    Setting {
        key: "defaults.escalate_after_days",
        env: "NUDGE_ESCALATE_AFTER_DAYS",
        default: Some("3"),
        example: "3",
        secret: false,
    },
    Setting {
        key: "defaults.min_checkin_interval_minutes",
        env: "NUDGE_MIN_CHECKIN_INTERVAL_MINUTES",
        default: Some("1440"),
        example: "1440",
        secret: false,
    },
    Setting {
        key: "defaults.quiet_days",
        env: "NUDGE_QUIET_DAYS",
        default: Some("sat,sun"),
        example: "sat,sun",
        secret: false,
    },
];

/// Where a value came from, named the way the operator would look for it.
enum Origin {
    Env(&'static str),
    File(String),
    Default,
}

/// Where settings are read from: the environment over the file over the defaults. Platforms read
/// their own section through it.
pub struct Sources<'a> {
    env: &'a HashMap<String, String>,
    file: HashMap<String, String>,
    file_path: Option<PathBuf>,
    errors: Vec<ConfigError>,
}

impl Sources<'_> {
    /// Whether a setting was given (not defaulted), without reading it.
    pub fn is_set(&self, key: &str) -> bool {
        all_settings().find(|s| s.key == key).is_some_and(|setting| {
            self.env.get(setting.env).is_some_and(|v| !v.trim().is_empty())
                || self.file.get(setting.key).is_some_and(|v| !v.trim().is_empty())
        })
    }

    /// Records a problem that is about settings together (one missing because another is set).
    pub fn problem(&mut self, key: &str, problem: &str, example: &str) {
        self.errors.push(ConfigError { key: key.into(), problem: problem.into(), example: example.into() });
    }

    fn raw(&self, setting: &Setting) -> Option<(String, Origin)> {
        if let Some(value) = self.env.get(setting.env).filter(|v| !v.trim().is_empty()) {
            return Some((value.trim().to_string(), Origin::Env(setting.env)));
        }
        if let Some(value) = self.file.get(setting.key).filter(|v| !v.trim().is_empty()) {
            let path = self.file_path.as_deref().map(Path::display).map(|p| p.to_string()).unwrap_or_default();
            return Some((value.trim().to_string(), Origin::File(format!("{} in {path}", setting.key))));
        }
        setting.default.map(|d| (d.to_string(), Origin::Default))
    }

    /// Reads and parses one setting; a bad value is recorded (never echoed when secret) and `None`
    /// returned, so every problem is collected before the start is refused.
    pub fn get<T>(&mut self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let setting = all_settings().find(|s| s.key == key).expect("every setting is declared");
        let (value, origin) = self.raw(setting)?;
        match parse(&value) {
            Ok(parsed) => Some(parsed),
            Err(problem) => {
                let key = match origin {
                    Origin::Env(name) => name.to_string(),
                    Origin::File(place) => place,
                    Origin::Default => setting.key.to_string(),
                };
                let problem = if setting.secret { problem } else { format!("{:?} {problem}", value) };
                let example = match setting.default {
                    Some(_) if !setting.secret => format!("{}={}", setting.env, setting.example),
                    _ => format!("{}=<{}>", setting.env, setting.example),
                };
                self.errors.push(ConfigError { key, problem, example });
                None
            }
        }
    }
}

impl Config {
    /// Loads the configuration from the file (if any) and the given environment.
    pub fn load(env: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
        let (file_path, file) = match read_file(env) {
            Ok(found) => found,
            Err(error) => return Err(ConfigErrors(vec![error])),
        };
        let mut sources = Sources { env, file, file_path: file_path.clone(), errors: Vec::new() };

        let listen = sources
            .get("server.listen", |v| v.parse::<SocketAddr>().map_err(|_| "is not an address and port".to_string()));
        let public_url = sources.get("server.public_url", parse_public_url);
        let request_timeout =
            sources.get("server.request_timeout_secs", |v| parse_number(v, 1, 300)).map(Duration::from_secs);
        let max_connections = sources.get("server.max_connections", |v| parse_number(v, 1, 1_000_000));
        let idle_timeout =
            sources.get("server.idle_timeout_secs", |v| parse_number(v, 1, 300)).map(Duration::from_secs);
        let log_format = sources.get("server.log_format", |v| match v {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("is not a log format; use text or json".to_string()),
        });
        let database_url = sources.get("database.url", |v| match backend_of(v) {
            Some(_) => Ok(SecretString::from(v.to_string())),
            None => Err("must start with postgres:// or sqlite://".to_string()),
        });
        let database_max_connections =
            sources.get("database.max_connections", |v| parse_number(v, 1, 1000).map(|n| n as u32));
        let encryption_key = sources.get("security.encryption_key", parse_encryption_key);
        let time_zone = sources.get("defaults.time_zone", |v| parse_time_zone(v).map_err(|e| e.to_string()));
        let checkin = sources.get("defaults.checkin", |v| Schedule::parse(v).map_err(|e| e.to_string()));
        let max_open_pledges = sources.get("defaults.max_open_pledges", |v| parse_number(v, 1, 100).map(|n| n as u32));
        let escalate_after_days =
            sources.get("defaults.escalate_after_days", |v| parse_number(v, 1, 60).map(|n| n as u32));
        // At most a week: the default check-in is weekly, and a longer limit would refuse it.
        let min_checkin_interval_minutes =
            sources.get("defaults.min_checkin_interval_minutes", |v| parse_number(v, 1, 10_080).map(|n| n as u32));
        if let (Some(schedule), Some(minutes)) = (&checkin, min_checkin_interval_minutes)
            && crate::domain::firings::gap_shorter_than(
                schedule,
                chrono::Duration::minutes(minutes.into()),
                // Any fixed instant will do: a year of firings from it shows the pattern's gaps.
                chrono::DateTime::UNIX_EPOCH,
            )
            .is_some()
        {
            sources.problem(
                "defaults.checkin",
                &format!(
                    "{:?} posts check-ins more often than defaults.min_checkin_interval_minutes ({minutes}) allows",
                    schedule.expression()
                ),
                "NUDGE_DEFAULT_CHECKIN=mon 09:30",
            );
        }
        let quiet_days = sources.get("defaults.quiet_days", parse_quiet_days);

        let reconcile_after =
            sources.get("outbox.reconcile_after_secs", |v| parse_number(v, 1, 86_400)).map(Duration::from_secs);
        let platforms: Vec<Arc<dyn Configured>> =
            REGISTRY.iter().filter_map(|platform| (platform.configure)(&mut sources)).collect();

        if !sources.errors.is_empty() {
            return Err(ConfigErrors(sources.errors));
        }
        // Every setting without a default is optional, so the only way to get here with a `None`
        // for a defaulted one is a parse error, which returned above.
        let missing = "defaulted settings are present";
        Ok(Config {
            listen: listen.expect(missing),
            public_url: public_url.clone(),
            request_timeout: request_timeout.expect(missing),
            connections: crate::http::ConnectionLimits {
                max_connections: max_connections.expect(missing) as usize,
                idle_timeout: idle_timeout.expect(missing),
            },
            log_format: log_format.expect(missing),
            database_url: database_url.expect(missing),
            database_max_connections: database_max_connections.expect(missing),
            encryption_key,
            defaults: Defaults {
                time_zone: time_zone.expect(missing),
                checkin: checkin.expect(missing),
                max_open_pledges: max_open_pledges.expect(missing),
                escalate_after_days: escalate_after_days.expect(missing),
                min_checkin_interval_minutes: min_checkin_interval_minutes.expect(missing),
                quiet_days: quiet_days.expect(missing),
                public_url,
            },
            reconcile_after: reconcile_after.expect(missing),
            platforms,
            file: file_path,
        })
    }
}

/// Reads the TOML file into dotted keys. Unknown keys are refused: a typo would otherwise be a
/// setting silently ignored.
fn read_file(env: &HashMap<String, String>) -> Result<(Option<PathBuf>, HashMap<String, String>), ConfigError> {
    let explicit = env.get("NUDGE_CONFIG").filter(|p| !p.trim().is_empty()).map(PathBuf::from);
    let path = match explicit {
        Some(path) if !path.is_file() => {
            return Err(ConfigError {
                key: "NUDGE_CONFIG".into(),
                problem: format!("{:?} is not a readable file", path.display().to_string()),
                example: format!("NUDGE_CONFIG={DEFAULT_CONFIG_FILE}"),
            });
        }
        Some(path) => path,
        None if Path::new(DEFAULT_CONFIG_FILE).is_file() => PathBuf::from(DEFAULT_CONFIG_FILE),
        None => return Ok((None, HashMap::new())),
    };
    let place = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
        key: place.clone(),
        problem: format!("cannot be read: {e}"),
        example: format!("NUDGE_CONFIG={DEFAULT_CONFIG_FILE}"),
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
        key: place.clone(),
        problem: format!("is not valid TOML: {}", e.message()),
        example: "listen = \"127.0.0.1:3000\" under [server]".into(),
    })?;
    let mut values = HashMap::new();
    for (section, entries) in &table {
        let Some(entries) = entries.as_table() else {
            return Err(unknown_key(&place, section));
        };
        for (name, value) in entries {
            let key = format!("{section}.{name}");
            if !all_settings().any(|s| s.key == key) {
                return Err(unknown_key(&place, &key));
            }
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(ConfigError {
                        key: format!("{key} in {place}"),
                        problem: "must be a string or a number".into(),
                        example: format!("{name} = \"…\""),
                    });
                }
            };
            values.insert(key, text);
        }
    }
    Ok((Some(path), values))
}

fn unknown_key(place: &str, key: &str) -> ConfigError {
    let known: Vec<&str> = all_settings().map(|s| s.key).collect();
    ConfigError {
        key: format!("{key} in {place}"),
        problem: "is not a setting nudge knows".into(),
        example: format!("one of {}", known.join(", ")),
    }
}

pub(crate) fn parse_number(value: &str, min: u64, max: u64) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("is not a whole number from {min} to {max}")),
    }
}

pub(crate) fn parse_public_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|_| "is not a URL".to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http(s) URL with a host".into());
    }
    Ok(url)
}

/// "sat,sun", "fri, sat" or "none": weekdays only (holidays are each channel's own).
fn parse_quiet_days(value: &str) -> Result<QuietDays, String> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("none") {
        return Ok(QuietDays::default());
    }
    let mut weekdays = Vec::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let day = parse_weekday(word)
            .ok_or_else(|| format!("has {word:?}, which is not a weekday; use mon … sun or none"))?;
        weekdays.push(day);
    }
    let quiet = QuietDays::from_stored(&QuietDays { weekdays, holidays: Vec::new() }.weekdays_to_stored(), "");
    if quiet.weekdays.len() == 7 {
        return Err("makes every day quiet, so nudge would never post; leave a day or more".into());
    }
    Ok(quiet)
}

fn parse_encryption_key(value: &str) -> Result<EncryptionKey, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| "is not base64 (the value is secret and not shown)".to_string())?;
    let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!("must decode to 32 bytes, not {} (the value is secret and not shown)", b.len())
    })?;
    Ok(EncryptionKey(std::sync::Arc::new(SecretBox::new(Box::new(key)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        // NUDGE_CONFIG pointing nowhere real would fail, so tests without a file point at an empty one.
        let mut map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if !map.contains_key("NUDGE_CONFIG") {
            let empty = std::env::temp_dir().join("nudge-config-test-empty.toml");
            std::fs::write(&empty, "").unwrap();
            map.insert("NUDGE_CONFIG".into(), empty.display().to_string());
        }
        map
    }

    #[test]
    fn no_configuration_serves_locally_on_an_sqlite_file() {
        let config = Config::load(&env(&[])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(config.database_url.expose_secret(), "sqlite://nudge.db");
        assert_eq!(config.database_display(), "SQLite at nudge.db");
        assert_eq!(config.defaults.max_open_pledges, 3);
        assert_eq!(config.defaults.checkin.expression(), "30 9 * * 1");
        assert!(config.encryption_key.is_none());
    }

    #[test]
    fn the_check_in_interval_limit_is_daily_by_default_and_bounds_the_default_schedule() {
        assert_eq!(Config::load(&env(&[])).unwrap().defaults.min_checkin_interval_minutes, 1440);
        let errors = Config::load(&env(&[("NUDGE_DEFAULT_CHECKIN", "0 9,17 * * *")])).unwrap_err();
        assert_eq!(errors.0[0].key, "defaults.checkin");
        assert!(errors.0[0].problem.contains("min_checkin_interval_minutes (1440)"), "{}", errors.0[0].problem);
        let lenient = [("NUDGE_DEFAULT_CHECKIN", "0 9,17 * * *"), ("NUDGE_MIN_CHECKIN_INTERVAL_MINUTES", "60")];
        assert_eq!(Config::load(&env(&lenient)).unwrap().defaults.min_checkin_interval_minutes, 60);
        let errors = Config::load(&env(&[("NUDGE_MIN_CHECKIN_INTERVAL_MINUTES", "0")])).unwrap_err();
        assert_eq!(errors.0[0].key, "NUDGE_MIN_CHECKIN_INTERVAL_MINUTES");
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nudge.toml");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:4000\"\n[defaults]\nmax_open_pledges = 5\n").unwrap();
        let config =
            Config::load(&env(&[("NUDGE_CONFIG", path.to_str().unwrap()), ("NUDGE_LISTEN", "0.0.0.0:5000")])).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:5000");
        assert_eq!(config.defaults.max_open_pledges, 5);
        assert_eq!(config.file.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn a_bad_value_names_the_key_the_problem_and_an_example() {
        let errors = Config::load(&env(&[("NUDGE_LISTEN", "localhost"), ("NUDGE_DEFAULT_TIME_ZONE", "Mars/Olympus")]))
            .unwrap_err();
        assert_eq!(errors.0.len(), 2, "{errors}");
        let listen = &errors.0[0];
        assert_eq!(listen.key, "NUDGE_LISTEN");
        assert!(listen.problem.contains("\"localhost\""), "{listen}");
        assert_eq!(listen.example, "NUDGE_LISTEN=0.0.0.0:8080");
        assert!(errors.to_string().contains("NUDGE_DEFAULT_TIME_ZONE"));
    }

    #[test]
    fn a_bad_secret_is_reported_without_its_value() {
        let errors =
            Config::load(&env(&[("NUDGE_ENCRYPTION_KEY", "c2hvcnQta2V5"), ("DATABASE_URL", "mysql://u:hunter2@h/db")]))
                .unwrap_err();
        let text = errors.to_string();
        assert!(text.contains("NUDGE_ENCRYPTION_KEY: must decode to 32 bytes, not 9"), "{text}");
        assert!(text.contains("DATABASE_URL: must start with postgres:// or sqlite://"), "{text}");
        assert!(!text.contains("c2hvcnQta2V5") && !text.contains("hunter2"), "{text}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let config = Config::load(&env(&[
            ("NUDGE_ENCRYPTION_KEY", &key),
            ("DATABASE_URL", "postgres://nudge:hunter2@db/nudge"),
        ]))
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2") && !debug.contains(&key), "{debug}");
        assert_eq!(config.database_display(), "Postgres at db/nudge");
        assert_eq!(config.encryption_key.unwrap().bytes(), &[7u8; 32]);
    }

    #[test]
    fn new_channels_are_quiet_at_weekends_unless_the_operator_says_otherwise() {
        let config = Config::load(&env(&[])).unwrap();
        assert_eq!(config.defaults.quiet_days.weekdays_to_stored(), "sat,sun");
        let config = Config::load(&env(&[("NUDGE_QUIET_DAYS", "fri, sat")])).unwrap();
        assert_eq!(config.defaults.quiet_days.weekdays_to_stored(), "fri,sat");
        let config = Config::load(&env(&[("NUDGE_QUIET_DAYS", "none")])).unwrap();
        assert!(config.defaults.quiet_days.weekdays.is_empty());
        let errors = Config::load(&env(&[("NUDGE_QUIET_DAYS", "caturday")])).unwrap_err();
        assert_eq!(errors.0[0].key, "NUDGE_QUIET_DAYS", "{errors}");
        assert!(errors.0[0].problem.contains("caturday"), "{errors}");
        let every = "mon,tue,wed,thu,fri,sat,sun";
        assert!(Config::load(&env(&[("NUDGE_QUIET_DAYS", every)])).is_err(), "every day quiet is refused");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused_rather_than_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nudge.toml");
        std::fs::write(&path, "[server]\nlisen = \"127.0.0.1:4000\"\n").unwrap();
        let errors = Config::load(&env(&[("NUDGE_CONFIG", path.to_str().unwrap())])).unwrap_err();
        assert!(errors.0[0].key.starts_with("server.lisen in "), "{errors}");
        assert!(errors.0[0].example.contains("server.listen"), "{errors}");
    }

    #[test]
    fn a_missing_config_file_that_was_asked_for_is_an_error() {
        let errors = Config::load(&env(&[("NUDGE_CONFIG", "/nonexistent/nudge.toml")])).unwrap_err();
        assert_eq!(errors.0[0].key, "NUDGE_CONFIG");
    }

    #[test]
    fn the_documented_config_file_parses_and_matches_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/nudge.toml");
        let config = Config::load(&env(&[("NUDGE_CONFIG", path)])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(config.database_url.expose_secret(), "sqlite://nudge.db");
        // Every setting is documented in the file, by key and by environment variable.
        let text = std::fs::read_to_string(path).unwrap();
        for setting in all_settings() {
            let name = setting.key.split('.').nth(1).unwrap();
            assert!(text.contains(name) && text.contains(setting.env), "{} is not documented", setting.key);
        }
    }
}
