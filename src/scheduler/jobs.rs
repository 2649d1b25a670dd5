//! What each scheduled job posts. Builders read the store inside the occurrence's transaction and
//! return the posts (none when there is nothing worth saying, which is never a post).

use chrono::{DateTime, Duration, Utc};

use super::Post;
use crate::domain::digest::Digest;
use crate::domain::experiment::ExperimentStatus;
use crate::domain::firings::PledgeStage;
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::metric::{Win, format_value};
use crate::domain::pledge::{PledgeStatus, days_overdue};
use crate::message::build::{self, CHECKIN_ITEMS, CheckIn, PledgeButtons, day_label, pledge_section};
use crate::message::{Message, mention};
use crate::store::{
    ChannelRecord, CheckInReads, EventKind, EventRecord, ExperimentRecord, NewEvent, OutboundId, PledgeRecord,
    StoreError, Tx,
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

/// The week's digest from the channel's events, with the wins not celebrated yet; none for a week
/// without any activity, because a scoreboard of zeros is noise.
pub(super) fn digest(
    channel: &ChannelRecord,
    due: DateTime<Utc>,
    events: &[EventRecord],
    wins: &Wins,
) -> Option<Message> {
    let digest = Digest::compute(events, due, channel.time_zone);
    if digest.is_quiet_week() && wins.lines.is_empty() {
        return None;
    }
    let mut message = build::digest(&digest, &channel.name);
    if !wins.lines.is_empty() {
        message = message.with_section(build::wins_section("Small wins", &wins.lines));
    }
    Some(message)
}

/// How far back a batch looks for wins, whatever its mark says: a channel back from a long pause
/// is not flooded with old news.
pub(super) const WINS_LOOK_BACK: Duration = Duration::days(14);

/// The wins a channel has not been told of yet, one line per experiment, per learning and per
/// pledge kept: what its next batch of small wins (or its digest) celebrates.
#[derive(Default)]
pub(super) struct Wins {
    pub lines: Vec<String>,
    /// Target-hit announcements that died in the outbox and are told in these lines instead.
    pub folded: Vec<OutboundId>,
}

/// The channel's wins after `since` (the mark of what was celebrated) up to the occurrence's
/// instant `due`. Wins are recomputed from the readings as they are now, so a deleted reading is
/// never celebrated; an experiment whose target-hit announcement died gets that line here.
pub(super) async fn wins(
    tx: &mut Tx,
    channel: &ChannelRecord,
    since: DateTime<Utc>,
    due: DateTime<Utc>,
    events: &[EventRecord],
    dead_target_hits: &[(OutboundId, ExperimentRef)],
) -> Result<Wins, StoreError> {
    let ws = channel.workspace_id;
    let from = since.max(due - WINS_LOOK_BACK);
    let new: Vec<&EventRecord> = events.iter().filter(|e| e.at > from && e.at <= due).collect();

    // Each experiment once, in the order its first reading came; with the readings that are new.
    let mut experiments: Vec<(ExperimentRef, Vec<&EventRecord>)> = Vec::new();
    for event in new.iter().filter(|e| e.kind == EventKind::ReadingRecorded) {
        let Some(id) = event.subject.as_deref().and_then(|s| s.parse::<ExperimentRef>().ok()) else { continue };
        match experiments.iter_mut().find(|(e, _)| *e == id) {
            Some((_, readings)) => readings.push(event),
            None => experiments.push((id, vec![event])),
        }
    }
    for (_, id) in dead_target_hits {
        if !experiments.iter().any(|(e, _)| e == id) {
            experiments.push((*id, Vec::new()));
        }
    }

    let mut found = Wins::default();
    for (id, recorded) in &experiments {
        let Some(experiment) = tx.experiment(ws, *id).await? else { continue };
        let readings = tx.readings(ws, experiment.id).await?;
        let metric = &experiment.metric;
        // Which of the new readings are still there (a deleted one is gone from the table).
        let is_new = |reading: &crate::store::ReadingRecord| {
            recorded.iter().any(|event| match event.data["reading"].as_i64() {
                Some(number) => number == reading.id,
                // Events from before readings had numbers: the reading recorded at that instant.
                None => reading.recorded_at == event.at && Some(reading.value) == event.data["value"].as_f64(),
            })
        };
        // The line tells the furthest of the new readings that were wins; a target hit among them
        // was announced at once.
        let mut earlier = Vec::with_capacity(readings.len());
        let (mut best, mut hit): (Option<f64>, bool) = (None, false);
        for reading in &readings {
            if is_new(reading)
                && let Some(win) = metric.win(&earlier, reading.value)
            {
                hit |= win == Win::TargetHit;
                if best.is_none_or(|known| metric.progress(reading.value) > metric.progress(known)) {
                    best = Some(reading.value);
                }
            }
            earlier.push(reading.value);
        }
        let unit = metric.unit.as_deref();
        let head = format!("{id} {}: {} {} →", experiment.title, metric.name, format_value(metric.baseline, unit));
        let dead: Vec<OutboundId> = dead_target_hits.iter().filter(|(_, e)| e == id).map(|(post, _)| *post).collect();
        let furthest =
            readings.iter().map(|r| r.value).max_by(|a, b| metric.progress(*a).total_cmp(&metric.progress(*b)));
        match (best, furthest) {
            // The team never heard of the target hit: it is told now, with the owner asked to close.
            (_, Some(value)) if !dead.is_empty() && metric.reached(value) => {
                let ask = match experiment.status {
                    ExperimentStatus::Running => format!(
                        " {}, close it with what you learned?",
                        mention(&experiment.owner_external_id, &experiment.owner_name)
                    ),
                    _ => String::new(),
                };
                found.lines.push(format!(
                    "🎯 {head} {} hit the target ({}).{ask}",
                    format_value(value, unit),
                    format_value(metric.target, unit),
                ));
                found.folded.extend(dead);
            }
            (None, _) => {}
            // Announced at once when it came: not again.
            _ if hit => {}
            (Some(value), _) if metric.reached(value) => {
                found.lines.push(format!("📈 {head} {}, a new best past the target", format_value(value, unit)));
            }
            (Some(value), _) => found.lines.push(format!(
                "📈 {head} {}, {}% of the gap",
                format_value(value, unit),
                (metric.progress(value) * 100.0).round() as i64
            )),
        }
    }
    for event in &new {
        let subject = event.subject.clone().unwrap_or_default();
        match event.kind {
            EventKind::ExperimentClosed => {
                let Ok(id) = subject.parse::<ExperimentRef>() else { continue };
                if let Some(experiment) = tx.experiment(ws, id).await? {
                    let learning = experiment.learning.unwrap_or_default();
                    found.lines.push(format!("🎓 {id} {} closed with a learning: {learning}", experiment.title));
                }
            }
            EventKind::PledgeKept => {
                let Ok(id) = subject.parse::<PledgeRef>() else { continue };
                if let Some(pledge) = tx.pledge(ws, id).await?.filter(|p| p.status == PledgeStatus::Kept) {
                    found.lines.push(format!("✅ {} kept {id}: {}", pledge.owner_name, pledge.text));
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The batch of small wins: none when there is nothing new to celebrate.
pub(super) fn celebrations(channel: &ChannelRecord, wins: &Wins) -> Option<Message> {
    (!wins.lines.is_empty()).then(|| build::small_wins(&channel.name, &wins.lines))
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

/// An experiment's review date has come: its owner hears privately, with where it stands and the
/// two things to do about it in one click each.
pub(super) fn review_reminder(
    channel: &ChannelRecord,
    experiment: &ExperimentRecord,
    values: &[f64],
    due: DateTime<Utc>,
) -> Post {
    let id = experiment.number;
    let today = due.with_timezone(&channel.time_zone).date_naive();
    let when = match experiment.review_on {
        Some(day) if day < today => format!("was due for review {}", day_label(day, today)),
        _ => "is due for review today".to_string(),
    };
    // A proposal cannot be closed yet: it is offered a start instead.
    let text = if experiment.status == ExperimentStatus::Proposed {
        format!(
            "🔍 {id} · {} {when}, and has not started. Start it, give it a later review date, or let it go: \
             `/experiment abandon {id} <why>`.",
            experiment.title
        )
    } else {
        format!("🔍 {id} · {} {when}. Close it with what you learned, or give it more time.", experiment.title)
    };
    let section = build::review_section(experiment, values);
    Post::Private { member: experiment.owner_id, message: Message::private(text).with_section(section) }
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
