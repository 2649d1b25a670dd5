//! Building and running the application: database, migrations, the registered platforms, the
//! router, the listener and the background loops. Tests build it on port 0 with their own
//! configuration and clock; `main` builds it from the environment.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::SharedClock;
use crate::commands::Commands;
use crate::config::Config;
use crate::http::{self, AppState, Health};
use crate::outbox::{Deliveries, Sender, SenderSettings};
use crate::platforms::{Core, REGISTRY};
use crate::scheduler::{Scheduler, SchedulerSettings};
use crate::store::Store;

/// How long a stop waits for work that follows an answer (platform API calls time out sooner).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    router: Router,
    store: Store,
    address: SocketAddr,
    tasks: TaskTracker,
    health: Health,
    /// Delivers the outbox; present when a platform that posts is configured.
    sender: Option<Sender>,
    scheduler: Scheduler,
    connections: http::ConnectionLimits,
}

impl Application {
    /// Connects to the database, applies migrations, starts the configured platforms and binds
    /// the listener.
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Application> {
        let store = Store::connect(&config.database_url, config.database_max_connections)
            .await
            .with_context(|| format!("cannot open the database ({})", config.database_display()))?;
        store.migrate().await.context("cannot apply database migrations")?;
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        let timeout = config.request_timeout;
        let connections = config.connections.fitted_to_the_process();
        let reconcile_after = config.reconcile_after;
        let tasks = TaskTracker::new();
        let commands = Commands::new(store.clone(), config.defaults.clone());
        let config = Arc::new(config);
        let core =
            Core { store: store.clone(), clock: clock.clone(), commands, config: config.clone(), tasks: tasks.clone() };

        let link_key = crate::web::link_key(&store).await.context("cannot make the dashboard's link key")?;
        let dashboard = config.public_url.as_ref().map(|url| crate::scheduler::DashboardLinks {
            key: Arc::new(link_key.clone()),
            base_url: url.as_str().trim_end_matches('/').to_string(),
        });
        let mut routes = crate::web::routes(store.clone(), clock.clone(), link_key);
        for registration in REGISTRY {
            routes = routes.merge((registration.setup_routes)(&core));
        }
        let mut deliveries = Deliveries::new();
        for platform in &config.platforms {
            let started = platform.start(&core).with_context(|| format!("cannot start {}", platform.name()))?;
            routes = routes.merge(started.routes);
            if let Some(delivery) = started.delivery {
                deliveries.insert(platform.name(), delivery);
            }
        }
        let sender = (!deliveries.is_empty()).then(|| {
            let settings = SenderSettings { reconcile_after, ..SenderSettings::default() };
            Sender::new(store.clone(), deliveries, clock.clone(), settings)
        });
        let scheduler =
            Scheduler::new(store.clone(), clock, SchedulerSettings { dashboard, ..SchedulerSettings::default() });
        let health = Health::default();
        let router = http::router(AppState { store: store.clone(), health: health.clone() }, routes, timeout);
        Ok(Application { listener, router, store, address, tasks, health, sender, scheduler, connections })
    }

    /// The address actually bound (the real port when the configuration asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The work that follows answers (platform API calls): tests wait for it to settle.
    pub fn tasks(&self) -> TaskTracker {
        self.tasks.clone()
    }

    /// Serves until `shutdown` is cancelled, then lets requests in flight finish and closes the
    /// database pool. The same token stops every background loop.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let background = TaskTracker::new();
        if let Some(sender) = self.sender {
            background.spawn(supervise(
                "the outbox sender",
                self.health.clone(),
                shutdown.clone(),
                sender.run(shutdown.clone()),
            ));
        }
        background.spawn(supervise(
            "the scheduler",
            self.health.clone(),
            shutdown.clone(),
            self.scheduler.run(shutdown.clone()),
        ));
        background.close();
        crate::http::serve(self.listener, self.router, self.connections, shutdown.clone())
            .await
            .context("the HTTP server failed")?;
        shutdown.cancel();
        background.wait().await;
        // Answers already given may still owe a platform a call (a form, a response URL post).
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait()).await.is_err() {
            tracing::warn!(unfinished = self.tasks.len(), "stopping with platform calls still unfinished");
        }
        self.store.close().await;
        Ok(())
    }
}

/// Runs a background loop; if it ends (a panic, or a return) before shutdown, that is logged with
/// its cause and `/readyz` fails, because the process can no longer do all of its work.
async fn supervise(
    what: &'static str,
    health: Health,
    shutdown: CancellationToken,
    work: impl Future<Output = ()> + Send + 'static,
) {
    let outcome = tokio::spawn(work).await;
    if shutdown.is_cancelled() {
        return;
    }
    match outcome {
        Ok(()) => health.stopped(what, "it returned while nudge was still running"),
        Err(error) if error.is_panic() => {
            let panic = error.into_panic();
            let cause = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            health.stopped(what, &format!("panicked: {cause}"));
        }
        Err(error) => health.stopped(what, &error.to_string()),
    }
}

/// What to tell the operator at start: where nudge listens, where its data is, which platforms
/// are configured and what to do next.
pub fn banner(config: &Config, address: SocketAddr) -> String {
    let base = config.public_url.as_ref().map(|u| u.as_str().trim_end_matches('/').to_string());
    let shown_base = base.clone().unwrap_or_else(|| "<NUDGE_PUBLIC_URL>".to_string());
    let mut lines = vec![
        format!("nudge is listening on http://{address} ({})", config.database_display()),
        "Platforms:".to_string(),
    ];
    for registration in REGISTRY {
        let configured = config.platforms.iter().find(|p| p.name() == registration.name);
        let said = match configured {
            Some(platform) => platform.banner(&shown_base),
            None => vec![(registration.unconfigured)(&shown_base)],
        };
        for (n, line) in said.iter().enumerate() {
            let title = if n == 0 { registration.title } else { "" };
            lines.push(format!("  {title:<11} {line}"));
        }
    }
    if base.is_none() {
        lines.push(
            "Next: set NUDGE_PUBLIC_URL to the https address chat platforms can reach (e.g. a tunnel to this port), \
             then follow the README to connect a platform."
                .to_string(),
        );
    }
    lines.push(format!("Health: http://{address}/healthz  Readiness: http://{address}/readyz"));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_background_loop_that_dies_makes_readiness_fail_with_its_cause() {
        let health = Health::default();
        supervise("the scheduler", health.clone(), CancellationToken::new(), async { panic!("boom") }).await;
        assert_eq!(health.problems(), vec!["the scheduler: panicked: boom".to_string()]);
        supervise("the outbox sender", health.clone(), CancellationToken::new(), async {}).await;
        assert_eq!(health.problems().len(), 2, "a loop that returns early has stopped too");
    }

    #[tokio::test]
    async fn a_loop_that_ends_because_nudge_stops_is_no_problem() {
        let (health, shutdown) = (Health::default(), CancellationToken::new());
        shutdown.cancel();
        supervise("the scheduler", health.clone(), shutdown, async {}).await;
        assert!(health.problems().is_empty());
    }
}
