//! What each scheduled job posts. Builders read the store inside the occurrence's transaction and
//! return the posts (or `None` when there is nothing worth saying, which is never a post).

use chrono::{DateTime, Duration, Utc};

use super::Post;
use crate::commands::digest::Digest;
use crate::commands::execute::day_label;
use crate::commands::reply::{ActionKind, ActionStyle, MetricRow, Reply, Section};
use crate::domain::experiment::ExperimentStatus;
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::metric::{Win, format_value, sparkline};
use crate::domain::pledge::days_overdue;
use crate::store::{ChannelRecord, EventKind, NewEvent, PledgeRecord, StoreError, Tx};

pub const CHECKIN: &str = "checkin";
pub const DIGEST: &str = "digest";
pub const CELEBRATIONS: &str = "celebrations";
pub const PLEDGE_DUE: &str = "pledge_due";
pub const PLEDGE_OVERDUE: &str = "pledge_overdue";
pub const PLEDGE_BROKEN: &str = "pledge_broken";

/// Most experiments and pledges a check-in lists; the rest are counted, so it stays short.
const CHECKIN_ITEMS: usize = 8;
const BACKLOG_TOP: i64 = 3;

pub(super) async fn build(
    tx: &mut Tx,
    channel: &ChannelRecord,
    job: &str,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Vec<Post>>, StoreError> {
    let (kind, pledge) = match job.split_once(':') {
        Some((kind, id)) => (kind, id.parse::<PledgeRef>().ok()),
        None => (job, None),
    };
    match (kind, pledge) {
        (CHECKIN, _) => checkin(tx, channel, due).await.map(|reply| Some(vec![Post::Channel(reply)])),
        (DIGEST, _) => digest(tx, channel, due).await,
        (CELEBRATIONS, _) => celebrations(tx, channel, due).await,
        (PLEDGE_DUE | PLEDGE_OVERDUE | PLEDGE_BROKEN, Some(id)) => pledge_stage(tx, channel, kind, id, due, now).await,
        _ => Ok(None),
    }
}

async fn checkin(tx: &mut Tx, channel: &ChannelRecord, due: DateTime<Utc>) -> Result<Reply, StoreError> {
    let ws = channel.workspace_id;
    let today = due.with_timezone(&channel.time_zone).date_naive();
    let running = tx.experiments_in_channel(ws, channel.id, &[ExperimentStatus::Running], 100).await?;
    let pledges = tx.open_pledges_in_channel(ws, channel.id, 100).await?;
    let due_this_week: Vec<&PledgeRecord> = pledges.iter().filter(|p| p.due_on <= today + Duration::days(6)).collect();
    let backlog = tx.backlog(ws, channel.id, BACKLOG_TOP).await?;

    let mut reply = Reply::channel(format!("☀️ Weekly check-in for #{}", channel.name));
    if !channel.rules.is_empty() {
        let line = channel.rules.lines().next().unwrap_or_default();
        reply = reply.with_section(Section::body(format!("Our rules: {line}")));
    }
    if running.is_empty() {
        reply = reply.with_section(Section::heading("Running experiments").with_body(
            "None yet. Start one from the backlog, or propose a small one: `/experiment propose <title> | <hypothesis> | <metric> <baseline> -> <target>`",
        ));
    }
    for experiment in running.iter().take(CHECKIN_ITEMS) {
        let readings: Vec<f64> = tx.readings(ws, experiment.id).await?.into_iter().map(|r| r.value).collect();
        let metric = &experiment.metric;
        let unit = metric.unit.as_deref();
        let row = MetricRow {
            name: metric.name.clone(),
            baseline: format_value(metric.baseline, unit),
            now: experiment.latest.map(|v| format_value(v, unit)),
            target: format_value(metric.target, unit),
            progress_percent: experiment.latest.map(|v| (metric.progress(v) * 100.0).round() as i64),
            sparkline: if readings.len() >= 2 { sparkline(&readings) } else { String::new() },
        };
        let mut section = Section::heading(format!("{} · {}", experiment.number, experiment.title)).with_metric(row);
        if let Some(review) = experiment.review_on {
            let days = (review - today).num_days();
            let when = if days >= 0 { format!("in {days} days") } else { format!("{} days ago", -days) };
            section = section.with_field("Review", format!("{} ({when})", day_label(review, today)));
        }
        reply = reply.with_section(section.with_action(
            "Update metric",
            ActionKind::UpdateMetric(experiment.number),
            ActionStyle::Primary,
        ));
    }
    if running.len() > CHECKIN_ITEMS {
        reply = reply.with_section(Section::body(format!(
            "…and {} more running; `/experiment list running` shows them all.",
            running.len() - CHECKIN_ITEMS
        )));
    }
    for pledge in due_this_week.iter().take(CHECKIN_ITEMS) {
        let late = days_overdue(pledge.due_on, today);
        let when = if late > 0 { format!("overdue by {late} days") } else { day_label(pledge.due_on, today) };
        reply = reply.with_section(
            Section::heading(format!("{} · {}", pledge.number, pledge.text))
                .with_field("Owner", &pledge.owner_name)
                .with_field("Due", when)
                .with_action("Done", ActionKind::PledgeDone(pledge.number), ActionStyle::Primary),
        );
    }
    if due_this_week.len() > CHECKIN_ITEMS {
        reply = reply.with_section(Section::body(format!(
            "…and {} more pledges due this week; `/pledge list all` shows them.",
            due_this_week.len() - CHECKIN_ITEMS
        )));
    }
    if let Some(top) = backlog.first() {
        let mut section = Section::heading("Top of the backlog");
        let lines: Vec<String> =
            backlog.iter().map(|e| format!("{} · {} ({} votes)", e.number, e.title, e.votes)).collect();
        section = section.with_body(lines.join("\n"));
        reply = reply.with_section(section.with_action("Vote", ActionKind::Vote(top.number), ActionStyle::Default));
    }
    Ok(reply)
}

async fn digest(tx: &mut Tx, channel: &ChannelRecord, due: DateTime<Utc>) -> Result<Option<Vec<Post>>, StoreError> {
    let events = tx.events_since(channel.workspace_id, channel.id, due - Duration::weeks(53)).await?;
    let digest = Digest::compute(&events, due, channel.time_zone);
    // A week without any activity gets no digest: a scoreboard of zeros is noise.
    if digest.is_quiet_week() {
        return Ok(None);
    }
    Ok(Some(vec![Post::Channel(digest.reply(&channel.name))]))
}

/// Small wins since the previous batch: metric steps (not target hits, which were posted at once),
/// pledges kept, experiments closed with a learning.
async fn celebrations(
    tx: &mut Tx,
    channel: &ChannelRecord,
    due: DateTime<Utc>,
) -> Result<Option<Vec<Post>>, StoreError> {
    let ws = channel.workspace_id;
    let events = tx.events_since(ws, channel.id, due - Duration::days(1)).await?;
    let mut lines = Vec::new();
    for event in events.iter().filter(|e| e.at <= due) {
        let subject = event.subject.clone().unwrap_or_default();
        match event.kind {
            EventKind::ReadingRecorded => {
                let win: Option<Win> = serde_json::from_value(event.data["win"].clone()).ok().flatten();
                let Ok(id) = subject.parse::<ExperimentRef>() else { continue };
                let Some(experiment) = tx.experiment(ws, id).await? else { continue };
                let value = event.data["value"].as_f64().unwrap_or_default();
                let shown = format_value(value, experiment.metric.unit.as_deref());
                match win {
                    Some(Win::GapClosed { share }) => lines.push(format!(
                        "📈 {id} {}: {} reached {shown}, {}% of the gap closed",
                        experiment.title,
                        experiment.metric.name,
                        (share * 100.0).round()
                    )),
                    Some(Win::NewBest) => lines
                        .push(format!("📈 {id} {}: a new best, {} {shown}", experiment.title, experiment.metric.name)),
                    _ => {}
                }
            }
            EventKind::PledgeKept => {
                let Ok(id) = subject.parse::<PledgeRef>() else { continue };
                if let Some(pledge) = tx.pledge(ws, id).await? {
                    lines.push(format!("✅ {} kept {id}: {}", pledge.owner_name, pledge.text));
                }
            }
            EventKind::ExperimentClosed => {
                let Ok(id) = subject.parse::<ExperimentRef>() else { continue };
                if let Some(experiment) = tx.experiment(ws, id).await? {
                    let learning = experiment.learning.unwrap_or_default();
                    lines.push(format!("🎓 {id} {} closed with a learning: {learning}", experiment.title));
                }
            }
            _ => {}
        }
    }
    if lines.is_empty() {
        return Ok(None);
    }
    let reply = Reply::channel(format!("🎉 Small wins in #{} today", channel.name))
        .with_section(Section::body(lines.join("\n")));
    Ok(Some(vec![Post::Channel(reply)]))
}

async fn pledge_stage(
    tx: &mut Tx,
    channel: &ChannelRecord,
    stage: &str,
    id: PledgeRef,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Vec<Post>>, StoreError> {
    let ws = channel.workspace_id;
    let Some(pledge) = tx.pledge(ws, id).await? else { return Ok(None) };
    if pledge.status != crate::domain::pledge::PledgeStatus::Open {
        return Ok(None);
    }
    let today = due.with_timezone(&pledge.owner_time_zone.unwrap_or(channel.time_zone)).date_naive();
    let buttons = Section::heading(format!("{id} · {}", pledge.text))
        .with_field("Due", day_label(pledge.due_on, today))
        .with_action("Done", ActionKind::PledgeDone(id), ActionStyle::Primary)
        .with_action("Extend", ActionKind::PledgeExtend(id), ActionStyle::Default)
        .with_action("Release", ActionKind::PledgeRelease(id), ActionStyle::Danger);
    let post = match stage {
        PLEDGE_DUE => Post::Private {
            recipient: pledge.owner_external_id.clone(),
            reply: Reply::private(format!("⏰ {id} is due today: {}", pledge.text)).with_section(buttons),
        },
        PLEDGE_OVERDUE => Post::Private {
            recipient: pledge.owner_external_id.clone(),
            reply: Reply::private(format!(
                "{id} was due {}: {}. Done, a new date, or an honest release: any of them is fine.",
                day_label(pledge.due_on, today),
                pledge.text
            ))
            .with_section(buttons),
        },
        _ => {
            tx.mark_pledge_broken(ws, pledge.id).await?;
            let data = serde_json::json!({ "days_overdue": days_overdue(pledge.due_on, today) });
            let event = NewEvent {
                channel: Some(channel.id),
                actor: None,
                kind: EventKind::PledgeBroken,
                subject: Some(id.to_string()),
                data: &data,
            };
            tx.append_event(ws, &event, now).await?;
            Post::Channel(
                Reply::channel(format!(
                    "{id} ({}) is {} days past its date. {}, keep it, move it or release it: an honest answer keeps the team's trust.",
                    pledge.text,
                    days_overdue(pledge.due_on, today),
                    pledge.owner_name
                ))
                .with_section(buttons),
            )
        }
    };
    Ok(Some(vec![post]))
}
