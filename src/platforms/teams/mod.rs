//! Microsoft Teams through the Bot Framework: JWT-verified activities at `/teams/messages`,
//! commands after an @mention or in a personal chat, Adaptive Cards with `Action.Execute`
//! buttons, proactive posts through the Bot Connector, install and uninstall, and the app package
//! an admin uploads. No Rust SDK exists, so the protocol is spoken directly; nothing outside this
//! module knows Adaptive Cards.

pub mod api;
pub mod config;
pub mod delivery;
pub mod package;
pub mod render;
pub mod routes;
pub mod verify;
pub mod wire;

use std::collections::HashMap;
use std::sync::RwLock;

use crate::platforms::Registration;
use crate::store::{Store, StoreError, WorkspaceId};

pub use config::TeamsConfig;

/// The platform name stored with every Teams workspace (a tenant).
pub const PLATFORM: &str = "teams";

/// Teams' line in the platform registry.
pub const REGISTRATION: Registration = Registration {
    name: PLATFORM,
    title: "Teams",
    settings: config::SETTINGS,
    configure: config::configure,
    setup_routes: routes::setup_routes,
    unconfigured: config::unconfigured,
};

/// What nudge keeps about Teams conversations, as `platform_records` kinds.
pub mod records {
    /// Key: a conversation nudge posts to (a team channel's id, a group chat's or a personal
    /// chat's id). Value: [`super::wire::ConversationRecord`] as JSON.
    pub const CONVERSATION: &str = "conversation";
    /// Key: a member's id ("29:…"). Value: their personal conversation's id, where private
    /// reminders go.
    pub const PERSONAL: &str = "personal";
    /// Key: the tenant id. Value: the latest serviceUrl seen for the tenant.
    pub const SERVICE_URL: &str = "service_url";
}

/// Everything the Teams handlers and the delivery share.
pub struct Teams {
    pub settings: TeamsConfig,
    pub verifier: verify::Verifier,
    pub connector: api::Connector,
    /// Tenant id → workspace id. Ids never change once allocated, so caching them saves a query
    /// per activity without making any replica's memory needed for correctness.
    workspaces: RwLock<HashMap<String, WorkspaceId>>,
    /// Activities refused for their token: counted, and logged at most once per interval (the
    /// counter Slack's signature check uses), so a flood of forgeries cannot fill the disk.
    pub(crate) rejections: crate::telemetry::Rejections,
}

impl std::fmt::Debug for Teams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teams").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Teams {
    pub fn new(settings: TeamsConfig, clock: crate::clock::SharedClock) -> Teams {
        Teams {
            verifier: verify::Verifier::new(&settings),
            connector: api::Connector::new(&settings, clock),
            settings,
            workspaces: RwLock::new(HashMap::new()),
            rejections: Default::default(),
        }
    }

    /// The workspace of the configured tenant, created on first sight.
    pub async fn workspace(
        &self,
        store: &Store,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<WorkspaceId, StoreError> {
        let tenant = &self.settings.tenant_id;
        if let Some(ws) = self.workspaces.read().unwrap_or_else(|e| e.into_inner()).get(tenant) {
            return Ok(*ws);
        }
        let mut tx = store.begin().await?;
        let ws = tx.ensure_workspace(PLATFORM, tenant, tenant, now).await?;
        tx.commit().await?;
        self.workspaces.write().unwrap_or_else(|e| e.into_inner()).insert(tenant.clone(), ws);
        Ok(ws)
    }
}
