//! Channel schedules: 5-field cron or "mon 09:30" shorthands, evaluated in an IANA time zone.
//! OWNED BY HELPER: interface only.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

impl Schedule {
    pub fn parse(_text: &str) -> Result<Schedule, ScheduleError> {
        todo!()
    }
    pub fn expression(&self) -> &str {
        &self.expression
    }
    pub fn describe(&self) -> String {
        todo!()
    }
    pub fn next_after(&self, _after: DateTime<Utc>, _tz: Tz) -> Option<DateTime<Utc>> {
        todo!()
    }
}

pub fn parse_time_zone(_text: &str) -> Result<Tz, ScheduleError> {
    todo!()
}
