//! When each of a channel's scheduled jobs fires (DESIGN.md §4): the weekly check-in on the
//! channel's schedule, the digest on Friday afternoon, the mid-week batch of small wins, and each open
//! pledge's reminder stages in its owner's morning. Pure: the scheduler keeps each job's next firing
//! in a table and asks these rules what a due one does and when it fires next.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::schedule::{QuietDays, Schedule};

/// An occurrence later than this is recorded as skipped instead of fired.
pub const LATE_LIMIT: Duration = Duration::hours(6);

/// Local hour of pledge reminders.
pub const REMINDER_HOUR: u32 = 9;

/// Firings further back than this are never looked for: anything older is long past the late limit.
const LOOK_BACK: Duration = Duration::days(8);

/// The weekly digest, in each channel's time zone: Friday 16:00.
pub static DIGEST_SCHEDULE: LazyLock<Schedule> =
    LazyLock::new(|| Schedule::parse("0 16 * * 5").expect("a valid constant schedule"));

/// The mid-week batch of small wins, in each channel's time zone: Wednesday 17:00. With Monday's
/// check-in and Friday's digest (which carries the wins since) a channel gets at most three
/// automated posts in a normal week: the never-nag budget.
pub static CELEBRATIONS_SCHEDULE: LazyLock<Schedule> =
    LazyLock::new(|| Schedule::parse("0 17 * * 3").expect("a valid constant schedule"));

/// A job every channel has, with its name in the occurrences and next-firing tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelJob {
    CheckIn,
    Digest,
    Celebrations,
}

impl ChannelJob {
    pub const ALL: [ChannelJob; 3] = [ChannelJob::CheckIn, ChannelJob::Digest, ChannelJob::Celebrations];

    pub fn name(self) -> &'static str {
        match self {
            ChannelJob::CheckIn => "checkin",
            ChannelJob::Digest => "digest",
            ChannelJob::Celebrations => "celebrations",
        }
    }

    pub fn from_name(name: &str) -> Option<ChannelJob> {
        ChannelJob::ALL.into_iter().find(|job| job.name() == name)
    }

    /// The schedule the job follows; the check-in follows the channel's own.
    pub fn schedule(self, checkin: &Schedule) -> &Schedule {
        match self {
            ChannelJob::CheckIn => checkin,
            ChannelJob::Digest => &DIGEST_SCHEDULE,
            ChannelJob::Celebrations => &CELEBRATIONS_SCHEDULE,
        }
    }
}

/// What a job that came due does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due<T> {
    /// Fire the occurrence at this instant (it is less than [`LATE_LIMIT`] late).
    Fire(T),
    /// Record the occurrence at this instant as skipped: it is too late to be worth posting.
    Skip(T),
    /// Nothing has come due since the row was written (a setting moved the firing later).
    Nothing,
}

/// The latest firing of `schedule` in [`since`, `now`] (or a little further back than `since` is
/// not looked at): only the latest occurrence matters, older missed ones are not posted at all.
pub fn latest_firing(schedule: &Schedule, zone: Tz, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut cursor = since.max(now - LOOK_BACK) - Duration::milliseconds(1);
    let mut latest = None;
    while let Some(next) = schedule.next_after(cursor, zone) {
        if next > now {
            break;
        }
        latest = Some(next);
        cursor = next;
    }
    latest
}

/// What a channel job due since `due_at` does at `now`: its latest firing fires when it is less
/// than [`LATE_LIMIT`] late, and is skipped otherwise.
pub fn evaluate(schedule: &Schedule, zone: Tz, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Due<DateTime<Utc>> {
    match latest_firing(schedule, zone, due_at, now) {
        Some(at) if now - at <= LATE_LIMIT => Due::Fire(at),
        Some(at) => Due::Skip(at),
        None => Due::Nothing,
    }
}

/// The stages a pledge goes through once it is due, in the owner's time zone at [`REMINDER_HOUR`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PledgeStage {
    /// The morning of the due day: the owner hears privately.
    Due,
    /// The morning after: the owner hears again.
    Overdue,
    /// From `escalate_after_days` on: the channel hears (tried each day until one is not quiet).
    Broken,
}

impl PledgeStage {
    /// The occurrence's job name for pledge `reference`: "pledge_due:P-4".
    pub fn job(self, reference: &str) -> String {
        let stage = match self {
            PledgeStage::Due => "pledge_due",
            PledgeStage::Overdue => "pledge_overdue",
            PledgeStage::Broken => "pledge_broken",
        };
        format!("{stage}:{reference}")
    }
}

/// The stage a pledge due on `due_on` is in `days` after it: the overdue stage only while the
/// channel has not been told yet.
fn stage_on(days: i64, escalate_after_days: u32) -> Option<PledgeStage> {
    match days {
        0 => Some(PledgeStage::Due),
        d if d >= i64::from(escalate_after_days.max(1)) => Some(PledgeStage::Broken),
        1 => Some(PledgeStage::Overdue),
        _ => None,
    }
}

/// Every stage instant of a pledge from its due day on, in order. The broken stage repeats daily.
fn stage_instants(
    due_on: NaiveDate,
    zone: Tz,
    escalate_after_days: u32,
) -> impl Iterator<Item = (PledgeStage, DateTime<Utc>)> {
    (0..=366).filter_map(move |days| {
        let stage = stage_on(days, escalate_after_days)?;
        let day = due_on.checked_add_signed(Duration::days(days))?;
        Some((stage, local_time(zone, day, REMINDER_HOUR)?))
    })
}

/// The first stage of a pledge due on `due_on` after `after`; `None` a year past its date.
pub fn next_pledge_stage(
    due_on: NaiveDate,
    zone: Tz,
    escalate_after_days: u32,
    after: DateTime<Utc>,
) -> Option<(PledgeStage, DateTime<Utc>)> {
    stage_instants(due_on, zone, escalate_after_days).find(|(_, at)| *at > after)
}

/// What a pledge whose reminder came due since `due_at` does at `now`: its latest stage in
/// [`due_at`, `now`] fires when it is less than [`LATE_LIMIT`] late; the broken stage always
/// fires, however late, because the channel should hear of a broken promise.
pub fn evaluate_pledge(
    due_on: NaiveDate,
    zone: Tz,
    escalate_after_days: u32,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Due<(PledgeStage, DateTime<Utc>)> {
    let latest = stage_instants(due_on, zone, escalate_after_days)
        .take_while(|(_, at)| *at <= now)
        .filter(|(_, at)| *at >= due_at)
        .last();
    match latest {
        Some(stage @ (PledgeStage::Broken, _)) => Due::Fire(stage),
        Some(stage @ (_, at)) if now - at <= LATE_LIMIT => Due::Fire(stage),
        Some(stage) => Due::Skip(stage),
        None => Due::Nothing,
    }
}

/// `hour`:00 local on `day`, the earlier instant when the clock repeats, skipped forward in a gap.
pub fn local_time(zone: Tz, day: NaiveDate, hour: u32) -> Option<DateTime<Utc>> {
    let naive = day.and_hms_opt(hour, 0, 0)?;
    match zone.from_local_datetime(&naive) {
        chrono::LocalResult::Single(at) | chrono::LocalResult::Ambiguous(at, _) => Some(at.with_timezone(&Utc)),
        chrono::LocalResult::None => {
            zone.from_local_datetime(&(naive + Duration::hours(1))).earliest().map(|at| at.with_timezone(&Utc))
        }
    }
}

/// Why a channel gets no automated post on its local `day`: a pause, a holiday or a quiet weekday.
/// The scheduler and the "Next:" a channel is shown follow this one rule.
pub fn quiet_reason(quiet: &QuietDays, paused_until: Option<NaiveDate>, day: NaiveDate) -> Option<&'static str> {
    if paused_until.is_some_and(|until| day < until) {
        return Some("paused");
    }
    if quiet.is_quiet(day) {
        return Some(if quiet.holidays.contains(&day) { "holiday" } else { "quiet day" });
    }
    None
}

/// How far past a pause the next posted firing is looked for: a year covers every weekday and
/// every holiday a channel can list.
const POSTED_HORIZON: Duration = Duration::days(371);

/// The first firing of `schedule` after `after` that is posted, skipping quiet days, holidays and a
/// pause; `None` when every firing in the year after the pause is suppressed.
pub fn next_posted(
    schedule: &Schedule,
    zone: Tz,
    quiet: &QuietDays,
    paused_until: Option<NaiveDate>,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let resumes = paused_until.and_then(|day| local_time(zone, day, 0)).unwrap_or(after).max(after);
    let horizon = resumes + POSTED_HORIZON;
    let mut cursor = after;
    while let Some(at) = schedule.next_after(cursor, zone) {
        if at > horizon {
            return None;
        }
        let day = at.with_timezone(&zone).date_naive();
        if quiet_reason(quiet, paused_until, day).is_none() {
            return Some(at);
        }
        // Every later firing that day is suppressed too, so look from the day's end: an every-minute
        // schedule costs one step per day, not one per minute.
        let day_end = day.succ_opt().and_then(|next| local_time(zone, next, 0)).unwrap_or(at);
        cursor = day_end.max(at + Duration::milliseconds(1)) - Duration::milliseconds(1);
    }
    None
}

/// Firings looked at for the shortest gap: enough for any weekly pattern many times over.
const FIRINGS_CHECKED: usize = 1000;

/// The shortest gap between two firings of `schedule`, when it is shorter than `limit`, on the wall
/// clock (in UTC, so a daylight-saving change never makes a daily schedule look more frequent).
pub fn gap_shorter_than(schedule: &Schedule, limit: Duration, after: DateTime<Utc>) -> Option<Duration> {
    let zone = chrono_tz::UTC;
    let first = schedule.next_after(after, zone)?;
    let horizon = first + POSTED_HORIZON;
    // Once a short gap is seen, a week more shows the shortest one of the weekly pattern.
    let mut shortest: Option<(Duration, DateTime<Utc>)> = None;
    let mut previous = first;
    for _ in 0..FIRINGS_CHECKED {
        let Some(next) = schedule.next_after(previous, zone) else { break };
        let gap = next - previous;
        if gap < limit && shortest.is_none_or(|(known, _)| gap < known) {
            shortest = Some((gap, shortest.map_or(next, |(_, since)| since)));
        }
        let stop = shortest.map_or(horizon, |(_, since)| since + Duration::days(8));
        if next > stop {
            break;
        }
        previous = next;
    }
    shortest.map(|(gap, _)| gap)
}

#[cfg(test)]
mod tests {
    use chrono_tz::Europe::Berlin;

    use super::*;

    fn berlin(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Berlin.with_ymd_and_hms(2026, 11, day, hour, minute, 0).unwrap().with_timezone(&Utc)
    }

    fn monday_0930() -> Schedule {
        Schedule::parse("mon 09:30").unwrap()
    }

    #[test]
    fn a_check_in_fires_on_time_a_little_late_and_is_skipped_when_very_late() {
        let due = berlin(23, 9, 30);
        assert_eq!(evaluate(&monday_0930(), Berlin, due, berlin(23, 9, 30)), Due::Fire(due));
        assert_eq!(evaluate(&monday_0930(), Berlin, due, berlin(23, 15, 0)), Due::Fire(due));
        assert_eq!(evaluate(&monday_0930(), Berlin, due, berlin(23, 20, 0)), Due::Skip(due));
        // Down for a week: only the latest missed occurrence counts.
        assert_eq!(evaluate(&monday_0930(), Berlin, due, berlin(30, 12, 0)), Due::Fire(berlin(30, 9, 30)));
        // A row written for a time that no longer fires has nothing to do.
        assert_eq!(evaluate(&monday_0930(), Berlin, berlin(24, 8, 0), berlin(24, 9, 0)), Due::Nothing);
    }

    #[test]
    fn a_pledges_stages_come_in_the_owners_morning_and_the_broken_stage_repeats() {
        let wednesday = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let stage = |after| next_pledge_stage(wednesday, Berlin, 3, after);
        assert_eq!(stage(berlin(23, 10, 0)), Some((PledgeStage::Due, berlin(25, 9, 0))));
        assert_eq!(stage(berlin(25, 9, 0)), Some((PledgeStage::Overdue, berlin(26, 9, 0))));
        // Two days after is no stage of its own; three days after the channel hears, then daily.
        assert_eq!(stage(berlin(26, 9, 0)), Some((PledgeStage::Broken, berlin(28, 9, 0))));
        assert_eq!(stage(berlin(28, 9, 0)), Some((PledgeStage::Broken, berlin(29, 9, 0))));
        // Escalating after one day leaves no overdue stage.
        assert_eq!(
            next_pledge_stage(wednesday, Berlin, 1, berlin(25, 9, 0)),
            Some((PledgeStage::Broken, berlin(26, 9, 0)))
        );
    }

    #[test]
    fn a_late_reminder_is_skipped_but_a_broken_pledge_is_always_told() {
        let wednesday = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let at = |due_at, now| evaluate_pledge(wednesday, Berlin, 3, due_at, now);
        assert_eq!(at(berlin(25, 9, 0), berlin(25, 9, 15)), Due::Fire((PledgeStage::Due, berlin(25, 9, 0))));
        assert_eq!(at(berlin(25, 9, 0), berlin(25, 18, 0)), Due::Skip((PledgeStage::Due, berlin(25, 9, 0))));
        assert_eq!(at(berlin(28, 9, 0), berlin(30, 22, 0)), Due::Fire((PledgeStage::Broken, berlin(30, 9, 0))));
        assert_eq!(at(berlin(25, 9, 0), berlin(25, 8, 0)), Due::Nothing);
    }

    #[test]
    fn the_next_posted_check_in_skips_quiet_days_holidays_and_a_pause() {
        let quiet_mondays = QuietDays { weekdays: vec![chrono::Weekday::Mon], holidays: vec![] };
        let monday = berlin(23, 10, 0);
        let every_weekday = Schedule::parse("weekdays 09:30").unwrap();
        assert_eq!(next_posted(&every_weekday, Berlin, &QuietDays::default(), None, monday), Some(berlin(24, 9, 30)));
        let holiday = QuietDays { weekdays: vec![], holidays: vec![NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()] };
        assert_eq!(next_posted(&every_weekday, Berlin, &holiday, None, monday), Some(berlin(25, 9, 30)));
        let paused = NaiveDate::from_ymd_opt(2026, 11, 27);
        assert_eq!(next_posted(&every_weekday, Berlin, &QuietDays::default(), paused, monday), Some(berlin(27, 9, 30)));
        // Only on quiet Mondays: never posted.
        assert_eq!(next_posted(&monday_0930(), Berlin, &quiet_mondays, None, monday), None);
        let every_minute = Schedule::parse("* * * * *").unwrap();
        assert_eq!(next_posted(&every_minute, Berlin, &quiet_mondays, None, monday), Some(berlin(24, 0, 0)));
    }

    #[test]
    fn a_schedule_more_frequent_than_the_limit_shows_its_shortest_gap() {
        let day = Duration::minutes(1440);
        let now = berlin(23, 10, 0);
        assert_eq!(gap_shorter_than(&Schedule::parse("* * * * *").unwrap(), day, now), Some(Duration::minutes(1)));
        assert_eq!(gap_shorter_than(&Schedule::parse("0 9,17 * * *").unwrap(), day, now), Some(Duration::hours(8)));
        assert_eq!(gap_shorter_than(&Schedule::parse("daily 09:00").unwrap(), day, now), None);
        assert_eq!(gap_shorter_than(&monday_0930(), day, now), None);
        assert_eq!(gap_shorter_than(&Schedule::parse("*/5 * * * *").unwrap(), Duration::minutes(1), now), None);
    }

    #[test]
    fn the_job_names_read_back() {
        for job in ChannelJob::ALL {
            assert_eq!(ChannelJob::from_name(job.name()), Some(job));
        }
        assert_eq!(PledgeStage::Broken.job("P-4"), "pledge_broken:P-4");
    }
}
