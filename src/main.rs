//! The `nudge` command line: `serve` (the default), `migrate`, `check-config`, and `outbox` (with
//! `outbox retry`), which inspect an existing database and never create or migrate one.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use nudge::clock::{Clock, SystemClock};
use nudge::config::Config;
use nudge::startup::{Application, banner};
use nudge::store::{DeadPosts, OutboundId, Store, StoreError};
use nudge::telemetry;

#[derive(Parser)]
#[command(name = "nudge", version, about = "A chat bot that keeps a team moving through test-and-learn cycles")]
struct Cli {
    /// Configuration file (default: ./config/nudge.toml when it exists). Also NUDGE_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhooks and run the scheduler (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration file and environment, print the result, and exit.
    CheckConfig,
    /// Show the outbox: posts pending, sending, sent and dead, with the reasons for dead ones.
    /// Reads the existing database only: never creates or migrates one.
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
}

#[derive(Subcommand)]
enum OutboxAction {
    /// Put dead posts back in the queue, attempts reset and due now.
    Retry(RetryArgs),
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct RetryArgs {
    /// The dead post to retry, by the number `nudge outbox` shows (`dead #12`).
    id: Option<i64>,
    /// Retry every dead post.
    #[arg(long)]
    dead: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut env: HashMap<String, String> = std::env::vars().collect();
    if let Some(path) = cli.config {
        env.insert("NUDGE_CONFIG".into(), path);
    }
    let config = match Config::load(&env) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("nudge cannot start: {errors}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::CheckConfig = command {
        let file = config.file.as_ref().map_or("no file".to_string(), |p| p.display().to_string());
        println!(
            "configuration is valid (read {file}); would listen on {} with {}",
            config.listen,
            config.database_display()
        );
        return ExitCode::SUCCESS;
    }
    telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("nudge cannot start its runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Migrate => migrate(config).await,
            Command::Outbox { action: None } => outbox(config).await,
            Command::Outbox { action: Some(OutboxAction::Retry(args)) } => retry(config, args).await,
            _ => serve(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "nudge stopped");
            eprintln!("nudge stopped: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url, 1).await?;
    store.migrate().await?;
    store.close().await;
    println!("migrations applied to {}", config.database_display());
    Ok(())
}

/// Opens the database an inspection command looks at, saying which; a missing one is an error
/// that says what to do, never a new empty database.
async fn existing_store(config: &Config) -> anyhow::Result<Store> {
    let database = config.database_display();
    match Store::connect_existing(&config.database_url, 1).await {
        Ok(store) => {
            println!("database: {database}");
            Ok(store)
        }
        Err(StoreError::NotSetUp(missing)) => Err(anyhow::anyhow!(
            "cannot inspect {database}: {missing}. This command never creates or migrates a database: point \
             DATABASE_URL (or database.url in the configuration file) at the one `nudge serve` uses, or run \
             `nudge migrate` first"
        )),
        Err(error) => Err(anyhow::Error::new(error).context(format!("cannot open the database ({database})"))),
    }
}

async fn outbox(config: Config) -> anyhow::Result<()> {
    let store = existing_store(&config).await?;
    let report = {
        let mut tx = store.read().await?;
        tx.outbox_report(50).await
    };
    store.close().await;
    let report = report?;
    println!(
        "outbox: {} pending, {} sending, {} sent, {} dead",
        report.pending, report.sending, report.sent, report.dead
    );
    for dead in &report.dead_posts {
        println!(
            "  dead #{} (workspace {}, {} {}) after {} attempt(s): {}",
            dead.id.0, dead.workspace_id.0, dead.platform, dead.address, dead.attempts, dead.last_error
        );
    }
    Ok(())
}

async fn retry(config: Config, args: RetryArgs) -> anyhow::Result<()> {
    let which = match args.id {
        Some(id) => DeadPosts::One(OutboundId(id)),
        None => DeadPosts::All,
    };
    let store = existing_store(&config).await?;
    let result = async {
        let mut tx = store.begin().await?;
        let requeued = tx.retry_dead_messages(which, SystemClock.now()).await?;
        let status = match which {
            DeadPosts::One(id) if requeued == 0 => Some(tx.outbound_status(id).await?),
            _ => None,
        };
        // Wakes the senders of any Postgres replicas; on SQLite the server finds them at its next poll.
        if requeued > 0 {
            tx.announce_queued_posts().await?;
        }
        tx.commit().await?;
        Ok::<_, StoreError>((requeued, status))
    }
    .await;
    store.close().await;
    let (requeued, status) = result?;
    match (which, status) {
        (DeadPosts::One(id), Some(None)) => anyhow::bail!("requeued nothing: there is no post #{} in the outbox", id.0),
        (DeadPosts::One(id), Some(Some(status))) => {
            anyhow::bail!("requeued nothing: post #{} is {status}, and only dead posts are retried", id.0)
        }
        _ => {
            println!("requeued {requeued} dead post(s): pending again, attempts reset, due now");
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config.clone(), Arc::new(SystemClock)).await?;
    println!("{}", banner(&config, app.address()));
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    app.run_until_stopped(shutdown).await?;
    tracing::info!("nudge stopped cleanly");
    Ok(())
}

/// Cancels the shared token on SIGTERM or Ctrl-C, so every loop stops and the process exits 0.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C still stops nudge");
                let _ = ctrl_c.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("stopping: finishing requests in flight");
    shutdown.cancel();
}
