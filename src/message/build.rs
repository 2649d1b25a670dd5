//! The builders commands and scheduled jobs share, so an experiment, a pledge or a check-in reads the
//! same wherever nudge shows it: the metric row, the experiment and pledge sections with the buttons
//! that fit them, the weekly check-in and the digest's scoreboard.

use chrono::{Datelike, Duration, NaiveDate};

use super::{ActionKind, ActionStyle, Message, MetricRow, Section};
use crate::domain::digest::Digest;
use crate::domain::experiment::ExperimentStatus;
use crate::domain::metric::{format_value, sparkline};
use crate::domain::pledge::days_overdue;
use crate::domain::schedule::weekday_name;
use crate::store::{ChannelRecord, ExperimentRecord, PledgeRecord};

/// Most experiments and pledges a check-in lists; the rest are counted, so it stays short.
pub const CHECKIN_ITEMS: usize = 8;

/// "Fri 27 Nov", with the year when it is not this year's.
pub fn day_label(day: NaiveDate, today: NaiveDate) -> String {
    if day.year() == today.year() {
        day.format("%a %-d %b").to_string()
    } else {
        day.format("%a %-d %b %Y").to_string()
    }
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// An experiment's metric at a glance, formatted with its unit; the sparkline needs two readings.
pub fn metric_row(experiment: &ExperimentRecord, values: &[f64]) -> MetricRow {
    let metric = &experiment.metric;
    let unit = metric.unit.as_deref();
    MetricRow {
        name: metric.name.clone(),
        baseline: format_value(metric.baseline, unit),
        now: experiment.latest.map(|v| format_value(v, unit)),
        target: format_value(metric.target, unit),
        progress_percent: experiment.latest.map(|v| (metric.progress(v) * 100.0).round() as i64),
        sparkline: if values.len() >= 2 { sparkline(values) } else { String::new() },
    }
}

/// One experiment as a section: heading, metric row, status fields and the buttons that fit its status.
pub fn experiment_section(experiment: &ExperimentRecord, values: &[f64], today: NaiveDate, detailed: bool) -> Section {
    let id = experiment.number;
    let mut section =
        Section::heading(format!("{id} · {}", experiment.title)).with_metric(metric_row(experiment, values));
    section = section.with_field("Status", experiment.status.as_str()).with_field("Owner", &experiment.owner_name);
    if let Some(review) = experiment.review_on.filter(|_| !experiment.status.is_closed()) {
        section = section.with_field("Review", review_label(review, today));
    }
    if experiment.status == ExperimentStatus::Proposed {
        section = section.with_field("Votes", experiment.votes.to_string());
    }
    if detailed && experiment.status == ExperimentStatus::Proposed {
        section = section.with_body(&experiment.hypothesis);
    }
    match experiment.status {
        ExperimentStatus::Proposed => section
            .with_action("Start", ActionKind::StartExperiment(id), ActionStyle::Primary)
            .with_action("Vote", ActionKind::Vote(id), ActionStyle::Default),
        ExperimentStatus::Running => {
            section.with_action("Update metric", ActionKind::UpdateMetric(id), ActionStyle::Primary)
        }
        _ => section,
    }
}

/// An experiment at its review: the metric, and Close / Extend review (Start / Extend review for
/// a proposal, which cannot close before it runs).
pub fn review_section(experiment: &ExperimentRecord, values: &[f64]) -> Section {
    let id = experiment.number;
    let section = Section::heading(format!("{id} · {}", experiment.title)).with_metric(metric_row(experiment, values));
    let section = match experiment.status {
        ExperimentStatus::Proposed => {
            section.with_action("Start", ActionKind::StartExperiment(id), ActionStyle::Primary)
        }
        _ => section.with_action("Close", ActionKind::CloseExperiment(id), ActionStyle::Primary),
    };
    section.with_action("Extend review", ActionKind::ExtendReview(id), ActionStyle::Default)
}

/// "Fri 4 Dec (3 days left)", "today", "Mon 30 Nov (overdue by 4 days)".
fn review_label(review: NaiveDate, today: NaiveDate) -> String {
    match (review - today).num_days() {
        d if d < 0 => format!("{} (overdue by {} day{})", day_label(review, today), -d, plural((-d) as usize)),
        0 => "today".to_string(),
        d => format!("{} ({d} day{} left)", day_label(review, today), plural(d as usize)),
    }
}

/// Which of a pledge's buttons a section carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PledgeButtons {
    /// Done, Extend and Release: shown to the owner.
    All,
    /// Done only: the check-in's one-click row.
    Done,
    None,
}

/// One pledge as a section: "P-4 · call five customers", its owner and when it is due.
pub fn pledge_section(pledge: &PledgeRecord, today: NaiveDate, buttons: PledgeButtons) -> Section {
    let id = pledge.number;
    let due = match days_overdue(pledge.due_on, today) {
        0 if pledge.due_on == today => "today".to_string(),
        0 => day_label(pledge.due_on, today),
        d => format!("{} (overdue by {d} day{})", day_label(pledge.due_on, today), plural(d as usize)),
    };
    let section = Section::heading(format!("{id} · {}", pledge.text))
        .with_field("Owner", &pledge.owner_name)
        .with_field("Due", due);
    match buttons {
        PledgeButtons::All => section
            .with_action("Done", ActionKind::PledgeDone(id), ActionStyle::Primary)
            .with_action("Extend", ActionKind::PledgeExtend(id), ActionStyle::Default)
            .with_action("Release", ActionKind::PledgeRelease(id), ActionStyle::Danger),
        PledgeButtons::Done => section.with_action("Done", ActionKind::PledgeDone(id), ActionStyle::Primary),
        PledgeButtons::None => section,
    }
}

/// What a weekly check-in shows, read by the job that posts it.
pub struct CheckIn<'a> {
    pub channel: &'a ChannelRecord,
    pub today: NaiveDate,
    /// Running experiments, newest first, each with its readings oldest first.
    pub running: &'a [(ExperimentRecord, Vec<f64>)],
    /// Every running experiment, when more are running than `running` carries.
    pub running_count: usize,
    /// Open pledges, soonest due first.
    pub pledges: &'a [PledgeRecord],
    /// The top of the backlog, most votes first.
    pub backlog: &'a [ExperimentRecord],
}

/// The weekly check-in: the rules' first line, each running experiment's metric with Update metric,
/// the pledges due this week with Done, and the top of the backlog with Vote.
pub fn checkin(view: &CheckIn<'_>) -> Message {
    let CheckIn { channel, today, running, running_count, pledges, backlog } = view;
    let mut message = Message::channel(format!("☀️ Weekly check-in for #{}", channel.name));
    if !channel.rules.is_empty() {
        let line = channel.rules.lines().next().unwrap_or_default();
        message = message.with_section(Section::body(format!("Our rules: {line}")));
    }
    message = message.with_section(Section::body(settings_line(channel, *today)));
    if running.is_empty() {
        message = message.with_section(Section::heading("Running experiments").with_body(
            "None yet. Start one from the backlog, or propose a small one: `/experiment propose <title> | <hypothesis> | <metric> <baseline> -> <target>`",
        ));
    }
    for (experiment, readings) in running.iter().take(CHECKIN_ITEMS) {
        let mut section = Section::heading(format!("{} · {}", experiment.number, experiment.title))
            .with_metric(metric_row(experiment, readings));
        if let Some(review) = experiment.review_on {
            let when = match (review - *today).num_days() {
                0 => "today".to_string(),
                1 => "tomorrow".to_string(),
                d if d > 0 => format!("in {d} days"),
                d => format!("⚠️ past review, {} day{} ago", -d, plural((-d) as usize)),
            };
            section = section.with_field("Review", format!("{} ({when})", day_label(review, *today)));
        }
        message = message.with_section(section.with_action(
            "Update metric",
            ActionKind::UpdateMetric(experiment.number),
            ActionStyle::Primary,
        ));
    }
    let running_count = (*running_count).max(running.len());
    if running_count > CHECKIN_ITEMS {
        message = message.with_section(Section::body(format!(
            "…and {} more running; `/experiment list running` shows them all.",
            running_count - CHECKIN_ITEMS
        )));
    }
    let due_this_week: Vec<&PledgeRecord> = pledges.iter().filter(|p| p.due_on <= *today + Duration::days(6)).collect();
    for pledge in due_this_week.iter().take(CHECKIN_ITEMS) {
        let late = days_overdue(pledge.due_on, *today);
        let when = if late > 0 { format!("overdue by {late} days") } else { day_label(pledge.due_on, *today) };
        message = message.with_section(
            Section::heading(format!("{} · {}", pledge.number, pledge.text))
                .with_field("Owner", &pledge.owner_name)
                .with_field("Due", when)
                .with_action("Done", ActionKind::PledgeDone(pledge.number), ActionStyle::Primary),
        );
    }
    if due_this_week.len() > CHECKIN_ITEMS {
        message = message.with_section(Section::body(format!(
            "…and {} more pledges due this week; `/pledge list all` shows them.",
            due_this_week.len() - CHECKIN_ITEMS
        )));
    }
    if let Some(top) = backlog.first() {
        let lines: Vec<String> =
            backlog.iter().map(|e| format!("{} · {} ({} votes)", e.number, e.title, e.votes)).collect();
        message = message.with_section(Section::heading("Top of the backlog").with_body(lines.join("\n")).with_action(
            "Vote",
            ActionKind::Vote(top.number),
            ActionStyle::Default,
        ));
    }
    message
}

/// Most lines a batch of wins shows, and most characters they take: a post people read at a
/// glance. The rest are counted, with where to see them, never cut off or dropped unsaid.
pub const WINS_LINES: usize = 12;
pub const WINS_CHARS: usize = 2400;

/// Whole lines while they fit in `max_lines` and `max_chars`, then one line saying how many more
/// there are (`rest` words it); a line is never cut.
pub fn summarised(lines: &[String], max_lines: usize, max_chars: usize, rest: impl Fn(usize) -> String) -> String {
    let chars = |text: &str| text.chars().count();
    let (mut shown, mut used) = (0, 0);
    for line in lines {
        let after = lines.len() - shown - 1;
        // Room is kept for the closing line whenever lines would be left after this one.
        let closing = if after > 0 { chars(&rest(after)) + 1 } else { 0 };
        let cost = chars(line) + usize::from(shown > 0);
        if shown == max_lines || used + cost + closing > max_chars {
            break;
        }
        shown += 1;
        used += cost;
    }
    let mut kept: Vec<String> = lines[..shown].to_vec();
    if shown < lines.len() {
        kept.push(rest(lines.len() - shown));
    }
    kept.join("\n")
}

/// Wins, one line each, summarised when there are many.
pub fn wins_section(heading: &str, lines: &[String]) -> Section {
    let body = summarised(lines, WINS_LINES, WINS_CHARS, |n| {
        format!(
            "…and {n} more win{}: `/experiment list running` shows every metric, `/nudge digest` the week's scoreboard.",
            plural(n)
        )
    });
    Section::heading(heading).with_body(body)
}

/// The batch of small wins.
pub fn small_wins(channel_name: &str, lines: &[String]) -> Message {
    let body = wins_section("", lines).body.unwrap_or_default();
    Message::channel(format!("🎉 Small wins in #{channel_name}")).with_section(Section::body(body))
}

/// The channel's settings in one short line, for the check-in: changes to them are answered
/// privately, so this is where the team sees them.
/// "⚙️ Check-ins Mondays at 09:30 (Europe/Berlin) · quiet sat, sun · paused until Mon 7 Dec"
pub fn settings_line(channel: &ChannelRecord, today: NaiveDate) -> String {
    let mut parts = vec![format!("Check-ins {} ({})", channel.schedule.describe(), channel.time_zone.name())];
    let quiet = &channel.quiet;
    let weekdays: Vec<&str> = quiet.weekdays.iter().map(|d| weekday_name(*d)).collect();
    let holidays: Vec<NaiveDate> = quiet.holidays.iter().copied().filter(|d| *d >= today).collect();
    parts.push(match (weekdays.is_empty(), holidays.len()) {
        (true, 0) => "no quiet days".to_string(),
        (false, 0) => format!("quiet {}", weekdays.join(", ")),
        (true, n) => format!("{n} holiday{} ahead", plural(n)),
        (false, n) => format!("quiet {} and {n} holiday{} ahead", weekdays.join(", "), plural(n)),
    });
    if let Some(until) = channel.paused_until.filter(|until| *until > today) {
        parts.push(format!("paused until {}", day_label(until, today)));
    }
    format!("⚙️ {} · `/nudge settings` to see or change them", parts.join(" · "))
}

/// The digest: the week's learnings in the headline, the scoreboard below.
pub fn digest(digest: &Digest, channel_name: &str) -> Message {
    let learnings = digest.learnings();
    let headline = if learnings > 0 {
        format!("📊 This week in #{channel_name}: {learnings} learning{} logged", plural(learnings))
    } else {
        format!("📊 This week in #{channel_name}")
    };
    let streak = match digest.learning_streak_weeks {
        0 => "no learning logged lately; close an experiment with what you learned to start one".to_string(),
        1 => "1 week with a learning".to_string(),
        n => format!("{n} weeks in a row with a learning"),
    };
    let section = Section::heading("Scoreboard")
        .with_field("Experiments proposed", digest.proposed.to_string())
        .with_field("Experiments started", digest.started.to_string())
        .with_field("Readings recorded", digest.readings.to_string())
        .with_field("Closed", format!("{} won, {} lost, {} inconclusive", digest.won, digest.lost, digest.inconclusive))
        .with_field(
            "Pledges",
            format!(
                "{} made, {} kept, {} released, {} broken",
                digest.pledges_made, digest.pledges_kept, digest.pledges_released, digest.pledges_broken
            ),
        )
        .with_field("Streak", streak);
    Message::channel(headline).with_section(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_with_a_learning_says_so_in_its_headline() {
        let week = Digest { lost: 1, proposed: 1, ..Digest::default() };
        assert!(digest(&week, "growth").text.contains("1 learning logged"));
        assert_eq!(digest(&Digest::default(), "growth").text, "📊 This week in #growth");
    }

    #[test]
    fn a_long_list_keeps_whole_lines_and_counts_the_rest() {
        let lines: Vec<String> = (1..=30).map(|n| format!("✅ Member {n} kept P-{n}: call five customers")).collect();
        let more = |n: usize| format!("…and {n} more");
        let by_lines = summarised(&lines, 12, 10_000, more);
        assert_eq!(by_lines.lines().count(), 13);
        assert!(by_lines.ends_with("P-12: call five customers\n…and 18 more"), "{by_lines}");
        let by_chars = summarised(&lines, 100, 200, more);
        assert!(by_chars.chars().count() <= 200, "{by_chars}");
        let shown = by_chars.lines().count() - 1;
        assert!(by_chars.lines().take(shown).all(|l| l.ends_with("call five customers")), "{by_chars}");
        assert!(by_chars.ends_with(&format!("…and {} more", 30 - shown)), "{by_chars}");
        assert_eq!(summarised(&lines[..2], 12, 10_000, more), format!("{}\n{}", lines[0], lines[1]), "all fit");
    }

    #[test]
    fn day_labels_carry_the_year_only_when_it_differs() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(day_label(NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(), today), "Fri 27 Nov");
        assert_eq!(day_label(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(), today), "Fri 1 Jan 2027");
    }
}
