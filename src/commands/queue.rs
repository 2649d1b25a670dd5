//! The command queue: commands that arrive together share one transaction and one commit.
//!
//! Every proposal and pledge in a workspace takes the next short id from the workspace's counter
//! inside its own transaction, so with one transaction per command, concurrent commands in a
//! workspace wait for each other's commits one by one. One writer takes whatever has queued up
//! while the previous group committed and runs it under savepoints (see `execute_batch`): each
//! command still succeeds or changes nothing on its own, and the group pays for one commit.

use tokio::sync::{mpsc, oneshot};

use super::execute::{execute_batch, help_reply};
use super::{Command, Invocation, Reply};
use crate::config::Defaults;
use crate::store::{Store, StoreError};

/// Most commands sharing one commit; enough to cover a burst, small enough to keep latency low.
pub const MAX_GROUP: usize = 64;

struct Job {
    invocation: Invocation,
    command: Command,
    answer: oneshot::Sender<Result<Reply, StoreError>>,
}

/// A handle to the writer; cheap to clone. The writer stops when every handle is gone.
#[derive(Clone)]
pub struct CommandQueue {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for CommandQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandQueue").finish_non_exhaustive()
    }
}

impl CommandQueue {
    pub fn start(store: Store, defaults: Defaults) -> CommandQueue {
        let (jobs, queued) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(write(queued, store, defaults));
        CommandQueue { jobs }
    }

    /// Runs a command and waits for its answer. Help is answered at once, without the queue.
    pub async fn execute(&self, invocation: Invocation, command: Command) -> Result<Reply, StoreError> {
        if let Command::Help(topic) = command {
            return Ok(help_reply(topic));
        }
        let (answer, answered) = oneshot::channel();
        self.jobs.send(Job { invocation, command, answer }).await.map_err(|_| StoreError::QueueClosed)?;
        answered.await.map_err(|_| StoreError::QueueClosed)?
    }
}

/// The writer: waits for a command, takes everything else already queued, runs them together.
async fn write(mut queued: mpsc::Receiver<Job>, store: Store, defaults: Defaults) {
    while let Some(first) = queued.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queued.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (answers, work): (Vec<_>, Vec<_>) =
            group.into_iter().map(|job| (job.answer, (job.invocation, job.command))).unzip();
        let results = execute_batch(&store, &defaults, work).await;
        for (answer, result) in answers.into_iter().zip(results) {
            // The asker may have gone (its request timed out); the command still happened.
            let _ = answer.send(result);
        }
    }
}
