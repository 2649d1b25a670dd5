//! A channel's dashboard: the experiment board by status, each metric as a chart, pledges by week
//! and by person, the streak of weeks with a learning, and the learning log. Server-rendered HTML
//! with a little hand-written CSS; no script.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::chart::metric_chart;
use crate::domain::experiment::ExperimentStatus;
use crate::domain::metric::format_value;
use crate::domain::pledge::PledgeStatus;
use crate::store::{
    ChannelRecord, EventKind, ExperimentRecord, PledgeRecord, ReadingRecord, Store, StoreError, WorkspaceId,
};

/// Weeks of pledges and learnings the page looks back over.
const WEEKS: i64 = 12;
/// The most experiments, pledges and learnings one page shows.
const MOST: i64 = 500;

/// Everything the page shows, read in one read-only transaction.
pub struct Board {
    pub channel: ChannelRecord,
    pub experiments: Vec<(ExperimentRecord, Vec<ReadingRecord>)>,
    pub pledges: Vec<PledgeRecord>,
    pub learnings: Vec<ExperimentRecord>,
    pub search: Option<String>,
    /// Weeks (their Mondays, newest first) in which the channel closed an experiment with a learning.
    pub learning_weeks: Vec<NaiveDate>,
    pub today: NaiveDate,
}

impl Board {
    /// The channel's board; `None` when the channel is not the workspace's (a link can only name
    /// channels that exist, but one may be gone since).
    pub async fn load(
        store: &Store,
        ws: WorkspaceId,
        channel: crate::store::ChannelId,
        search: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<Board>, StoreError> {
        let mut tx = store.read().await?;
        let Some(channel) = tx.channel_by_id(ws, channel).await? else { return Ok(None) };
        let statuses = [
            ExperimentStatus::Proposed,
            ExperimentStatus::Running,
            ExperimentStatus::Closed(crate::domain::experiment::Outcome::Won),
            ExperimentStatus::Closed(crate::domain::experiment::Outcome::Lost),
            ExperimentStatus::Closed(crate::domain::experiment::Outcome::Inconclusive),
            ExperimentStatus::Abandoned,
        ];
        let mut experiments = Vec::new();
        for experiment in tx.experiments_in_channel(ws, channel.id, &statuses, MOST).await? {
            let readings = tx.readings(ws, experiment.id).await?;
            experiments.push((experiment, readings));
        }
        let pledges = tx.pledges_in_channel(ws, channel.id, MOST).await?;
        let search = search.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let learnings: Vec<ExperimentRecord> = tx
            .learnings(ws, search.as_deref(), MOST)
            .await?
            .into_iter()
            .filter(|e| e.channel_id == channel.id)
            .collect();
        let events = tx.events_since(ws, channel.id, now - Duration::weeks(WEEKS)).await?;
        let zone = channel.time_zone;
        let mut learning_weeks: Vec<NaiveDate> =
            events.iter().filter(|e| e.kind == EventKind::ExperimentClosed).map(|e| monday_of(e.at, zone)).collect();
        learning_weeks.sort_unstable_by(|a, b| b.cmp(a));
        learning_weeks.dedup();
        let today = now.with_timezone(&zone).date_naive();
        Ok(Some(Board { channel, experiments, pledges, learnings, search, learning_weeks, today }))
    }

    /// Weeks in a row, up to this one (or last week, when this week has none yet), with a learning.
    pub fn learning_streak(&self) -> usize {
        let this_week = self.today - Duration::days(self.today.weekday().num_days_from_monday().into());
        let mut week =
            if self.learning_weeks.first() == Some(&this_week) { this_week } else { this_week - Duration::weeks(1) };
        let mut streak = 0;
        while self.learning_weeks.contains(&week) {
            streak += 1;
            week -= Duration::weeks(1);
        }
        streak
    }
}

fn monday_of(at: DateTime<Utc>, zone: Tz) -> NaiveDate {
    let day = at.with_timezone(&zone).date_naive();
    day - Duration::days(day.weekday().num_days_from_monday().into())
}

const STYLE: &str = include_str!("dashboard.css");

fn status_word(status: ExperimentStatus) -> &'static str {
    match status {
        ExperimentStatus::Proposed => "Proposed",
        ExperimentStatus::Running => "Running",
        ExperimentStatus::Closed(_) => "Closed",
        ExperimentStatus::Abandoned => "Abandoned",
    }
}

/// The page.
pub fn page(board: &Board, token: &str) -> Markup {
    let name = &board.channel.name;
    let columns = ["Proposed", "Running", "Closed", "Abandoned"];
    let mut proposed: Vec<&(ExperimentRecord, Vec<ReadingRecord>)> =
        board.experiments.iter().filter(|(e, _)| e.status == ExperimentStatus::Proposed).collect();
    proposed.sort_by(|a, b| b.0.votes.cmp(&a.0.votes).then(a.0.number.0.cmp(&b.0.number.0)));
    let by_person = pledges_by_person(&board.pledges);
    let by_week = pledges_by_week(&board.pledges);
    let body = html! {
        header {
            h1 { "#" (name) }
            p { "Experiments, pledges and learnings, as of " (board.today.format("%a %-d %b %Y")) "." }
            nav aria-label="Exports" {
                "Export: "
                @for what in ["experiments", "readings", "pledges", "learnings"] {
                    a href={ (token) "/export/" (what) ".csv" } { (what) " (CSV)" } " · "
                    a href={ (token) "/export/" (what) ".json" } { "JSON" } " "
                }
            }
        }
        main {
            section aria-labelledby="board" {
                h2 id="board" { "Board" }
                div class="board" {
                    @for column in columns {
                        @let items: Vec<&(ExperimentRecord, Vec<ReadingRecord>)> = if column == "Proposed" {
                            proposed.clone()
                        } else {
                            board.experiments.iter().filter(|(e, _)| status_word(e.status) == column).collect()
                        };
                        section class="column" aria-label=(column) {
                            h3 { (column) " (" (items.len()) ")" }
                            @if items.is_empty() { p class="empty" { "None." } }
                            @for (experiment, readings) in items {
                                (card(experiment, readings, board.today))
                            }
                        }
                    }
                }
            }
            section aria-labelledby="pledges" {
                h2 id="pledges" { "Pledges" }
                p { "Weeks in a row with a learning: " strong { (board.learning_streak()) } }
                (pledge_table("By week", "Week of", by_week.iter().rev().map(|(week, counts)| (week.format("%-d %b").to_string(), counts))))
                (pledge_table("By person", "Who", by_person.iter().map(|(who, counts)| (who.clone(), counts))))
            }
            section aria-labelledby="open-pledges" {
                h2 id="open-pledges" { "Open pledges" }
                @let open: Vec<&PledgeRecord> = board.pledges.iter().filter(|p| p.status == PledgeStatus::Open).collect();
                @if open.is_empty() { p class="empty" { "None open." } }
                ul {
                    @for pledge in open {
                        li { strong { (pledge.number) } " " (pledge.text) " · " (pledge.owner_name) ", due " (pledge.due_on.format("%a %-d %b"))
                            @if pledge.due_on < board.today { " (overdue)" } }
                    }
                }
            }
            section aria-labelledby="learnings" {
                h2 id="learnings" { "Learning log" }
                form method="get" role="search" {
                    label for="q" { "Search learnings" }
                    input id="q" name="q" type="search" value=(board.search.as_deref().unwrap_or(""));
                    button type="submit" { "Search" }
                }
                @if board.learnings.is_empty() {
                    p class="empty" { @if board.search.is_some() { "No learning has all of those words." } @else { "No learnings yet." } }
                }
                ul class="learnings" {
                    @for experiment in &board.learnings {
                        li {
                            strong { (experiment.number) " · " (experiment.title) }
                            " (" (experiment.status.as_str()) ", " (experiment.owner_name) ")"
                            p { (experiment.learning.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    };
    layout(&format!("#{name}"), body)
}

fn card(experiment: &ExperimentRecord, readings: &[ReadingRecord], today: NaiveDate) -> Markup {
    let unit = experiment.metric.unit.as_deref();
    html! {
        article class="card" {
            h4 { (experiment.number) " · " (experiment.title) }
            p class="meta" {
                (experiment.owner_name)
                @if experiment.status == ExperimentStatus::Proposed { " · " (experiment.votes) " vote" @if experiment.votes != 1 { "s" } }
                @if let Some(review) = experiment.review_on {
                    " · review " (review.format("%-d %b"))
                    @if review < today && !experiment.status.is_closed() && experiment.status != ExperimentStatus::Abandoned { " (past)" }
                }
            }
            p { (experiment.metric.name) ": " (format_value(experiment.metric.baseline, unit)) " → "
                (experiment.latest.map(|v| format_value(v, unit)).unwrap_or_else(|| "–".into())) " → "
                (format_value(experiment.metric.target, unit)) }
            @if !readings.is_empty() { (metric_chart(&experiment.metric, readings)) }
        }
    }
}

/// A table of kept, released, broken and open pledges, a row per week or per person.
fn pledge_table<'a>(caption: &str, first: &str, rows: impl Iterator<Item = (String, &'a [usize; 4])>) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr { th scope="col" { (first) } @for column in ["Kept", "Released", "Broken", "Open"] { th scope="col" { (column) } } } }
            tbody {
                @for (label, counts) in rows {
                    tr { th scope="row" { (label) } @for count in counts { td { (count) } } }
                }
            }
        }
    }
}

/// Kept, released, broken and open pledges per owner, by name.
fn pledges_by_person(pledges: &[PledgeRecord]) -> BTreeMap<String, [usize; 4]> {
    let mut counts: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for pledge in pledges {
        counts.entry(pledge.owner_name.clone()).or_default()[column(pledge.status)] += 1;
    }
    counts
}

/// The same per week of the pledge's due date.
fn pledges_by_week(pledges: &[PledgeRecord]) -> BTreeMap<NaiveDate, [usize; 4]> {
    let mut counts: BTreeMap<NaiveDate, [usize; 4]> = BTreeMap::new();
    for pledge in pledges {
        let week = pledge.due_on - Duration::days(pledge.due_on.weekday().num_days_from_monday().into());
        counts.entry(week).or_default()[column(pledge.status)] += 1;
    }
    counts
}

fn column(status: PledgeStatus) -> usize {
    match status {
        PledgeStatus::Kept => 0,
        PledgeStatus::Released => 1,
        PledgeStatus::Broken => 2,
        PledgeStatus::Open => 3,
    }
}

/// The page for a link that does not open: what happened and what to do, never any data.
pub fn refusal(title: &str, message: &str) -> Markup {
    layout(title, html! { main { h1 { (title) } p { (message) } } })
}

/// The document around a page's body: the same head, style and no-index for every page.
fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { "nudge · " (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}
