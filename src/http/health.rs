//! `/healthz` says the process is up; `/readyz` says it can do its work: the database answers and
//! every background loop (scheduler, sender) is still running, and the database takes a write
//! (answering reads is not enough: a full disk or a read-only file stops every command).

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

/// The background loops that stopped while they should still run, with why.
#[derive(Clone, Default)]
pub struct Health {
    stopped: Arc<Mutex<Vec<String>>>,
}

impl Health {
    /// Records that a background loop stopped; `/readyz` fails from now on.
    pub fn stopped(&self, what: &str, cause: &str) {
        tracing::error!(task = what, cause, "a background task stopped; /readyz now fails");
        self.stopped.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{what}: {cause}"));
    }

    /// What stopped, if anything.
    pub fn problems(&self) -> Vec<String> {
        self.stopped.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let stopped = state.health.problems();
    if !stopped.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("stopped: {}\n", stopped.join("; ")));
    }
    // Bounded, so a probe stuck behind a long write still answers before an orchestrator's timeout.
    let probe = tokio::time::timeout(PROBE_TIMEOUT, state.store.probe_write(chrono::Utc::now())).await;
    match probe {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".into()),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database cannot take writes\n".into())
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database did not take a write within 2 s\n".into()),
    }
}
