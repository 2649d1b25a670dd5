//! Experiment statuses and the transitions between them:
//! `proposed → running → closed{won|lost|inconclusive}`, or `abandoned`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::ExperimentRef;

/// How an experiment ended. Every outcome comes with a learning; a lost experiment is progress too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Won,
    Lost,
    Inconclusive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    Proposed,
    Running,
    Closed(Outcome),
    Abandoned,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Won => "won",
            Outcome::Lost => "lost",
            Outcome::Inconclusive => "inconclusive",
        }
    }

    pub fn parse(word: &str) -> Option<Outcome> {
        match word.to_ascii_lowercase().as_str() {
            "won" | "win" => Some(Outcome::Won),
            "lost" | "lose" => Some(Outcome::Lost),
            "inconclusive" => Some(Outcome::Inconclusive),
            _ => None,
        }
    }
}

impl ExperimentStatus {
    /// The word stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentStatus::Proposed => "proposed",
            ExperimentStatus::Running => "running",
            ExperimentStatus::Closed(outcome) => outcome.as_str(),
            ExperimentStatus::Abandoned => "abandoned",
        }
    }

    pub fn from_stored(word: &str) -> Option<ExperimentStatus> {
        match word {
            "proposed" => Some(ExperimentStatus::Proposed),
            "running" => Some(ExperimentStatus::Running),
            "abandoned" => Some(ExperimentStatus::Abandoned),
            other => Outcome::parse(other).map(ExperimentStatus::Closed),
        }
    }

    pub fn is_closed(self) -> bool {
        matches!(self, ExperimentStatus::Closed(_) | ExperimentStatus::Abandoned)
    }
}

impl fmt::Display for ExperimentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transition that the experiment's status does not allow, explained with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("{0} is already running.")]
    AlreadyRunning(ExperimentRef),
    #[error("{0} is still proposed; start it first with `/experiment start {0}`.")]
    NotStarted(ExperimentRef),
    #[error("{0} is already closed ({1}); propose a follow-up to keep going.")]
    AlreadyClosed(ExperimentRef, ExperimentStatus),
    #[error("{0} is already {1}; votes order the backlog of proposed experiments.")]
    NotInBacklog(ExperimentRef, ExperimentStatus),
}

/// `/experiment start`: only a proposed experiment can start.
pub fn start(id: ExperimentRef, status: ExperimentStatus) -> Result<ExperimentStatus, TransitionError> {
    match status {
        ExperimentStatus::Proposed => Ok(ExperimentStatus::Running),
        ExperimentStatus::Running => Err(TransitionError::AlreadyRunning(id)),
        closed => Err(TransitionError::AlreadyClosed(id, closed)),
    }
}

/// `/experiment close`: only a running experiment can close, and it closes with an outcome.
pub fn close(
    id: ExperimentRef,
    status: ExperimentStatus,
    outcome: Outcome,
) -> Result<ExperimentStatus, TransitionError> {
    match status {
        ExperimentStatus::Running => Ok(ExperimentStatus::Closed(outcome)),
        ExperimentStatus::Proposed => Err(TransitionError::NotStarted(id)),
        closed => Err(TransitionError::AlreadyClosed(id, closed)),
    }
}

/// `/experiment update`: readings are recorded while an experiment runs.
pub fn record_reading(id: ExperimentRef, status: ExperimentStatus) -> Result<(), TransitionError> {
    match status {
        ExperimentStatus::Running => Ok(()),
        ExperimentStatus::Proposed => Err(TransitionError::NotStarted(id)),
        closed => Err(TransitionError::AlreadyClosed(id, closed)),
    }
}

/// `/experiment abandon`: a proposed or running experiment can be given up, with a reason.
pub fn abandon(id: ExperimentRef, status: ExperimentStatus) -> Result<ExperimentStatus, TransitionError> {
    match status {
        ExperimentStatus::Proposed | ExperimentStatus::Running => Ok(ExperimentStatus::Abandoned),
        closed => Err(TransitionError::AlreadyClosed(id, closed)),
    }
}

/// `/experiment edit`: what is still open can change; a closed experiment is what it was.
pub fn edit(id: ExperimentRef, status: ExperimentStatus) -> Result<(), TransitionError> {
    match status {
        ExperimentStatus::Proposed | ExperimentStatus::Running => Ok(()),
        closed => Err(TransitionError::AlreadyClosed(id, closed)),
    }
}

/// `/experiment vote`: votes order the backlog, so only proposed experiments take them.
pub fn vote(id: ExperimentRef, status: ExperimentStatus) -> Result<(), TransitionError> {
    match status {
        ExperimentStatus::Proposed => Ok(()),
        other => Err(TransitionError::NotInBacklog(id, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E3: ExperimentRef = ExperimentRef(3);

    #[test]
    fn an_experiment_runs_from_proposed_to_closed() {
        let running = start(E3, ExperimentStatus::Proposed).unwrap();
        assert_eq!(running, ExperimentStatus::Running);
        assert!(record_reading(E3, running).is_ok());
        let closed = close(E3, running, Outcome::Lost).unwrap();
        assert_eq!(closed.as_str(), "lost");
        assert!(closed.is_closed());
    }

    #[test]
    fn wrong_transitions_say_what_to_do_instead() {
        let err = close(E3, ExperimentStatus::Proposed, Outcome::Won).unwrap_err();
        assert!(err.to_string().contains("/experiment start E-3"), "{err}");
        let err = start(E3, ExperimentStatus::Closed(Outcome::Won)).unwrap_err();
        assert!(err.to_string().contains("already closed (won)"), "{err}");
        assert!(record_reading(E3, ExperimentStatus::Proposed).is_err());
        assert!(vote(E3, ExperimentStatus::Running).is_err());
        assert!(start(E3, ExperimentStatus::Running).is_err());
    }

    #[test]
    fn statuses_round_trip_through_their_stored_words() {
        for status in [
            ExperimentStatus::Proposed,
            ExperimentStatus::Running,
            ExperimentStatus::Closed(Outcome::Won),
            ExperimentStatus::Closed(Outcome::Lost),
            ExperimentStatus::Closed(Outcome::Inconclusive),
            ExperimentStatus::Abandoned,
        ] {
            assert_eq!(ExperimentStatus::from_stored(status.as_str()), Some(status));
        }
        assert_eq!(ExperimentStatus::from_stored("bogus"), None);
    }
}
