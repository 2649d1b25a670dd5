//! The event log's vocabulary: every change a command or job makes is one event, and the digest,
//! scoreboard and exports are computed from them alone.

use chrono::{DateTime, Utc};

use super::ids::{ChannelId, MemberId};

/// What happened, in the event log's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ExperimentProposed,
    ExperimentStarted,
    ReadingRecorded,
    ExperimentClosed,
    ExperimentVoted,
    ExperimentEdited,
    ExperimentAbandoned,
    ReadingDeleted,
    PledgeMade,
    PledgeKept,
    PledgeExtended,
    PledgeReleased,
    PledgeBroken,
    RulesSet,
    ScheduleSet,
    QuietDaysSet,
    PauseSet,
}

impl EventKind {
    const ALL: [EventKind; 17] = [
        EventKind::ExperimentProposed,
        EventKind::ExperimentStarted,
        EventKind::ReadingRecorded,
        EventKind::ExperimentClosed,
        EventKind::ExperimentVoted,
        EventKind::ExperimentEdited,
        EventKind::ExperimentAbandoned,
        EventKind::ReadingDeleted,
        EventKind::PledgeMade,
        EventKind::PledgeKept,
        EventKind::PledgeExtended,
        EventKind::PledgeReleased,
        EventKind::PledgeBroken,
        EventKind::RulesSet,
        EventKind::ScheduleSet,
        EventKind::QuietDaysSet,
        EventKind::PauseSet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ExperimentProposed => "experiment.proposed",
            EventKind::ExperimentStarted => "experiment.started",
            EventKind::ReadingRecorded => "reading.recorded",
            EventKind::ExperimentClosed => "experiment.closed",
            EventKind::ExperimentVoted => "experiment.voted",
            EventKind::ExperimentEdited => "experiment.edited",
            EventKind::ExperimentAbandoned => "experiment.abandoned",
            EventKind::ReadingDeleted => "reading.deleted",
            EventKind::PledgeMade => "pledge.made",
            EventKind::PledgeKept => "pledge.kept",
            EventKind::PledgeExtended => "pledge.extended",
            EventKind::PledgeReleased => "pledge.released",
            EventKind::PledgeBroken => "pledge.broken",
            EventKind::RulesSet => "channel.rules_set",
            EventKind::ScheduleSet => "channel.schedule_set",
            EventKind::QuietDaysSet => "channel.quiet_days_set",
            EventKind::PauseSet => "channel.pause_set",
        }
    }

    pub fn from_stored(word: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

pub struct NewEvent<'a> {
    pub channel: Option<ChannelId>,
    pub actor: Option<MemberId>,
    pub kind: EventKind,
    pub subject: Option<String>,
    pub data: &'a serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub kind: EventKind,
    pub subject: Option<String>,
    pub actor: Option<MemberId>,
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}
