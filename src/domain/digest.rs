//! The weekly digest and scoreboard, computed from the event log alone (so the scheduled digest,
//! `/nudge digest` and later exports agree).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::event::{EventKind, EventRecord};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digest {
    pub proposed: usize,
    pub started: usize,
    pub readings: usize,
    pub won: usize,
    pub lost: usize,
    pub inconclusive: usize,
    pub pledges_made: usize,
    pub pledges_kept: usize,
    pub pledges_released: usize,
    pub pledges_broken: usize,
    /// Weeks in a row, up to this one, with at least one learning logged (this week may still be
    /// empty without breaking the streak: it is not over yet).
    pub learning_streak_weeks: usize,
}

impl Digest {
    /// Counts the last seven days of `events` and the learning streak over all of them.
    pub fn compute(events: &[EventRecord], now: DateTime<Utc>, zone: Tz) -> Digest {
        let week_ago = now - Duration::days(7);
        let mut digest = Digest::default();
        let mut learning_weeks = BTreeSet::new();
        for event in events {
            if event.kind == EventKind::ExperimentClosed {
                learning_weeks.insert(week_start(event.at.with_timezone(&zone).date_naive()));
            }
            if event.at < week_ago || event.at > now {
                continue;
            }
            match event.kind {
                EventKind::ExperimentProposed => digest.proposed += 1,
                EventKind::ExperimentStarted => digest.started += 1,
                EventKind::ReadingRecorded => digest.readings += 1,
                EventKind::ExperimentClosed => match event.data.get("outcome").and_then(|o| o.as_str()) {
                    Some("won") => digest.won += 1,
                    Some("lost") => digest.lost += 1,
                    _ => digest.inconclusive += 1,
                },
                EventKind::PledgeMade => digest.pledges_made += 1,
                EventKind::PledgeKept => digest.pledges_kept += 1,
                EventKind::PledgeReleased => digest.pledges_released += 1,
                EventKind::PledgeBroken => digest.pledges_broken += 1,
                _ => {}
            }
        }
        let this_week = week_start(now.with_timezone(&zone).date_naive());
        let mut week = if learning_weeks.contains(&this_week) { this_week } else { this_week - Duration::weeks(1) };
        while learning_weeks.contains(&week) {
            digest.learning_streak_weeks += 1;
            week -= Duration::weeks(1);
        }
        digest
    }

    /// Nothing happened in the seven days counted (the streak is history, not this week's news).
    pub fn is_quiet_week(&self) -> bool {
        *self == Digest { learning_streak_weeks: self.learning_streak_weeks, ..Digest::default() }
    }

    pub fn learnings(&self) -> usize {
        self.won + self.lost + self.inconclusive
    }
}

/// The Monday that starts the week of `day`.
fn week_start(day: NaiveDate) -> NaiveDate {
    day - Duration::days(day.weekday().num_days_from_monday().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event(kind: EventKind, at: DateTime<Utc>, data: serde_json::Value) -> EventRecord {
        EventRecord { kind, subject: None, actor: None, data, at }
    }

    #[test]
    fn the_digest_counts_only_the_last_seven_days() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let events = vec![
            event(EventKind::ExperimentProposed, now - Duration::days(10), serde_json::json!({})),
            event(EventKind::ExperimentProposed, now - Duration::days(2), serde_json::json!({})),
            event(EventKind::ExperimentClosed, now - Duration::days(1), serde_json::json!({"outcome": "lost"})),
            event(EventKind::PledgeKept, now - Duration::hours(3), serde_json::json!({})),
        ];
        let digest = Digest::compute(&events, now, chrono_tz::UTC);
        assert_eq!((digest.proposed, digest.lost, digest.pledges_kept), (1, 1, 1));
        assert_eq!(digest.learnings(), 1);
    }

    #[test]
    fn the_streak_counts_consecutive_weeks_with_a_learning() {
        // Friday 27 Nov 2026; learnings in the weeks of 16 Nov and 9 Nov, none yet this week.
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let closed = |y, m, d| {
            event(
                EventKind::ExperimentClosed,
                Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap(),
                serde_json::json!({"outcome": "won"}),
            )
        };
        let digest = Digest::compute(&[closed(2026, 11, 10), closed(2026, 11, 18)], now, chrono_tz::UTC);
        assert_eq!(digest.learning_streak_weeks, 2);
        // A gap week ends the streak.
        let digest = Digest::compute(&[closed(2026, 11, 3), closed(2026, 11, 18)], now, chrono_tz::UTC);
        assert_eq!(digest.learning_streak_weeks, 1);
        let digest = Digest::compute(&[closed(2026, 11, 3)], now, chrono_tz::UTC);
        assert_eq!(digest.learning_streak_weeks, 0);
    }

    #[test]
    fn a_week_without_activity_is_quiet_even_with_a_streak_behind_it() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let old_learning =
            event(EventKind::ExperimentClosed, now - Duration::days(9), serde_json::json!({"outcome": "won"}));
        let digest = Digest::compute(std::slice::from_ref(&old_learning), now, chrono_tz::UTC);
        assert_eq!(digest.learning_streak_weeks, 1, "last week's learning still counts for the streak");
        assert!(digest.is_quiet_week(), "but nothing happened in the last seven days");
        let kept = event(EventKind::PledgeKept, now - Duration::days(1), serde_json::json!({}));
        assert!(!Digest::compute(&[old_learning, kept], now, chrono_tz::UTC).is_quiet_week());
    }
}
