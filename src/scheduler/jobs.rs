//! What each scheduled job posts. Builders read the store inside the occurrence's transaction and
//! return the posts (none when there is nothing worth saying, which is never a post).

use chrono::{DateTime, Duration, Utc};

use super::Post;
use crate::domain::digest::Digest;
use crate::domain::firings::PledgeStage;
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::metric::{Win, format_value};
use crate::domain::pledge::days_overdue;
use crate::message::build::{self, CHECKIN_ITEMS, CheckIn, PledgeButtons, day_label, pledge_section};
use crate::message::{Message, Section, mention};
use crate::store::{
    ChannelRecord, CheckInReads, EventKind, EventRecord, ExperimentRecord, NewEvent, PledgeRecord, StoreError, Tx,
};

/// The weekly check-in, from what was read for the page's check-ins.
pub(super) fn checkin(channel: &ChannelRecord, due: DateTime<Utc>, reads: &CheckInReads) -> Message {
    let today = due.with_timezone(&channel.time_zone).date_naive();
    let none = Vec::new();
    let running = reads.running.get(&channel.id).unwrap_or(&none);
    let shown: Vec<(ExperimentRecord, Vec<f64>)> = running
        .iter()
        .take(CHECKIN_ITEMS)
        .map(|e| (e.clone(), reads.readings.get(&e.id).cloned().unwrap_or_default()))
        .collect();
    build::checkin(&CheckIn {
        channel,
        today,
        running: &shown,
        running_count: running.len(),
        pledges: reads.pledges.get(&channel.id).map_or(&[], Vec::as_slice),
        backlog: reads.backlog.get(&channel.id).map_or(&[], Vec::as_slice),
    })
}

/// The week's digest from the channel's events; none for a week without any activity, because a
/// scoreboard of zeros is noise.
pub(super) fn digest(channel: &ChannelRecord, due: DateTime<Utc>, events: &[EventRecord]) -> Option<Message> {
    let digest = Digest::compute(events, due, channel.time_zone);
    (!digest.is_quiet_week()).then(|| build::digest(&digest, &channel.name))
}

/// Small wins since the previous batch: metric steps (not target hits, which were posted at once),
/// pledges kept, experiments closed with a learning.
pub(super) async fn celebrations(
    tx: &mut Tx,
    channel: &ChannelRecord,
    due: DateTime<Utc>,
    events: &[EventRecord],
) -> Result<Option<Message>, StoreError> {
    let ws = channel.workspace_id;
    let mut lines = Vec::new();
    for event in events.iter().filter(|e| e.at > due - Duration::days(1) && e.at <= due) {
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
    let message = Message::channel(format!("🎉 Small wins in #{} today", channel.name))
        .with_section(Section::body(lines.join("\n")));
    Ok(Some(message))
}

/// A pledge's reminder at its stage: privately to its owner on the due day and the day after, then
/// to the channel.
pub(super) fn pledge_reminder(
    channel: &ChannelRecord,
    pledge: &PledgeRecord,
    stage: PledgeStage,
    due: DateTime<Utc>,
) -> Post {
    let id = pledge.number;
    let today = due.with_timezone(&pledge.owner_time_zone.unwrap_or(channel.time_zone)).date_naive();
    let buttons = pledge_section(pledge, today, PledgeButtons::All);
    match stage {
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
        PledgeStage::Broken => Post::Channel(
            Message::channel(format!(
                "{id} ({}) is {} days past its date. {}, keep it, move it or release it: an honest answer keeps the team's trust.",
                pledge.text,
                days_overdue(pledge.due_on, today),
                mention(&pledge.owner_external_id, &pledge.owner_name)
            ))
            .with_section(buttons),
        ),
    }
}

/// The channel has been told: the pledge is broken from now on (until kept, extended or released).
pub(super) async fn mark_broken(
    tx: &mut Tx,
    channel: &ChannelRecord,
    pledge: &PledgeRecord,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let ws = channel.workspace_id;
    if !tx.mark_pledge_broken(ws, pledge.id).await? {
        return Ok(());
    }
    let today = due.with_timezone(&pledge.owner_time_zone.unwrap_or(channel.time_zone)).date_naive();
    let data = serde_json::json!({ "days_overdue": days_overdue(pledge.due_on, today) });
    let event = NewEvent {
        channel: Some(channel.id),
        actor: None,
        kind: EventKind::PledgeBroken,
        subject: Some(pledge.number.to_string()),
        data: &data,
    };
    tx.append_event(ws, &event, now).await
}
