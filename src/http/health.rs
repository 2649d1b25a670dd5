//! `/healthz` says the process is up; `/readyz` says it can do its work: the database answers and
//! every background loop (scheduler, sender) is still running.

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

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let stopped = state.health.problems();
    if !stopped.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("stopped: {}\n", stopped.join("; ")));
    }
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n".into())
        }
    }
}
