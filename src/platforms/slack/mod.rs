//! Slack: signed slash commands, interactivity (buttons and modals), the Events API, OAuth v2
//! installs, the app manifest, and the Web API client. This module turns Slack's wire formats into
//! the neutral command core and back; nothing outside it knows Block Kit.

pub mod api;
pub mod config;
pub mod delivery;
pub mod manifest;
pub mod oauth;
pub mod render;
pub mod routes;
pub mod verify;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use url::Url;

use crate::config::Config;
use crate::crypto::TokenCipher;
use crate::platforms::{Core, Registration};
use crate::store::{Store, StoreError, WorkspaceId};

pub use config::{SlackConfig, SlackInstall};

/// The platform name stored with every Slack workspace.
pub const PLATFORM: &str = "slack";

/// Slack's line in the platform registry.
pub const REGISTRATION: Registration = Registration {
    name: PLATFORM,
    title: "Slack",
    settings: config::SETTINGS,
    configure: config::configure,
    setup_routes: manifest::routes,
    unconfigured: config::unconfigured,
};

/// Slack's settings in a loaded configuration, when it is configured.
pub fn configured(config: &Config) -> Option<&SlackConfig> {
    config.platforms.iter().find_map(|platform| platform.as_any().downcast_ref::<SlackConfig>())
}

/// What every Slack handler reaches: the core and Slack's own state.
#[derive(Clone)]
pub struct SlackApp {
    pub core: Core,
    pub slack: Arc<Slack>,
}

impl std::ops::Deref for SlackApp {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

/// Everything the Slack handlers share.
pub struct Slack {
    signing_secrets: Vec<SecretString>,
    install: SlackInstall,
    pub client: api::SlackClient,
    cipher: Option<TokenCipher>,
    public_url: Option<Url>,
    /// Team id → workspace id. Ids never change once allocated, so caching them saves a query per
    /// command without making any replica's memory needed for correctness.
    workspaces: RwLock<HashMap<String, WorkspaceId>>,
    /// Members whose Slack profile (display name, time zone) this process has already fetched.
    profiles: std::sync::Mutex<std::collections::HashSet<(WorkspaceId, String)>>,
    /// Verified requests already taken, so a replay within the five minutes is not run again.
    pub(crate) seen: verify::SeenRequests,
    drop_repeats: bool,
    /// Requests refused for their signature.
    pub(crate) rejections: crate::telemetry::Rejections,
}

impl Slack {
    /// Whether a verified request is to be run: not an exact repeat of one already taken (unless
    /// `slack.drop_repeats` is off, for a benchmark that replays one signed request).
    pub(crate) fn first_time(&self, headers: &axum::http::HeaderMap, now_unix: i64) -> bool {
        !self.drop_repeats || self.seen.first_time(headers, now_unix)
    }
}

impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slack").field("client", &self.client).finish_non_exhaustive()
    }
}

/// How a team stands with this server.
pub enum Standing {
    Ready(WorkspaceId),
    /// Many-workspace mode and the team has not installed nudge: answer with the install link.
    NotInstalled,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored bot token cannot be opened: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error("team {0} has not installed nudge")]
    NotInstalled(String),
}

impl Slack {
    pub fn new(slack: &SlackConfig, config: &Config) -> Slack {
        Slack {
            signing_secrets: slack.signing_secrets.clone(),
            install: slack.install.clone(),
            client: api::SlackClient::new(&slack.api_url),
            cipher: config.encryption_key.as_ref().map(TokenCipher::new),
            public_url: config.public_url.clone(),
            workspaces: RwLock::new(HashMap::new()),
            profiles: Default::default(),
            seen: Default::default(),
            drop_repeats: slack.drop_repeats,
            rejections: Default::default(),
        }
    }

    pub fn signing_secrets(&self) -> &[SecretString] {
        &self.signing_secrets
    }

    /// Where a team installs nudge: `<public url>/slack/install`.
    pub fn install_url(&self) -> String {
        self.public_url_for("/slack/install")
    }

    /// A path on this server as Slack reaches it (just the path when no public URL is set).
    pub fn public_url_for(&self, path: &str) -> String {
        match &self.public_url {
            Some(url) => format!("{}{path}", url.as_str().trim_end_matches('/')),
            None => path.to_string(),
        }
    }

    /// The workspace a verified request's team belongs to. In one-workspace mode any team that
    /// reaches us with our signature is ours and is created on first sight; with OAuth the team
    /// must have installed nudge.
    pub async fn standing(
        &self,
        store: &Store,
        team_id: &str,
        team_name: &str,
        now: DateTime<Utc>,
    ) -> Result<Standing, StoreError> {
        if let Some(ws) = self.workspaces.read().unwrap_or_else(|e| e.into_inner()).get(team_id) {
            return Ok(Standing::Ready(*ws));
        }
        let mut tx = store.begin().await?;
        let ws = match &self.install {
            SlackInstall::Single { .. } => {
                let ws = tx.ensure_workspace(PLATFORM, team_id, team_name, now).await?;
                tx.commit().await?;
                ws
            }
            SlackInstall::OAuth { .. } => match tx.installation(PLATFORM, team_id).await? {
                Some(installation) => installation.workspace_id,
                None => return Ok(Standing::NotInstalled),
            },
        };
        self.remember(team_id, ws);
        Ok(Standing::Ready(ws))
    }

    fn remember(&self, team_id: &str, ws: WorkspaceId) {
        self.workspaces.write().unwrap_or_else(|e| e.into_inner()).insert(team_id.to_string(), ws);
    }

    /// Learns a member's time zone (their pledges' days follow it) and display name from
    /// users.info, once per member per process, after their command has been answered.
    pub fn learn_profile(self: &Arc<Self>, core: &Core, ws: WorkspaceId, team_id: &str, user_id: &str) {
        let key = (ws, user_id.to_string());
        if !self.profiles.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
            return;
        }
        let (slack, store, clock, team_id) =
            (self.clone(), core.store.clone(), core.clock.clone(), team_id.to_string());
        core.tasks.spawn(async move {
            let learned = async {
                let token = slack.token_for(&store, &team_id).await?;
                let profile = slack.client.user_info(&token, &key.1).await?;
                let mut tx = store.begin().await?;
                let (name, zone) = (&profile.display_name, profile.time_zone.as_deref());
                let known = tx.set_member_profile(ws, &key.1, name, zone, clock.now()).await?;
                tx.commit().await?;
                Ok::<bool, anyhow::Error>(known)
            }
            .await;
            if matches!(learned, Ok(false)) {
                // The member is not stored yet (their command failed): try after a later command.
                // A Slack error is not retried in this process, so a missing scope costs one call.
                slack.profiles.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            }
            if let Err(error) = learned {
                tracing::info!(error = format!("{error:#}"), "could not read a Slack profile");
            }
        });
    }

    /// The bot token to call Slack with on behalf of a team.
    pub async fn token_for(&self, store: &Store, team_id: &str) -> Result<SecretString, TokenError> {
        match &self.install {
            SlackInstall::Single { bot_token } => Ok(bot_token.clone()),
            SlackInstall::OAuth { .. } => {
                let mut tx = store.begin().await?;
                let installation = tx
                    .installation(PLATFORM, team_id)
                    .await?
                    .ok_or_else(|| TokenError::NotInstalled(team_id.into()))?;
                drop(tx);
                let cipher = self.cipher.as_ref().ok_or(crate::crypto::CryptoError::UnknownKey("none".into()))?;
                Ok(cipher.open(installation.workspace_id.0, &installation.bot_token_sealed)?)
            }
        }
    }
}
