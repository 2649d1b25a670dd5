//! Pledges: statuses, the capacity rule, and when an open pledge counts as broken.

use chrono::NaiveDate;

/// A pledge is open until it is kept or released; "broken" is overdue-and-open, recorded when the
/// channel is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PledgeStatus {
    Open,
    Kept,
    Released,
    Broken,
}

impl PledgeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PledgeStatus::Open => "open",
            PledgeStatus::Kept => "kept",
            PledgeStatus::Released => "released",
            PledgeStatus::Broken => "broken",
        }
    }

    pub fn from_stored(word: &str) -> Option<PledgeStatus> {
        match word {
            "open" => Some(PledgeStatus::Open),
            "kept" => Some(PledgeStatus::Kept),
            "released" => Some(PledgeStatus::Released),
            "broken" => Some(PledgeStatus::Broken),
            _ => None,
        }
    }

    /// Kept and released are final. A broken pledge can still be kept late or released honestly.
    pub fn can_resolve(self) -> bool {
        matches!(self, PledgeStatus::Open | PledgeStatus::Broken)
    }
}

/// How many whole days a pledge due on `due` is overdue on `today` (0 when not yet overdue).
pub fn days_overdue(due: NaiveDate, today: NaiveDate) -> i64 {
    (today - due).num_days().max(0)
}

/// Whether a member with `open` pledges may make another under a limit of `max_open`.
pub fn has_capacity(open: usize, max_open: u32) -> bool {
    open < max_open as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fourth_pledge_exceeds_the_default_capacity_of_three() {
        assert!(has_capacity(2, 3));
        assert!(!has_capacity(3, 3));
    }

    #[test]
    fn overdue_days_start_the_day_after_the_due_date() {
        let due = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        assert_eq!(days_overdue(due, due), 0);
        assert_eq!(days_overdue(due, due.succ_opt().unwrap()), 1);
        assert_eq!(days_overdue(due, NaiveDate::from_ymd_opt(2026, 11, 19).unwrap()), 0);
    }

    #[test]
    fn only_open_or_broken_pledges_can_be_kept_or_released() {
        assert!(PledgeStatus::Open.can_resolve());
        assert!(PledgeStatus::Broken.can_resolve());
        assert!(!PledgeStatus::Kept.can_resolve());
        assert!(!PledgeStatus::Released.can_resolve());
        assert_eq!(PledgeStatus::from_stored("kept"), Some(PledgeStatus::Kept));
    }
}
