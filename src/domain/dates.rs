//! Due dates as people type them ("fri", "in 3 days", "2026-12-01"), resolved in a time zone.
//! OWNED BY HELPER: interface only.

use chrono::{NaiveDate, Weekday};

/// A due date as typed; resolved against "today" in the channel's or owner's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueDate {
    Today,
    Tomorrow,
    /// "fri", "friday": the next such day, today included.
    Weekday(Weekday),
    /// "next fri": that day in the following week (Monday-based weeks).
    NextWeekday(Weekday),
    /// "next week": seven days from today.
    NextWeek,
    InDays(u32),
    InWeeks(u32),
    On(NaiveDate),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DateError(pub String);

impl DueDate {
    pub fn parse(_text: &str) -> Result<DueDate, DateError> {
        todo!()
    }

    pub fn resolve(&self, _today: NaiveDate) -> NaiveDate {
        todo!()
    }
}
