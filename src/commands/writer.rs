//! The command path the server uses: help at once, reads on the pool in read-only transactions,
//! writes through one writer per workspace.
//!
//! Every proposal and pledge takes the next short id from its workspace's counter, whose row stays
//! locked until commit, so one workspace's writes go one commit after another. Its writer takes
//! whatever has queued up while the previous commit was under way and runs it in one transaction
//! (see `execute::write_batch`), so a burst in one workspace pays for one commit. Workspaces never
//! wait for each other: each has its own writer, started on its first write and retired when idle.
//!
//! A panic is caught where the command runs, so it takes nothing down: a batch it broke is given up
//! and its other commands run again one by one, and the one that panicked is answered with an
//! apology. A writer that is gone is replaced by the next command to its workspace.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::Command;
use super::execute::{self, Abandoned, Invocation, help_reply, is_read};
use crate::config::Defaults;
use crate::message::Message;
use crate::store::{Store, StoreError, WorkspaceId};

/// Most commands sharing one commit: enough for a burst, small enough to keep each answer quick.
pub const MAX_BATCH: usize = 64;

/// A writer with nothing to do for this long is retired; the next write starts a new one.
const IDLE: Duration = Duration::from_secs(60);

/// Why a command got no answer of its own; the person is told something went wrong.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the command panicked: {0}")]
    Panicked(String),
    #[error("the command's writer stopped before answering")]
    Stopped,
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a writer runs; the server's is [`Executor`], tests put a faulty one in its place.
pub trait Run: Send + Sync + 'static {
    fn one(&self, job: (Invocation, Command)) -> BoxFuture<Result<Message, StoreError>>;
    fn batch(&self, jobs: Vec<(Invocation, Command)>)
    -> BoxFuture<Result<Vec<Result<Message, StoreError>>, Abandoned>>;
}

/// Runs commands against the store.
#[derive(Clone)]
pub struct Executor {
    pub store: Store,
    pub defaults: Arc<Defaults>,
}

impl Run for Executor {
    fn one(&self, (inv, command): (Invocation, Command)) -> BoxFuture<Result<Message, StoreError>> {
        let this = self.clone();
        Box::pin(async move { execute::write_one(&this.store, &this.defaults, &inv, command).await })
    }

    fn batch(
        &self,
        jobs: Vec<(Invocation, Command)>,
    ) -> BoxFuture<Result<Vec<Result<Message, StoreError>>, Abandoned>> {
        let this = self.clone();
        Box::pin(async move { execute::write_batch(&this.store, &this.defaults, &jobs).await })
    }
}

/// The handle every request path uses to run a command; cheap to clone.
#[derive(Clone)]
pub struct Commands {
    executor: Executor,
    writers: Writers,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands").finish_non_exhaustive()
    }
}

impl Commands {
    pub fn new(store: Store, defaults: Defaults) -> Commands {
        let executor = Executor { store, defaults: Arc::new(defaults) };
        let writers = Writers::new(Arc::new(executor.clone()));
        Commands { executor, writers }
    }

    /// Runs a command and waits for its answer.
    pub async fn execute(&self, invocation: Invocation, command: Command) -> Result<Message, CommandError> {
        match command {
            Command::Help(topic) => Ok(help_reply(topic)),
            command if is_read(&command) => {
                let Executor { store, defaults } = &self.executor;
                // A panic is an answer (an apology), not a dropped connection.
                let read = execute::read(store, defaults, &invocation, command);
                match AssertUnwindSafe(read).catch_unwind().await {
                    Ok(result) => Ok(result?),
                    Err(panic) => {
                        let cause = panic_text(panic.as_ref());
                        tracing::error!(cause, "a read panicked");
                        Err(CommandError::Panicked(cause))
                    }
                }
            }
            command => self.writers.submit(invocation, command).await,
        }
    }
}

struct Job {
    invocation: Invocation,
    command: Command,
    answer: oneshot::Sender<Result<Message, CommandError>>,
}

/// One writer per workspace that has written lately.
#[derive(Clone)]
pub struct Writers {
    run: Arc<dyn Run>,
    queues: Arc<Mutex<HashMap<WorkspaceId, mpsc::Sender<Job>>>>,
}

impl Writers {
    pub fn new(run: Arc<dyn Run>) -> Writers {
        Writers { run, queues: Arc::default() }
    }

    /// Hands a write command to its workspace's writer and waits for the answer.
    pub async fn submit(&self, invocation: Invocation, command: Command) -> Result<Message, CommandError> {
        let ws = invocation.workspace;
        let (answer, answered) = oneshot::channel();
        let mut job = Job { invocation, command, answer };
        // A writer that retired (or died) between looking it up and sending refuses the job; the
        // second try finds a new one.
        for _ in 0..3 {
            match self.queue(ws).send(job).await {
                Ok(()) => return answered.await.unwrap_or(Err(CommandError::Stopped)),
                Err(mpsc::error::SendError(refused)) => job = refused,
            }
        }
        Err(CommandError::Stopped)
    }

    /// The workspace's writer, started when it has none (or its last one is gone).
    fn queue(&self, ws: WorkspaceId) -> mpsc::Sender<Job> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = queues.get(&ws).filter(|q| !q.is_closed()) {
            return queue.clone();
        }
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        queues.insert(ws, queue.clone());
        tokio::spawn(write(ws, jobs, self.clone()));
        queue
    }

    /// Writers running now (each workspace that wrote in the last minute has one).
    pub fn running(&self) -> usize {
        self.queues.lock().unwrap_or_else(|e| e.into_inner()).values().filter(|q| !q.is_closed()).count()
    }
}

/// One workspace's writer: waits for a command, takes everything else already queued, runs them.
async fn write(ws: WorkspaceId, mut jobs: mpsc::Receiver<Job>, writers: Writers) {
    loop {
        let first = match tokio::time::timeout(IDLE, jobs.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(_idle) => {
                // Refuse new jobs first, then finish what was queued before, so none is lost.
                jobs.close();
                {
                    let mut queues = writers.queues.lock().unwrap_or_else(|e| e.into_inner());
                    if queues.get(&ws).is_some_and(|q| q.is_closed()) {
                        queues.remove(&ws);
                    }
                }
                while let Some(job) = jobs.recv().await {
                    run(&writers.run, vec![job]).await;
                }
                return;
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run(&writers.run, batch).await;
    }
}

/// Runs one command, a panic included in the answer.
async fn run_one(runner: &Arc<dyn Run>, job: (Invocation, Command)) -> Result<Message, CommandError> {
    match AssertUnwindSafe(runner.one(job)).catch_unwind().await {
        Ok(result) => result.map_err(CommandError::from),
        Err(panic) => {
            let cause = panic_text(panic.as_ref());
            tracing::error!(cause, "a command panicked");
            Err(CommandError::Panicked(cause))
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// Runs a batch and answers each command. A batch that is given up (or panics) before its commit
/// kept nothing, so its commands run again one by one.
async fn run(runner: &Arc<dyn Run>, batch: Vec<Job>) {
    let (answers, work): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|job| (job.answer, (job.invocation, job.command))).unzip();
    if work.len() > 1 {
        match AssertUnwindSafe(runner.batch(work.clone())).catch_unwind().await {
            Ok(Ok(results)) => {
                for (answer, result) in answers.into_iter().zip(results) {
                    // The asker may have gone (its request timed out); the command still happened.
                    let _ = answer.send(result.map_err(CommandError::from));
                }
                return;
            }
            Ok(Err(abandoned)) => {
                tracing::warn!(
                    ?abandoned,
                    commands = work.len(),
                    "a shared transaction was given up; running its commands one by one"
                );
            }
            Err(panic) => {
                let cause = panic_text(panic.as_ref());
                tracing::error!(
                    cause,
                    commands = work.len(),
                    "a command panicked in a shared transaction; running its commands one by one"
                );
            }
        }
    }
    for (answer, job) in answers.into_iter().zip(work) {
        let _ = answer.send(run_one(runner, job).await);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::commands::parse;
    use crate::config::Config;

    /// The real executor, except that a pledge to "panic" panics, as a bug would.
    struct Faulty(Executor);

    fn panics(command: &Command) -> bool {
        matches!(command, Command::Pledge(crate::commands::PledgeCommand::Make { text, .. }) if text == "panic")
    }

    impl Run for Faulty {
        fn one(&self, job: (Invocation, Command)) -> BoxFuture<Result<Message, StoreError>> {
            if panics(&job.1) {
                return Box::pin(async { panic!("a bug in a command") });
            }
            self.0.one(job)
        }

        fn batch(
            &self,
            jobs: Vec<(Invocation, Command)>,
        ) -> BoxFuture<Result<Vec<Result<Message, StoreError>>, Abandoned>> {
            if jobs.iter().any(|(_, command)| panics(command)) {
                return Box::pin(async { panic!("a bug in a command") });
            }
            self.0.batch(jobs)
        }
    }

    async fn store(dir: &tempfile::TempDir) -> (Store, Defaults) {
        let url = secrecy::SecretString::from(format!("sqlite://{}", dir.path().join("nudge.db").display()));
        let store = Store::connect(&url, 4).await.unwrap();
        store.migrate().await.unwrap();
        let empty = dir.path().join("empty.toml");
        std::fs::write(&empty, "").unwrap();
        let env = HashMap::from([("NUDGE_CONFIG".to_string(), empty.display().to_string())]);
        (store, Config::load(&env).unwrap().defaults)
    }

    fn typed(ws: WorkspaceId, text: &str) -> (Invocation, Command) {
        let invocation = Invocation {
            workspace: ws,
            direct: false,
            channel_id: "C01".into(),
            channel_name: "growth".into(),
            member_id: "U01".into(),
            member_name: "Ada".into(),
            now: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        };
        (invocation, parse("/pledge", text).unwrap())
    }

    #[tokio::test]
    async fn a_panicking_command_gets_an_error_and_the_commands_around_it_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let (store, defaults) = store(&dir).await;
        let mut tx = store.begin().await.unwrap();
        let ws = tx.ensure_workspace("test", "T01", "Acme", Utc::now()).await.unwrap();
        tx.commit().await.unwrap();
        let writers = Writers::new(Arc::new(Faulty(Executor { store: store.clone(), defaults: Arc::new(defaults) })));

        // Three at once, so the panicking one is in a shared batch with the others.
        let submit = |text: &'static str| {
            let writers = writers.clone();
            async move {
                let (invocation, command) = typed(ws, text);
                writers.submit(invocation, command).await
            }
        };
        let (before, panicked, after) =
            tokio::join!(submit("call Ana by fri"), submit("panic by fri"), submit("call Bo by fri"));
        assert!(matches!(panicked, Err(CommandError::Panicked(_))), "{panicked:?}");
        let kept: Vec<String> = [before, after].into_iter().map(|r| r.expect("answered").text).collect();
        assert!(kept.iter().all(|text| text.contains("pledged")), "{kept:?}");

        // The writer still takes commands after the panic.
        let (invocation, command) = typed(ws, "call Cy by fri");
        assert!(writers.submit(invocation, command).await.unwrap().text.contains("P-3"));
    }
}
