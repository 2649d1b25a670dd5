//! `/experiment`: propose, list, show, start, record readings, close, vote, and the learnings.

use super::execute::{Context, Failure, LIST_LIMIT, future_day, proposal_reply, refuse};
use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::domain::experiment::{self, ExperimentStatus, Outcome};
use crate::domain::firings::{REMINDER_HOUR, local_time};
use crate::domain::ids::ExperimentRef;
use crate::domain::metric::Metric;
use crate::domain::metric::{Win, format_value};
use crate::domain::units::{Fit, fit, is_far_off, same_unit};
use crate::message::build::{day_label, experiment_section, plural};
use crate::message::form::fields;
use crate::message::{ActionKind, ActionStyle, Message, Section, mention};
use crate::store::{Edit, EventKind, ExperimentRecord, NewExperiment, Recipient, Tx};

pub(super) async fn run(tx: &mut Tx, ctx: &Context<'_>, command: ExperimentCommand) -> Result<Message, Failure> {
    match command {
        ExperimentCommand::Propose(proposal) => propose(tx, ctx, proposal).await,
        ExperimentCommand::List { filter, page } => list_experiments(tx, ctx, filter, page).await,
        ExperimentCommand::Show(id) => show_experiment(tx, ctx, id).await,
        ExperimentCommand::Start(id) => start_experiment(tx, ctx, id).await,
        ExperimentCommand::Update { experiment, value, unit, note, confirmed } => {
            let typed = Typed { value, unit: unit.as_deref(), note: note.as_deref(), confirmed };
            record_reading(tx, ctx, experiment, typed).await
        }
        ExperimentCommand::Close { experiment, outcome, learning } => {
            close_experiment(tx, ctx, experiment, outcome, &learning).await
        }
        ExperimentCommand::Vote(id) => vote(tx, ctx, id).await,
        ExperimentCommand::Learnings { words } => learnings(tx, ctx, words.as_deref()).await,
        ExperimentCommand::Readings { experiment, delete: None } => list_readings(tx, ctx, experiment).await,
        ExperimentCommand::Readings { experiment, delete: Some(reading) } => {
            delete_reading(tx, ctx, experiment, reading).await
        }
        ExperimentCommand::Edit { experiment, change } => edit(tx, ctx, experiment, change).await,
        ExperimentCommand::Abandon { experiment, reason } => abandon(tx, ctx, experiment, &reason).await,
    }
}

async fn propose(tx: &mut Tx, ctx: &Context<'_>, proposal: Proposal) -> Result<Message, Failure> {
    let review_on = match &proposal.review {
        Some(due) => Some(future_day(due, ctx.today(), "review date", fields::REVIEW)?),
        None => None,
    };
    let new = NewExperiment {
        channel: ctx.channel.id,
        owner: &ctx.member,
        title: &proposal.title,
        hypothesis: &proposal.hypothesis,
        metric: &proposal.metric,
        review_on,
    };
    // The store logs the proposal with the row, in one statement on Postgres.
    let experiment = tx.insert_experiment(ctx.ws, &new, ctx.now).await?;
    if let Some(day) = review_on {
        tx.set_review_firing(ctx.ws, ctx.channel.id, experiment.id, review_reminder(ctx, day)).await?;
    }
    Ok(proposal_reply(&experiment, ctx.today()))
}

/// When the owner hears that the review date has come: that morning in their zone, or at once
/// when the morning has passed.
fn review_reminder(ctx: &Context<'_>, day: NaiveDate) -> Option<DateTime<Utc>> {
    local_time(ctx.zone(), day, REMINDER_HOUR).map(|at| at.max(ctx.now))
}

/// Tells an experiment's owner, privately, what someone else did to it.
async fn tell_owner(tx: &mut Tx, ctx: &Context<'_>, experiment: &ExperimentRecord, what: &str) -> Result<(), Failure> {
    if experiment.owner_id == ctx.member.id {
        return Ok(());
    }
    let message =
        Message::private(format!("{} {what} {} · {}.", ctx.member.display_name, experiment.number, experiment.title));
    let key = format!("told:{}:{}:{}:{}", ctx.ws.0, experiment.number, what, ctx.now.timestamp_millis());
    let channel = experiment.channel_id;
    tx.enqueue_message(ctx.ws, channel, Recipient::Member(experiment.owner_id), &key, &message, ctx.now).await?;
    Ok(())
}

async fn list_experiments(
    tx: &mut Tx,
    ctx: &Context<'_>,
    filter: ExperimentFilter,
    page: u32,
) -> Result<Message, Failure> {
    use ExperimentStatus::*;
    let (statuses, label, word): (Vec<ExperimentStatus>, &str, &str) = match filter {
        ExperimentFilter::Active => (vec![Proposed, Running], "proposed or running", ""),
        ExperimentFilter::Proposed => (vec![Proposed], "proposed", "proposed "),
        ExperimentFilter::Running => (vec![Running], "running", "running "),
        ExperimentFilter::Closed => (closed_statuses(), "closed", "closed "),
        ExperimentFilter::All => ([Proposed, Running].into_iter().chain(closed_statuses()).collect(), "", "all "),
    };
    let offset = i64::from(page - 1) * LIST_LIMIT;
    let (experiments, total) = tx.experiment_page(ctx.ws, ctx.channel.id, &statuses, LIST_LIMIT, offset).await?;
    let what = if label.is_empty() { "experiments".to_string() } else { format!("{label} experiments") };
    if total == 0 {
        return Ok(Message::private(format!(
            "No {what} in this channel yet. Propose one: `/experiment propose <title> | <hypothesis> | <metric> <baseline> -> <target>`"
        )));
    }
    if experiments.is_empty() {
        let pages = (total + LIST_LIMIT - 1) / LIST_LIMIT;
        return refuse(format!(
            "There {} {total} {what} in #{}, which make {pages} page{}; try `/experiment list {word}{pages}`.",
            if total == 1 { "is" } else { "are" },
            ctx.channel.name,
            plural(pages as usize),
        ));
    }
    let first = offset + 1;
    let last = offset + experiments.len() as i64;
    let mut text = format!("{total} experiment{} in #{}", plural(total as usize), ctx.channel.name);
    if !label.is_empty() {
        text = format!("{text} ({label})");
    }
    if total > experiments.len() as i64 {
        text = format!("{text}, showing {first}–{last}");
    }
    let mut reply = Message::private(text);
    for experiment in &experiments {
        reply = reply.with_section(experiment_section(experiment, &[], ctx.today(), false));
    }
    // The rest is one command away, never silently left out.
    if total > last {
        let more = total - last;
        let next = format!("/experiment list {word}{}", page + 1);
        reply = reply.with_section(Section::body(format!("…and {more} more: `{}`", next.trim_end())));
    }
    Ok(reply)
}

fn closed_statuses() -> Vec<ExperimentStatus> {
    [Outcome::Won, Outcome::Lost, Outcome::Inconclusive]
        .into_iter()
        .map(ExperimentStatus::Closed)
        .chain([ExperimentStatus::Abandoned])
        .collect()
}

async fn find_experiment(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef) -> Result<ExperimentRecord, Failure> {
    match tx.experiment(ctx.ws, id).await? {
        Some(experiment) => Ok(experiment),
        None => refuse(format!("There is no {id} in this workspace. `/experiment list all` shows every experiment.")),
    }
}

async fn show_experiment(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef) -> Result<Message, Failure> {
    let experiment = find_experiment(tx, ctx, id).await?;
    let readings = tx.readings(ctx.ws, experiment.id).await?;
    let values: Vec<f64> = readings.iter().map(|r| r.value).collect();
    let mut section = experiment_section(&experiment, &values, ctx.today(), true);
    section = section.with_field("Hypothesis", &experiment.hypothesis);
    if let Some(learning) = &experiment.learning {
        section = section.with_field("What we learned", learning);
    }
    if let Some(note) = readings.last().and_then(|r| r.note.as_deref()) {
        section = section.with_field("Last note", note);
    }
    section = section.with_field("Readings", readings.len().to_string());
    Ok(Message::private(format!("{} · {}", experiment.number, experiment.title)).with_section(section))
}

async fn start_experiment(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef) -> Result<Message, Failure> {
    let mut experiment = find_experiment(tx, ctx, id).await?;
    let running = experiment::start(id, experiment.status)?;
    if !tx.transition_experiment(ctx.ws, experiment.id, experiment.status, running, None, ctx.now).await? {
        return refuse(format!("{id} changed while you typed; have another look with `/experiment show {id}`."));
    }
    experiment.status = running;
    ctx.event(tx, EventKind::ExperimentStarted, Some(id.to_string()), serde_json::json!({})).await?;
    let text =
        format!("🚀 {id} is running: {}. Record readings with `/experiment update {id} <value>`.", experiment.title);
    Ok(Message::channel(text).with_section(experiment_section(&experiment, &[], ctx.today(), true)))
}

/// A reading as typed.
struct Typed<'a> {
    value: f64,
    unit: Option<&'a str>,
    note: Option<&'a str>,
    /// The person already said yes to this value.
    confirmed: bool,
}

/// How many recent readings count when judging whether a new one is far off.
const RECENT_READINGS: usize = 5;

async fn record_reading(
    tx: &mut Tx,
    ctx: &Context<'_>,
    id: ExperimentRef,
    typed: Typed<'_>,
) -> Result<Message, Failure> {
    let mut experiment = find_experiment(tx, ctx, id).await?;
    experiment::record_reading(id, experiment.status)?;
    let metric = &experiment.metric;
    // "12 orders": the metric's own unit, typed apart, is the unit and not the note.
    let (unit, note) = match (typed.unit, typed.note, metric.unit.as_deref()) {
        (None, Some(note), Some(kept)) => {
            let (first, rest) = note.split_once(char::is_whitespace).unwrap_or((note, ""));
            if same_unit(first, kept) {
                (Some(first), Some(rest.trim()).filter(|r| !r.is_empty()))
            } else {
                (None, Some(note))
            }
        }
        (unit, note, _) => (unit, note),
    };
    let shown = |value: f64| format_value(value, metric.unit.as_deref());
    let value = match fit(metric, typed.value, unit) {
        Fit::Value(value) => value,
        // A unit that conflicts with the metric's is the value field's problem in a form.
        Fit::Refuse(why) => return Err(Failure::User(Message::private(why).about_field(fields::VALUE))),
        Fit::Ask { suggested, why } => {
            let ask = Message::private(format!("{why} Nothing is recorded until you choose.")).with_section(
                Section::heading(format!("{id} · {}", experiment.title))
                    .with_action(
                        format!("Record {}", shown(suggested)),
                        ActionKind::RecordReading { experiment: id, value: suggested },
                        ActionStyle::Primary,
                    )
                    .with_action(
                        format!("Record {}", shown(typed.value)),
                        ActionKind::RecordReading { experiment: id, value: typed.value },
                        ActionStyle::Default,
                    ),
            );
            return Err(Failure::User(ask));
        }
    };
    let earlier: Vec<f64> = tx.readings(ctx.ws, experiment.id).await?.into_iter().map(|r| r.value).collect();
    let recent = &earlier[earlier.len().saturating_sub(RECENT_READINGS)..];
    if !typed.confirmed && is_far_off(metric, recent, value) {
        // Likely a slip (a unit, a point): nothing is recorded, and nobody is told of a win, until
        // the person says it is right.
        let ask = Message::private(format!(
            "{} is far from {id}'s range ({} → {}{}). Is it right? Nothing is recorded until you say so.",
            shown(value),
            shown(metric.baseline),
            shown(metric.target),
            recent.last().map(|v| format!(", lately {}", shown(*v))).unwrap_or_default()
        ))
        .with_section(Section::heading(format!("{id} · {}", experiment.title)).with_action(
            format!("Record {}", shown(value)),
            ActionKind::RecordReading { experiment: id, value },
            ActionStyle::Primary,
        ));
        return Err(Failure::User(ask));
    }
    let win = metric.win(&earlier, value);
    let reading = tx.insert_reading(ctx.ws, experiment.id, value, note, Some(ctx.member.id), ctx.now).await?;
    let data = serde_json::json!({ "value": value, "win": win, "reading": reading });
    ctx.event(tx, EventKind::ReadingRecorded, Some(id.to_string()), data).await?;
    experiment.latest = Some(value);
    if win == Some(Win::TargetHit) {
        // A target hit is celebrated at once (small wins wait for the batch); the owner is asked
        // to close it with what the team learned.
        let unit = experiment.metric.unit.as_deref();
        let announcement = Message::channel(format!(
            "🎯 {id} {} hit its target: {} reached {} (target {}). {}, close it with what you learned?",
            experiment.title,
            experiment.metric.name,
            format_value(value, unit),
            format_value(experiment.metric.target, unit),
            mention(&experiment.owner_external_id, &experiment.owner_name)
        ));
        // One announcement per reading that hit: a hit whose reading was deleted as a slip does
        // not silence the real one that comes later.
        let key = format!("target_hit:{}:{id}:{reading}", ctx.ws.0);
        let channel = ctx.channel.id;
        tx.enqueue_message(ctx.ws, channel, Recipient::Channel(channel), &key, &announcement, ctx.now).await?;
    }
    let mut values = earlier;
    values.push(value);
    let unit = experiment.metric.unit.as_deref();
    let mut text = format!("Recorded {} for {id}.", format_value(value, unit));
    match win {
        Some(Win::TargetHit) => text.push_str(" 🎯 That hits the target!"),
        Some(Win::GapClosed { share }) => {
            text.push_str(&format!(" 🎉 That closes {}% of the gap.", (share * 100.0).round() as i64));
        }
        Some(Win::NewBest) => text.push_str(" 🎉 A new best."),
        None => {}
    }
    Ok(Message::private(text).with_section(experiment_section(&experiment, &values, ctx.today(), false)))
}

async fn close_experiment(
    tx: &mut Tx,
    ctx: &Context<'_>,
    id: ExperimentRef,
    outcome: Outcome,
    learning: &str,
) -> Result<Message, Failure> {
    let mut experiment = find_experiment(tx, ctx, id).await?;
    let closed = experiment::close(id, experiment.status, outcome)?;
    if !tx.transition_experiment(ctx.ws, experiment.id, experiment.status, closed, Some(learning), ctx.now).await? {
        return refuse(format!("{id} changed while you typed; have another look with `/experiment show {id}`."));
    }
    experiment.status = closed;
    experiment.learning = Some(learning.to_string());
    let data = serde_json::json!({ "outcome": outcome.as_str() });
    ctx.event(tx, EventKind::ExperimentClosed, Some(id.to_string()), data).await?;
    let headline = match outcome {
        Outcome::Won => "🏆 won",
        Outcome::Lost => "🎓 lost, and we learned something",
        Outcome::Inconclusive => "🔍 inconclusive, and we learned something",
    };
    let text = format!("{id} {} closed {headline}: {}", experiment.title, learning);
    let values: Vec<f64> = tx.readings(ctx.ws, experiment.id).await?.into_iter().map(|r| r.value).collect();
    tell_owner(tx, ctx, &experiment, "closed").await?;
    let section = experiment_section(&experiment, &values, ctx.today(), false).with_field("What we learned", learning);
    Ok(Message::channel(text).with_section(section))
}

async fn list_readings(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef) -> Result<Message, Failure> {
    let experiment = find_experiment(tx, ctx, id).await?;
    let readings = tx.readings(ctx.ws, experiment.id).await?;
    if readings.is_empty() {
        return Ok(Message::private(format!(
            "{id} has no readings yet. Record one: `/experiment update {id} <value>`"
        )));
    }
    let unit = experiment.metric.unit.as_deref();
    let lines: Vec<String> = readings
        .iter()
        .map(|r| {
            let day = day_label(r.recorded_at.with_timezone(&ctx.zone()).date_naive(), ctx.today());
            let by = r.recorder_name.as_deref().unwrap_or("the API");
            let note = r.note.as_deref().map(|n| format!(" — {n}")).unwrap_or_default();
            format!("#{} · {} · {by}, {day}{note}", r.id, format_value(r.value, unit))
        })
        .collect();
    Ok(Message::private(format!("{} reading{} of {id} · {}", readings.len(), plural(readings.len()), experiment.title))
        .with_section(Section::body(lines.join("\n")))
        .with_section(Section::body(format!(
            "A mistyped one can go: `/experiment readings {id} delete <number>` (by whoever recorded it, or the owner)."
        ))))
}

async fn delete_reading(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef, reading: i64) -> Result<Message, Failure> {
    let experiment = find_experiment(tx, ctx, id).await?;
    let readings = tx.readings(ctx.ws, experiment.id).await?;
    let Some(found) = readings.iter().find(|r| r.id == reading) else {
        return refuse(format!("{id} has no reading #{reading}; `/experiment readings {id}` lists them."));
    };
    if found.recorded_by != Some(ctx.member.id) && experiment.owner_id != ctx.member.id {
        let by = found.recorder_name.as_deref().unwrap_or("the API");
        return refuse(format!(
            "Reading #{reading} was recorded by {by}; they or {id}'s owner, {}, can delete it.",
            experiment.owner_name
        ));
    }
    if !tx.delete_reading(ctx.ws, experiment.id, reading).await? {
        return refuse(format!("Reading #{reading} changed while you typed; `/experiment readings {id}` lists them."));
    }
    let shown = format_value(found.value, experiment.metric.unit.as_deref());
    let data = serde_json::json!({ "reading": reading, "value": found.value });
    ctx.event(tx, EventKind::ReadingDeleted, Some(id.to_string()), data).await?;
    Ok(Message::private(format!("Deleted reading #{reading} ({shown}) of {id}; it no longer counts anywhere.")))
}

async fn edit(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef, change: Change) -> Result<Message, Failure> {
    let experiment = find_experiment(tx, ctx, id).await?;
    experiment::edit(id, experiment.status)?;
    let metric = &experiment.metric;
    let unit = metric.unit.as_deref();
    let (mut new_target, mut new_review) = (None, None);
    let (field, from, to) = match &change {
        Change::Title(text) => ("title", experiment.title.clone(), text.clone()),
        Change::Hypothesis(text) => ("hypothesis", experiment.hypothesis.clone(), text.clone()),
        Change::MetricName(text) => ("metric", metric.name.clone(), text.clone()),
        Change::Unit(new) => {
            ("unit", unit.unwrap_or("none").to_string(), new.clone().unwrap_or_else(|| "none".to_string()))
        }
        Change::Target { value, unit: typed } => {
            let target = match fit(metric, *value, typed.as_deref()) {
                Fit::Value(target) => target,
                Fit::Ask { why, .. } | Fit::Refuse(why) => return refuse(why),
            };
            if let Err(error) = Metric::new(metric.name.clone(), metric.unit.clone(), metric.baseline, target) {
                return refuse(error.to_string());
            }
            new_target = Some(target);
            ("target", format_value(metric.target, unit), format_value(target, unit))
        }
        Change::Review(due) => {
            let day = future_day(due, ctx.today(), "review date", fields::REVIEW)?;
            new_review = Some(day);
            let from = experiment.review_on.map(|d| day_label(d, ctx.today())).unwrap_or_else(|| "none".into());
            ("review", from, day_label(day, ctx.today()))
        }
    };
    let store_edit = match &change {
        Change::Title(text) => Edit::Title(text),
        Change::Hypothesis(text) => Edit::Hypothesis(text),
        Change::MetricName(text) => Edit::MetricName(text),
        Change::Unit(new) => Edit::Unit(new.as_deref()),
        Change::Target { .. } => Edit::Target(new_target.unwrap_or(metric.target)),
        Change::Review(_) => Edit::Review(new_review),
    };
    if !tx.edit_experiment(ctx.ws, experiment.id, &store_edit).await? {
        return refuse(format!("{id} changed while you typed; have another look with `/experiment show {id}`."));
    }
    if let Some(day) = new_review {
        tx.set_review_firing(ctx.ws, experiment.channel_id, experiment.id, review_reminder(ctx, day)).await?;
    }
    let data = serde_json::json!({ "field": field, "from": from, "to": to });
    ctx.event(tx, EventKind::ExperimentEdited, Some(id.to_string()), data).await?;
    tell_owner(tx, ctx, &experiment, &format!("changed the {field} of")).await?;
    Ok(Message::private(format!("✏️ {id}'s {field} is now {to} (was {from}).")))
}

async fn abandon(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef, reason: &str) -> Result<Message, Failure> {
    let experiment = find_experiment(tx, ctx, id).await?;
    let abandoned = experiment::abandon(id, experiment.status)?;
    if !tx.transition_experiment(ctx.ws, experiment.id, experiment.status, abandoned, Some(reason), ctx.now).await? {
        return refuse(format!("{id} changed while you typed; have another look with `/experiment show {id}`."));
    }
    let data = serde_json::json!({ "reason": reason });
    ctx.event(tx, EventKind::ExperimentAbandoned, Some(id.to_string()), data).await?;
    tell_owner(tx, ctx, &experiment, "abandoned").await?;
    Ok(Message::private(format!(
        "{id} · {} is abandoned: {reason}. Stopping what will not be finished is part of starting small.",
        experiment.title
    )))
}

async fn vote(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef) -> Result<Message, Failure> {
    let experiment = find_experiment(tx, ctx, id).await?;
    experiment::vote(id, experiment.status)?;
    if !tx.add_vote(ctx.ws, experiment.id, ctx.member.id, ctx.now).await? {
        return refuse(format!(
            "You have already voted for {id}; it has {} vote{}.",
            experiment.votes,
            plural(experiment.votes as usize)
        ));
    }
    ctx.event(tx, EventKind::ExperimentVoted, Some(id.to_string()), serde_json::json!({})).await?;
    let votes = experiment.votes + 1;
    Ok(Message::private(format!(
        "👍 Voted for {id} ({}); it has {votes} vote{} now.",
        experiment.title,
        plural(votes as usize)
    )))
}

async fn learnings(tx: &mut Tx, ctx: &Context<'_>, words: Option<&str>) -> Result<Message, Failure> {
    let closed = tx.learnings(ctx.ws, words, LIST_LIMIT).await?;
    if closed.is_empty() {
        let text = match words {
            Some(w) => format!("No learnings mention every one of \"{w}\" yet. Fewer words find more."),
            None => "No learnings yet. Close an experiment with what you learned: `/experiment close E-3 lost <what we learned>`".into(),
        };
        return Ok(Message::private(text));
    }
    let total = if closed.len() < LIST_LIMIT as usize {
        closed.len() as i64
    } else {
        tx.count_learnings(ctx.ws, words).await?
    };
    let mut headline = format!("📚 {total} learning{}", plural(total as usize));
    if let Some(w) = words {
        headline = format!("{headline} {} \"{w}\"", if total == 1 { "mentions" } else { "mention" });
    }
    if total > closed.len() as i64 {
        let hint = if words.is_some() { "add words to narrow it" } else { "add words to search" };
        headline = format!("{headline}, showing the {} newest; {hint}", closed.len());
    }
    let mut reply = Message::private(headline);
    for experiment in &closed {
        let learning = experiment.learning.as_deref().unwrap_or_default();
        let closed_on =
            experiment.closed_at.map(|at| day_label(at.with_timezone(&ctx.zone()).date_naive(), ctx.today()));
        let heading = format!("{} · {} ({})", experiment.number, experiment.title, experiment.status);
        let mut section = Section::heading(heading).with_body(learning);
        if let Some(day) = closed_on {
            section = section.with_field("Closed", day);
        }
        reply = reply.with_section(section);
    }
    Ok(reply)
}
