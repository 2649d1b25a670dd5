//! What each scheduled job posts. Builders read the store inside the occurrence's transaction and
//! return the posts (none when there is nothing worth saying, which is never a post).

use chrono::{DateTime, Duration, Utc};

use super::Post;
use crate::domain::digest::Digest;
use crate::domain::experiment::ExperimentStatus;
use crate::domain::firings::{ChannelJob, PledgeStage};
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::metric::{Win, format_value};
use crate::domain::pledge::days_overdue;
use crate::message::build::{self, CHECKIN_ITEMS, CheckIn, PledgeButtons, day_label, pledge_section};
use crate::message::{Message, Section};
use crate::store::{ChannelRecord, EventKind, NewEvent, PledgeRecord, StoreError, Tx};

const BACKLOG_TOP: i64 = 3;

pub(super) async fn build(
    tx: &mut Tx,
    channel: &ChannelRecord,
    job: ChannelJob,
    due: DateTime<Utc>,
) -> Result<Vec<Post>, StoreError> {
    match job {
        ChannelJob::CheckIn => checkin(tx, channel, due).await.map(|message| vec![Post::Channel(message)]),
        ChannelJob::Digest => digest(tx, channel, due).await,
        ChannelJob::Celebrations => celebrations(tx, channel, due).await,
    }
}

async fn checkin(tx: &mut Tx, channel: &ChannelRecord, due: DateTime<Utc>) -> Result<Message, StoreError> {
    let ws = channel.workspace_id;
    let today = due.with_timezone(&channel.time_zone).date_naive();
    let running = tx.experiments_in_channel(ws, channel.id, &[ExperimentStatus::Running], 100).await?;
    let mut shown = Vec::with_capacity(running.len().min(CHECKIN_ITEMS));
    for experiment in running.iter().take(CHECKIN_ITEMS) {
        let readings: Vec<f64> = tx.readings(ws, experiment.id).await?.into_iter().map(|r| r.value).collect();
        shown.push((experiment.clone(), readings));
    }
    let pledges = tx.open_pledges_in_channel(ws, channel.id, 100).await?;
    let backlog = tx.backlog(ws, channel.id, BACKLOG_TOP).await?;
    Ok(build::checkin(&CheckIn {
        channel,
        today,
        running: &shown,
        running_count: running.len(),
        pledges: &pledges,
        backlog: &backlog,
    }))
}

async fn digest(tx: &mut Tx, channel: &ChannelRecord, due: DateTime<Utc>) -> Result<Vec<Post>, StoreError> {
    let events = tx.events_since(channel.workspace_id, channel.id, due - Duration::weeks(53)).await?;
    let digest = Digest::compute(&events, due, channel.time_zone);
    // A week without any activity gets no digest: a scoreboard of zeros is noise.
    if digest.is_quiet_week() {
        return Ok(Vec::new());
    }
    Ok(vec![Post::Channel(build::digest(&digest, &channel.name))])
}

/// Small wins since the previous batch: metric steps (not target hits, which were posted at once),
/// pledges kept, experiments closed with a learning.
async fn celebrations(tx: &mut Tx, channel: &ChannelRecord, due: DateTime<Utc>) -> Result<Vec<Post>, StoreError> {
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
        return Ok(Vec::new());
    }
    let message = Message::channel(format!("🎉 Small wins in #{} today", channel.name))
        .with_section(Section::body(lines.join("\n")));
    Ok(vec![Post::Channel(message)])
}

/// A pledge's reminder at its stage: privately to its owner on the due day and the day after, then
/// to the channel, which marks it broken.
pub(super) async fn pledge_stage(
    tx: &mut Tx,
    channel: &ChannelRecord,
    pledge: &PledgeRecord,
    stage: PledgeStage,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Post>, StoreError> {
    let ws = channel.workspace_id;
    let id = pledge.number;
    let today = due.with_timezone(&pledge.owner_time_zone.unwrap_or(channel.time_zone)).date_naive();
    let buttons = pledge_section(pledge, today, PledgeButtons::All);
    let post = match stage {
        PledgeStage::Due => Post::Private {
            member: pledge.owner_id,
            message: Message::private(format!("⏰ {id} is due today: {}", pledge.text)).with_section(buttons),
        },
        PledgeStage::Overdue => Post::Private {
            member: pledge.owner_id,
            message: Message::private(format!(
                "{id} was due {}: {}. Done, a new date, or an honest release: any of them is fine.",
                day_label(pledge.due_on, today),
                pledge.text
            ))
            .with_section(buttons),
        },
        PledgeStage::Broken => {
            if !tx.mark_pledge_broken(ws, pledge.id).await? {
                return Ok(Vec::new());
            }
            let days = days_overdue(pledge.due_on, today);
            let data = serde_json::json!({ "days_overdue": days });
            let event = NewEvent {
                channel: Some(channel.id),
                actor: None,
                kind: EventKind::PledgeBroken,
                subject: Some(id.to_string()),
                data: &data,
            };
            tx.append_event(ws, &event, now).await?;
            Post::Channel(
                Message::channel(format!(
                    "{id} ({}) is {days} days past its date. {}, keep it, move it or release it: an honest answer keeps the team's trust.",
                    pledge.text, pledge.owner_name
                ))
                .with_section(buttons),
            )
        }
    };
    Ok(vec![post])
}
