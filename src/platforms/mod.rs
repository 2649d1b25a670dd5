//! Chat platforms, registered in one place. Each platform is one folder that owns its settings
//! section, its wire types and signature or token check, the rendering of the neutral message
//! model, its API client, its routes and its delivery; nothing outside its folder knows Block Kit,
//! Adaptive Cards or Mattermost attachments. Adding a platform is its folder, a line in
//! [`REGISTRY`] and its migration.

pub mod slack;
pub mod teams;

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use axum::Router;
use tokio_util::task::TaskTracker;

use crate::clock::SharedClock;
use crate::commands::Commands;
use crate::config::{Config, Setting, Sources};
use crate::outbox::Delivery;
use crate::store::Store;

/// Every platform nudge speaks.
pub const REGISTRY: &[Registration] = &[slack::REGISTRATION, teams::REGISTRATION];

/// A platform as the core knows it before it is configured: its settings and how to read them.
pub struct Registration {
    /// The name stored with its workspaces and posts: "slack".
    pub name: &'static str,
    /// As people know it, in the start-up banner: "Slack".
    pub title: &'static str,
    pub settings: &'static [Setting],
    /// Reads the platform's settings; `None` when it is not configured. Problems are recorded in
    /// `sources`, so the start is refused with every one of them.
    pub configure: fn(&mut Sources<'_>) -> Option<Arc<dyn Configured>>,
    /// Routes served whether or not the platform is configured (how a newcomer sets it up).
    pub setup_routes: fn(&Core) -> Router,
    /// The banner line when it is not configured: what to set. `base` is the public URL.
    pub unconfigured: fn(base: &str) -> String,
}

/// A configured platform's settings, which know how to start it.
pub trait Configured: Debug + Send + Sync + 'static {
    /// The platform's name as stored with its workspaces and posts: "slack".
    fn name(&self) -> &'static str;
    /// The banner's lines for it: its mode and the URLs to paste into its settings.
    fn banner(&self, base: &str) -> Vec<String>;
    /// Starts it: its routes, and the delivery its posts go out through.
    fn start(&self, core: &Core) -> anyhow::Result<Started>;
    fn as_any(&self) -> &dyn Any;
}

/// A started platform.
pub struct Started {
    /// Its routes, with their state applied.
    pub routes: Router,
    pub delivery: Option<Arc<dyn Delivery>>,
}

/// What the core gives every platform to work with.
#[derive(Clone)]
pub struct Core {
    pub store: Store,
    pub clock: SharedClock,
    /// Where commands, buttons and forms run.
    pub commands: Commands,
    pub config: Arc<Config>,
    /// Work that follows an answer (API calls after the acknowledgement); waited for at shutdown.
    pub tasks: TaskTracker,
}

impl Core {
    /// A path on this server as platforms reach it (just the path when no public URL is set).
    pub fn public_url_for(&self, path: &str) -> String {
        match &self.config.public_url {
            Some(url) => format!("{}{path}", url.as_str().trim_end_matches('/')),
            None => path.to_string(),
        }
    }
}
