//! Building and running the application: database, migrations, router, listener. Tests build it on
//! port 0 with their own configuration and clock; `main` builds it from the environment.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::SharedClock;
use crate::commands::queue::CommandQueue;
use crate::config::Config;
use crate::config::SlackInstall;
use crate::http::{self, AppState};
use crate::outbox::{Sender, SenderSettings};
use crate::platforms::slack::Slack;
use crate::platforms::slack::delivery::SlackDelivery;
use crate::scheduler::{Scheduler, SchedulerSettings};
use crate::store::Store;

/// How long a stop waits for work that follows an answer (Slack API calls have a 10-second timeout).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    store: Store,
    address: SocketAddr,
    tasks: TaskTracker,
    /// Delivers the outbox; present when a platform that posts is configured.
    sender: Option<Sender<SlackDelivery>>,
    scheduler: Scheduler,
}

impl Application {
    /// Connects to the database, applies migrations and binds the listener.
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Application> {
        let store = Store::connect(&config.database_url, config.database_max_connections)
            .await
            .with_context(|| format!("cannot open the database ({})", config.database_display()))?;
        store.migrate().await.context("cannot apply database migrations")?;
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        let timeout = config.request_timeout;
        let slack = Slack::from_config(&config).map(Arc::new);
        let commands = CommandQueue::start(store.clone(), config.defaults.clone());
        let scheduler = Scheduler::new(store.clone(), clock.clone(), SchedulerSettings::default());
        let tasks = TaskTracker::new();
        let sender = slack.as_ref().map(|slack| {
            let delivery = Arc::new(SlackDelivery::new(slack.clone(), store.clone()));
            let settings = SenderSettings { reconcile_after: config.reconcile_after, ..SenderSettings::default() };
            Sender::new(store.clone(), delivery, clock.clone(), settings)
        });
        let state =
            AppState { store: store.clone(), config: Arc::new(config), clock, commands, slack, tasks: tasks.clone() };
        let router = http::router(state, timeout);
        Ok(Application { listener, router, store, address, tasks, sender, scheduler })
    }

    /// The address actually bound (the real port when the configuration asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` is cancelled, then lets requests in flight finish and closes the
    /// database pool. The same token stops every background loop.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        if let Some(sender) = self.sender {
            self.tasks.spawn(sender.run(shutdown.clone()));
        }
        self.tasks.spawn(self.scheduler.run(shutdown.clone()));
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("the HTTP server failed")?;
        // Answers already given may still owe Slack a call (a form, a response URL post).
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait()).await.is_err() {
            tracing::warn!(unfinished = self.tasks.len(), "stopping with Slack calls still unfinished");
        }
        self.store.close().await;
        Ok(())
    }
}

/// What to tell the operator at start: where nudge listens, where its data is, which platforms
/// are configured and what to do next.
pub fn banner(config: &Config, address: SocketAddr) -> String {
    let base = config.public_url.as_ref().map(|u| u.as_str().trim_end_matches('/').to_string());
    let shown_base = base.clone().unwrap_or_else(|| "<NUDGE_PUBLIC_URL>".to_string());
    let slack = match &config.slack {
        None => "not configured: create the app from <public url>/slack/manifest, then set NUDGE_SLACK_SIGNING_SECRET \
                 and NUDGE_SLACK_BOT_TOKEN"
            .to_string(),
        Some(slack) => {
            let mode = match slack.install {
                SlackInstall::Single { .. } => "one workspace (bot token)".to_string(),
                SlackInstall::OAuth { .. } => format!("many workspaces; install link {shown_base}/slack/install"),
            };
            format!(
                "configured for {mode}\n              commands {shown_base}/slack/commands, interactivity \
                 {shown_base}/slack/interactions, events {shown_base}/slack/events"
            )
        }
    };
    let mut lines = vec![
        format!("nudge is listening on http://{address} ({})", config.database_display()),
        "Platforms:".to_string(),
        format!("  Slack       {slack}"),
        "  Teams       not configured (planned)".to_string(),
        "  Mattermost  not configured (planned)".to_string(),
    ];
    match &base {
        Some(base) => lines.push(format!("Slack app manifest: {base}/slack/manifest")),
        None => lines.push(
            "Next: set NUDGE_PUBLIC_URL to the https address chat platforms can reach (e.g. a tunnel to this port), \
             then create the Slack app from <that URL>/slack/manifest."
                .to_string(),
        ),
    }
    lines.push(format!("Health: http://{address}/healthz  Readiness: http://{address}/readyz"));
    lines.join("\n")
}
