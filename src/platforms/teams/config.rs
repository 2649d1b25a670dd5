//! Teams' settings section: the bot's Entra app (id, password, tenant), where its tokens are
//! checked and had, which hosts may receive its token, and the start-up lines that say which URLs
//! to paste into the Azure Bot and where the app package is.

use std::any::Any;
use std::sync::Arc;

use secrecy::SecretString;
use url::Url;

use super::Teams;
use crate::config::{Setting, Sources, parse_public_url};
use crate::platforms::{Configured, Core, Started};

/// Microsoft's published OpenID metadata for tokens the Bot Framework sends to bots.
pub const BOT_FRAMEWORK_METADATA: &str = "https://login.botframework.com/v1/.well-known/openidconfiguration";
/// Where the token endpoint is by default; `{tenant}` is the configured tenant.
pub const DEFAULT_TOKEN_URL: &str = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token";

/// Teams: the bot's app registration and where its tokens are checked and had.
#[derive(Debug, Clone)]
pub struct TeamsConfig {
    /// The Entra app (client) id, which is also the Azure Bot's id and the tokens' audience.
    pub app_id: String,
    pub app_password: SecretString,
    /// The one tenant this single-tenant bot serves.
    pub tenant_id: String,
    pub openid_metadata_url: Url,
    /// The client-credentials token endpoint, with the tenant filled in.
    pub token_url: Url,
    /// Hosts besides Microsoft's connector hosts that the bot token may be sent to (tests' stand-ins).
    pub extra_service_hosts: Vec<String>,
    /// Whether Entra-issued tokens (with `tid` = the tenant) are accepted besides the Bot Framework's.
    pub accept_entra_tokens: bool,
}

pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "teams.app_id",
        env: "NUDGE_TEAMS_APP_ID",
        default: None,
        example: "the Application (client) ID of the bot's Entra app registration",
        secret: false,
    },
    Setting {
        key: "teams.app_password",
        env: "NUDGE_TEAMS_APP_PASSWORD",
        default: None,
        example: "the client secret's Value from Certificates & secrets",
        secret: true,
    },
    Setting {
        key: "teams.tenant_id",
        env: "NUDGE_TEAMS_TENANT_ID",
        default: None,
        example: "the Directory (tenant) ID of the app registration",
        secret: false,
    },
    Setting {
        key: "teams.openid_metadata_url",
        env: "NUDGE_TEAMS_OPENID_METADATA_URL",
        default: Some(BOT_FRAMEWORK_METADATA),
        example: BOT_FRAMEWORK_METADATA,
        secret: false,
    },
    Setting {
        key: "teams.token_url",
        env: "NUDGE_TEAMS_TOKEN_URL",
        default: Some(DEFAULT_TOKEN_URL),
        example: DEFAULT_TOKEN_URL,
        secret: false,
    },
    Setting {
        key: "teams.service_url_hosts",
        env: "NUDGE_TEAMS_SERVICE_URL_HOSTS",
        default: None,
        example: "connector.example.com,127.0.0.1",
        secret: false,
    },
    Setting {
        key: "teams.accept_entra_tokens",
        env: "NUDGE_TEAMS_ACCEPT_ENTRA_TOKENS",
        default: Some("false"),
        example: "false",
        secret: false,
    },
];

/// Entra ids are GUIDs; a typo here would only show as every request refused.
fn parse_guid(value: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.split('-').collect();
    let lengths: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    if lengths == [8, 4, 4, 4, 12] && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit())) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err("is not a GUID like 00000000-0000-0000-0000-000000000000".to_string())
    }
}

/// Teams is on once its app id, password and tenant are all set.
pub fn configure(sources: &mut Sources<'_>) -> Option<Arc<dyn Configured>> {
    let app_id = sources.get("teams.app_id", parse_guid);
    let app_password = sources.get("teams.app_password", |v| Ok(SecretString::from(v.to_string())));
    let tenant_id = sources.get("teams.tenant_id", parse_guid);
    let metadata = sources.get("teams.openid_metadata_url", parse_public_url);
    let token_url = sources.get("teams.token_url", |v| Ok(v.to_string()));
    let hosts = sources.get("teams.service_url_hosts", |v| {
        let hosts: Vec<String> =
            v.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
        match hosts.iter().find(|h| h.contains(['/', ':', '*']) || h.contains(char::is_whitespace)) {
            Some(bad) => Err(format!("holds {bad:?}; list bare host names, comma-separated")),
            None => Ok(hosts),
        }
    });
    let accept_entra = sources.get("teams.accept_entra_tokens", |v| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("is true or false".to_string()),
    });
    let given = [
        ("NUDGE_TEAMS_APP_ID", sources.is_set("teams.app_id")),
        ("NUDGE_TEAMS_APP_PASSWORD", sources.is_set("teams.app_password")),
        ("NUDGE_TEAMS_TENANT_ID", sources.is_set("teams.tenant_id")),
    ];
    if given.iter().all(|(_, set)| !set) {
        return None;
    }
    for (env, set) in given {
        if !set {
            sources.problem(
                env,
                "is required once any of NUDGE_TEAMS_APP_ID, NUDGE_TEAMS_APP_PASSWORD and NUDGE_TEAMS_TENANT_ID is \
                 given: together they are the bot's identity",
                "NUDGE_TEAMS_APP_ID, NUDGE_TEAMS_APP_PASSWORD and NUDGE_TEAMS_TENANT_ID from the Entra app registration",
            );
        }
    }
    let (app_id, app_password, tenant_id) = (app_id?, app_password?, tenant_id?);
    let token_url = match parse_public_url(&token_url?.replace("{tenant}", &tenant_id)) {
        Ok(url) => url,
        Err(problem) => {
            sources.problem("NUDGE_TEAMS_TOKEN_URL", &problem, &format!("NUDGE_TEAMS_TOKEN_URL={DEFAULT_TOKEN_URL}"));
            return None;
        }
    };
    Some(Arc::new(TeamsConfig {
        app_id,
        app_password,
        tenant_id,
        openid_metadata_url: metadata?,
        token_url,
        extra_service_hosts: hosts.unwrap_or_default(),
        accept_entra_tokens: accept_entra?,
    }))
}

impl Configured for TeamsConfig {
    fn name(&self) -> &'static str {
        super::PLATFORM
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn banner(&self, base: &str) -> Vec<String> {
        vec![
            format!("configured for tenant {} (app {})", self.tenant_id, self.app_id),
            format!("messaging endpoint {base}/teams/messages"),
            format!("app package {base}/teams/app.zip"),
        ]
    }

    fn start(&self, core: &Core) -> anyhow::Result<Started> {
        let teams = Arc::new(Teams::new(self.clone(), core.clock.clone()));
        Ok(Started {
            routes: super::routes::routes(core.clone(), teams.clone()),
            delivery: Some(Arc::new(super::delivery::TeamsDelivery::new(
                teams,
                core.store.clone(),
                core.clock.clone(),
            ))),
        })
    }
}

/// The banner line when Teams is not configured.
pub fn unconfigured(_base: &str) -> String {
    "not configured: register the bot (README, Connect Microsoft Teams), then set NUDGE_TEAMS_APP_ID, \
     NUDGE_TEAMS_APP_PASSWORD and NUDGE_TEAMS_TENANT_ID"
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;

    pub const APP: &str = "3f6b8c2e-1a4d-4e5f-9a7b-0c1d2e3f4a5b";
    pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let empty = std::env::temp_dir().join("nudge-teams-config-test-empty.toml");
        std::fs::write(&empty, "").unwrap();
        map.insert("NUDGE_CONFIG".into(), empty.display().to_string());
        map
    }

    fn teams_of(config: &Config) -> Option<&TeamsConfig> {
        config.platforms.iter().find_map(|p| p.as_any().downcast_ref::<TeamsConfig>())
    }

    #[test]
    fn teams_is_on_with_its_app_id_password_and_tenant_and_keeps_the_password_out_of_debug_output() {
        let config = Config::load(&env(&[
            ("NUDGE_TEAMS_APP_ID", APP),
            ("NUDGE_TEAMS_APP_PASSWORD", "very~secret.password"),
            ("NUDGE_TEAMS_TENANT_ID", TENANT),
        ]))
        .unwrap();
        let teams = teams_of(&config).expect("teams is configured");
        assert_eq!(teams.token_url.as_str(), format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"));
        assert_eq!(teams.openid_metadata_url.as_str(), BOT_FRAMEWORK_METADATA);
        assert!(!teams.accept_entra_tokens);
        assert!(teams.extra_service_hosts.is_empty());
        assert!(!format!("{config:?}").contains("very~secret.password"));
        let banner = teams.banner("https://nudge.example.com").join("\n");
        assert!(banner.contains("https://nudge.example.com/teams/messages"), "{banner}");
        assert!(banner.contains("https://nudge.example.com/teams/app.zip"), "{banner}");
        assert!(teams_of(&Config::load(&env(&[])).unwrap()).is_none());
    }

    #[test]
    fn a_partial_or_mistyped_teams_identity_is_named_without_the_password() {
        let errors = Config::load(&env(&[("NUDGE_TEAMS_APP_ID", APP)])).unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, vec!["NUDGE_TEAMS_APP_PASSWORD", "NUDGE_TEAMS_TENANT_ID"], "{errors}");
        let errors = Config::load(&env(&[
            ("NUDGE_TEAMS_APP_ID", "nudge-bot"),
            ("NUDGE_TEAMS_APP_PASSWORD", "pw-1"),
            ("NUDGE_TEAMS_TENANT_ID", TENANT),
            ("NUDGE_TEAMS_SERVICE_URL_HOSTS", "https://evil.example.com/"),
        ]))
        .unwrap_err();
        let text = errors.to_string();
        assert!(text.contains("NUDGE_TEAMS_APP_ID: \"nudge-bot\" is not a GUID"), "{text}");
        assert!(text.contains("NUDGE_TEAMS_SERVICE_URL_HOSTS"), "{text}");
        assert!(!text.contains("pw-1"), "{text}");
    }

    #[test]
    fn the_config_file_documents_every_teams_setting_with_its_default() {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/config/nudge.toml"));
        let section = text.split("[teams]").nth(1).expect("config/nudge.toml has a [teams] section");
        let section = section.split("\n[").next().unwrap_or(section);
        for setting in SETTINGS {
            let name = setting.key.trim_start_matches("teams.");
            assert!(section.contains(setting.env), "{} is not named in [teams]", setting.env);
            let line = section
                .lines()
                .find(|l| l.trim_start_matches("# ").starts_with(&format!("{name} = ")))
                .unwrap_or_else(|| panic!("{} has no `# {name} = …` line in [teams]", setting.key));
            let shown = line.split_once(" = ").unwrap().1.trim().trim_matches('"');
            assert_eq!(shown, setting.default.unwrap_or(""), "the file's default for {} is not nudge's", setting.key);
        }
    }
}
