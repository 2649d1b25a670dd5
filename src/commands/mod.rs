//! The command core: one grammar for every platform (text → [`Command`]), one reader for every
//! platform's forms, and their execution (Command → [`Message`](crate::message::Message)), free of
//! any platform's wire format.

pub mod actions;
mod channel;
pub mod execute;
mod experiments;
pub mod form;
pub mod grammar;
mod pledges;
pub mod writer;

use chrono::{NaiveDate, Weekday};
use chrono_tz::Tz;

use crate::domain::dates::DueDate;
use crate::domain::experiment::Outcome;
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::metric::Metric;
use crate::domain::schedule::Schedule;

pub use execute::{Invocation, execute};
pub use grammar::{UsageError, parse};
pub use writer::{CommandError, Commands};

/// A command as typed, already checked for form (not yet against the store).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help(HelpTopic),
    Experiment(ExperimentCommand),
    Pledge(PledgeCommand),
    Nudge(NudgeCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelpTopic {
    All,
    Experiment,
    Pledge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExperimentCommand {
    Propose(Proposal),
    /// One page (from 1) of the channel's experiments.
    List {
        filter: ExperimentFilter,
        page: u32,
    },
    Show(ExperimentRef),
    Start(ExperimentRef),
    /// A reading: `value` as typed, in `unit` when one was typed. `confirmed` when the person said
    /// yes to a reading far outside the experiment's range.
    Update {
        experiment: ExperimentRef,
        value: f64,
        unit: Option<String>,
        note: Option<String>,
        confirmed: bool,
    },
    Close {
        experiment: ExperimentRef,
        outcome: Outcome,
        learning: String,
    },
    Vote(ExperimentRef),
    Learnings {
        words: Option<String>,
    },
    /// An experiment's readings, or the deletion of one by its number.
    Readings {
        experiment: ExperimentRef,
        delete: Option<i64>,
    },
    Edit {
        experiment: ExperimentRef,
        change: Change,
    },
    Abandon {
        experiment: ExperimentRef,
        reason: String,
    },
}

/// One change `/experiment edit` makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Title(String),
    Hypothesis(String),
    MetricName(String),
    /// The unit shown with the metric's values (they are not converted).
    Unit(Option<String>),
    Target {
        value: f64,
        unit: Option<String>,
    },
    Review(DueDate),
}

/// `/experiment propose <title> | <hypothesis> | <metric> <baseline> -> <target> [by <date>]`
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub title: String,
    pub hypothesis: String,
    pub metric: Metric,
    pub review: Option<DueDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExperimentFilter {
    /// Proposed and running: what the team is working on (the default).
    #[default]
    Active,
    Proposed,
    Running,
    Closed,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PledgeCommand {
    Make {
        text: String,
        due: DueDate,
    },
    Done {
        pledge: PledgeRef,
        note: Option<String>,
    },
    /// Move the due date; a broken pledge that is extended is open again.
    Extend {
        pledge: PledgeRef,
        due: DueDate,
    },
    Release {
        pledge: PledgeRef,
        reason: String,
    },
    List(PledgeFilter),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PledgeFilter {
    #[default]
    Mine,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NudgeCommand {
    ShowRules,
    SetRules(String),
    ShowSchedule,
    SetSchedule {
        schedule: Schedule,
        time_zone: Option<Tz>,
    },
    Quiet(QuietChange),
    /// Pause automated posts for this many weeks; 0 resumes them.
    Pause {
        weeks: u32,
    },
    Digest,
    Settings,
    /// A signed link to the channel's dashboard.
    Dashboard,
}

/// `/nudge quiet …`: weekdays replace the channel's quiet weekdays, dates are added as holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuietChange {
    Set {
        weekdays: Option<Vec<Weekday>>,
        holidays: Vec<NaiveDate>,
    },
    /// `/nudge quiet off`: no quiet weekdays and no holidays.
    Clear,
}
