//! Types and rules with no I/O: ids, statuses and transitions, metric progress and celebration
//! thresholds, due-date parsing, schedule evaluation.

pub mod dates;
pub mod digest;
pub mod event;
pub mod experiment;
pub mod firings;
pub mod ids;
pub mod metric;
pub mod pledge;
pub mod schedule;
pub mod units;
