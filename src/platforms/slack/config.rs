//! Slack's settings section: its signing secrets, and how nudge gets a bot token (one workspace's
//! token pasted in, or OAuth for many), the Web API's base URL, and the start-up lines that say
//! which URLs to paste into the app's settings.

use std::any::Any;
use std::sync::Arc;

use secrecy::SecretString;

use super::Slack;
use crate::config::{Setting, Sources, parse_public_url};
use crate::platforms::{Configured, Core, Started};

/// Slack: which secrets sign its requests, and how nudge gets a bot token per workspace.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// Every accepted signing secret; more than one while a secret is being rotated.
    pub signing_secrets: Vec<SecretString>,
    pub install: SlackInstall,
    /// Base of the Web API, e.g. `https://slack.com/api`; tests point it at a stand-in.
    pub api_url: String,
    /// Whether an exact repeat of a verified request within Slack's five minutes is dropped.
    pub drop_repeats: bool,
}

#[derive(Debug, Clone)]
pub enum SlackInstall {
    /// One workspace, with the bot token pasted from the app's settings.
    Single { bot_token: SecretString },
    /// Any number of workspaces through OAuth v2; their tokens are stored encrypted.
    OAuth { client_id: String, client_secret: SecretString },
}

pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "slack.signing_secret",
        env: "NUDGE_SLACK_SIGNING_SECRET",
        default: None,
        example: "the Signing Secret from Basic Information; several, comma-separated, while rotating",
        secret: true,
    },
    Setting {
        key: "slack.bot_token",
        env: "NUDGE_SLACK_BOT_TOKEN",
        default: None,
        example: "xoxb-… from OAuth & Permissions, for one workspace",
        secret: true,
    },
    Setting {
        key: "slack.client_id",
        env: "NUDGE_SLACK_CLIENT_ID",
        default: None,
        example: "1234567890.1234567890 from Basic Information, for many workspaces",
        secret: false,
    },
    Setting {
        key: "slack.client_secret",
        env: "NUDGE_SLACK_CLIENT_SECRET",
        default: None,
        example: "the Client Secret from Basic Information",
        secret: true,
    },
    Setting {
        key: "slack.api_url",
        env: "NUDGE_SLACK_API_URL",
        default: Some("https://slack.com/api"),
        example: "https://slack.com/api",
        secret: false,
    },
    Setting {
        key: "slack.drop_repeats",
        env: "NUDGE_SLACK_DROP_REPEATS",
        default: Some("true"),
        example: "true",
        secret: false,
    },
];

/// Slack is configured by its signing secret; the rest must then say how bot tokens are had.
pub fn configure(sources: &mut Sources<'_>) -> Option<Arc<dyn Configured>> {
    let has_encryption_key = sources.is_set("security.encryption_key");
    let has_public_url = sources.is_set("server.public_url");
    let secrets = sources.get("slack.signing_secret", |v| {
        let secrets: Vec<SecretString> =
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| SecretString::from(s.to_string())).collect();
        if secrets.is_empty() { Err("holds no secret".to_string()) } else { Ok(secrets) }
    });
    let bot_token = sources.get("slack.bot_token", |v| {
        if v.starts_with("xoxb-") {
            Ok(SecretString::from(v.to_string()))
        } else {
            Err("must be a bot token, starting with xoxb- (the value is secret and not shown)".to_string())
        }
    });
    let client_id = sources.get("slack.client_id", |v| Ok(v.to_string()));
    let client_secret = sources.get("slack.client_secret", |v| Ok(SecretString::from(v.to_string())));
    let api_url =
        sources.get("slack.api_url", |v| parse_public_url(v).map(|u| u.as_str().trim_end_matches('/').to_string()));
    let drop_repeats = sources.get("slack.drop_repeats", |v| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("is true or false".to_string()),
    });
    let problem =
        |sources: &mut Sources<'_>, key: &str, problem: &str, example: &str| sources.problem(key, problem, example);
    let Some(signing_secrets) = secrets else {
        if bot_token.is_some() || client_id.is_some() || client_secret.is_some() {
            problem(
                sources,
                "NUDGE_SLACK_SIGNING_SECRET",
                "is required once any Slack setting is given: it is how nudge knows a request comes from Slack",
                "NUDGE_SLACK_SIGNING_SECRET=<the Signing Secret from Basic Information>",
            );
        }
        return None;
    };
    let install = match (bot_token, client_id, client_secret) {
        (Some(bot_token), None, None) => SlackInstall::Single { bot_token },
        (None, Some(client_id), Some(client_secret)) => {
            if !has_encryption_key {
                problem(
                    sources,
                    "NUDGE_ENCRYPTION_KEY",
                    "is required with NUDGE_SLACK_CLIENT_ID: installed workspaces' bot tokens are stored encrypted",
                    "NUDGE_ENCRYPTION_KEY=<the output of `openssl rand -base64 32`>",
                );
            }
            if !has_public_url {
                problem(
                    sources,
                    "NUDGE_PUBLIC_URL",
                    "is required with NUDGE_SLACK_CLIENT_ID: Slack sends installers back to its /slack/oauth/callback",
                    "NUDGE_PUBLIC_URL=https://nudge.example.com",
                );
            }
            SlackInstall::OAuth { client_id, client_secret }
        }
        (None, Some(_), None) | (None, None, Some(_)) => {
            problem(
                sources,
                "NUDGE_SLACK_CLIENT_ID",
                "and NUDGE_SLACK_CLIENT_SECRET go together; one of them is missing",
                "NUDGE_SLACK_CLIENT_ID=1234567890.1234567890 and NUDGE_SLACK_CLIENT_SECRET=<Client Secret>",
            );
            return None;
        }
        (None, None, None) => {
            problem(
                sources,
                "NUDGE_SLACK_BOT_TOKEN",
                "or NUDGE_SLACK_CLIENT_ID with NUDGE_SLACK_CLIENT_SECRET is needed with a signing secret",
                "NUDGE_SLACK_BOT_TOKEN=xoxb-… for one workspace",
            );
            return None;
        }
        (Some(_), _, _) => {
            problem(
                sources,
                "NUDGE_SLACK_BOT_TOKEN",
                "cannot be combined with NUDGE_SLACK_CLIENT_ID: choose one workspace (bot token) or many (OAuth)",
                "NUDGE_SLACK_BOT_TOKEN=xoxb-… alone",
            );
            return None;
        }
    };
    Some(Arc::new(SlackConfig { signing_secrets, install, api_url: api_url?, drop_repeats: drop_repeats? }))
}

impl Configured for SlackConfig {
    fn name(&self) -> &'static str {
        super::PLATFORM
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn banner(&self, base: &str) -> Vec<String> {
        let mode = match self.install {
            SlackInstall::Single { .. } => "one workspace (bot token)".to_string(),
            SlackInstall::OAuth { .. } => format!("many workspaces; install link {base}/slack/install"),
        };
        vec![
            format!("configured for {mode}"),
            format!(
                "commands {base}/slack/commands, interactivity {base}/slack/interactions, events {base}/slack/events"
            ),
            format!("app manifest {base}/slack/manifest"),
        ]
    }

    fn start(&self, core: &Core) -> anyhow::Result<Started> {
        let slack = Arc::new(Slack::new(self, &core.config));
        Ok(Started {
            routes: super::routes::routes(core.clone(), slack.clone()),
            delivery: Some(Arc::new(super::delivery::SlackDelivery::new(slack, core.store.clone()))),
        })
    }
}

/// The banner line when Slack is not configured.
pub fn unconfigured(_base: &str) -> String {
    "not configured: create the app from <public url>/slack/manifest, then set NUDGE_SLACK_SIGNING_SECRET \
     and NUDGE_SLACK_BOT_TOKEN"
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let empty = std::env::temp_dir().join("nudge-slack-config-test-empty.toml");
        std::fs::write(&empty, "").unwrap();
        map.insert("NUDGE_CONFIG".into(), empty.display().to_string());
        map
    }

    fn slack_of(config: &Config) -> Option<&SlackConfig> {
        config.platforms.iter().find_map(|p| p.as_any().downcast_ref::<SlackConfig>())
    }

    #[test]
    fn slack_in_one_workspace_needs_a_signing_secret_and_a_bot_token() {
        let config = Config::load(&env(&[
            ("NUDGE_SLACK_SIGNING_SECRET", "old-secret, new-secret"),
            ("NUDGE_SLACK_BOT_TOKEN", "xoxb-1-2-abc"),
        ]))
        .unwrap();
        let slack = slack_of(&config).expect("slack is configured");
        assert_eq!(slack.signing_secrets.len(), 2, "both secrets are accepted while rotating");
        assert!(matches!(slack.install, SlackInstall::Single { .. }));
        assert_eq!(slack.api_url, "https://slack.com/api");
        assert!(!format!("{:?}", slack.install).contains("xoxb-1-2-abc"));
        assert!(slack_of(&Config::load(&env(&[])).unwrap()).is_none());
    }

    #[test]
    fn slack_settings_that_do_not_fit_together_are_named() {
        let errors = Config::load(&env(&[("NUDGE_SLACK_BOT_TOKEN", "xoxb-1")])).unwrap_err();
        assert_eq!(errors.0[0].key, "NUDGE_SLACK_SIGNING_SECRET", "{errors}");
        let errors = Config::load(&env(&[("NUDGE_SLACK_SIGNING_SECRET", "s")])).unwrap_err();
        assert_eq!(errors.0[0].key, "NUDGE_SLACK_BOT_TOKEN", "{errors}");
        let errors = Config::load(&env(&[("NUDGE_SLACK_SIGNING_SECRET", "s"), ("NUDGE_SLACK_BOT_TOKEN", "xoxp-user")]))
            .unwrap_err();
        assert!(errors.to_string().contains("must be a bot token, starting with xoxb-"), "{errors}");
        assert!(!errors.to_string().contains("xoxp-user"), "{errors}");
        let errors = Config::load(&env(&[
            ("NUDGE_SLACK_SIGNING_SECRET", "s"),
            ("NUDGE_SLACK_CLIENT_ID", "1.2"),
            ("NUDGE_SLACK_CLIENT_SECRET", "c"),
        ]))
        .unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, vec!["NUDGE_ENCRYPTION_KEY", "NUDGE_PUBLIC_URL"], "{errors}");
    }
}
