//! `/experiment`: propose, list, show, start, record readings, close, vote, and the learnings.

use super::execute::{Context, Failure, LIST_LIMIT, count_label, future_day, proposal_reply, refuse};
use super::*;
use crate::domain::experiment::{self, ExperimentStatus, Outcome};
use crate::domain::ids::ExperimentRef;
use crate::domain::metric::{Win, format_value};
use crate::message::build::{day_label, experiment_section, plural};
use crate::message::{Message, Section};
use crate::store::{EventKind, ExperimentRecord, NewExperiment, Recipient, Tx};

pub(super) async fn run(tx: &mut Tx, ctx: &Context<'_>, command: ExperimentCommand) -> Result<Message, Failure> {
    match command {
        ExperimentCommand::Propose(proposal) => propose(tx, ctx, proposal).await,
        ExperimentCommand::List(filter) => list_experiments(tx, ctx, filter).await,
        ExperimentCommand::Show(id) => show_experiment(tx, ctx, id).await,
        ExperimentCommand::Start(id) => start_experiment(tx, ctx, id).await,
        ExperimentCommand::Update { experiment, value, note } => {
            record_reading(tx, ctx, experiment, value, note.as_deref()).await
        }
        ExperimentCommand::Close { experiment, outcome, learning } => {
            close_experiment(tx, ctx, experiment, outcome, &learning).await
        }
        ExperimentCommand::Vote(id) => vote(tx, ctx, id).await,
        ExperimentCommand::Learnings { words } => learnings(tx, ctx, words.as_deref()).await,
    }
}

async fn propose(tx: &mut Tx, ctx: &Context<'_>, proposal: Proposal) -> Result<Message, Failure> {
    let review_on = match &proposal.review {
        Some(due) => Some(future_day(due, ctx.today(), "review date")?),
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
    Ok(proposal_reply(&experiment, ctx.today()))
}

async fn list_experiments(tx: &mut Tx, ctx: &Context<'_>, filter: ExperimentFilter) -> Result<Message, Failure> {
    use ExperimentStatus::*;
    let (statuses, label): (Vec<ExperimentStatus>, &str) = match filter {
        ExperimentFilter::Active => (vec![Proposed, Running], "proposed or running"),
        ExperimentFilter::Proposed => (vec![Proposed], "proposed"),
        ExperimentFilter::Running => (vec![Running], "running"),
        ExperimentFilter::Closed => (closed_statuses(), "closed"),
        ExperimentFilter::All => ([Proposed, Running].into_iter().chain(closed_statuses()).collect(), ""),
    };
    let experiments = tx.experiments_in_channel(ctx.ws, ctx.channel.id, &statuses, LIST_LIMIT + 1).await?;
    if experiments.is_empty() {
        let what = if label.is_empty() { "No experiments".to_string() } else { format!("No {label} experiments") };
        return Ok(Message::private(format!(
            "{what} in this channel yet. Propose one: `/experiment propose <title> | <hypothesis> | <metric> <baseline> -> <target>`"
        )));
    }
    let shown = experiments.len().min(LIST_LIMIT as usize);
    let mut text =
        format!("{} experiment{} in #{}", count_label(shown, experiments.len()), plural(shown), ctx.channel.name);
    if !label.is_empty() {
        text = format!("{text} ({label})");
    }
    let mut reply = Message::private(text);
    for experiment in experiments.iter().take(shown) {
        reply = reply.with_section(experiment_section(experiment, &[], ctx.today(), false));
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

async fn record_reading(
    tx: &mut Tx,
    ctx: &Context<'_>,
    id: ExperimentRef,
    value: f64,
    note: Option<&str>,
) -> Result<Message, Failure> {
    let mut experiment = find_experiment(tx, ctx, id).await?;
    experiment::record_reading(id, experiment.status)?;
    let earlier: Vec<f64> = tx.readings(ctx.ws, experiment.id).await?.into_iter().map(|r| r.value).collect();
    let win = experiment.metric.win(&earlier, value);
    tx.insert_reading(ctx.ws, experiment.id, value, note, Some(ctx.member.id), ctx.now).await?;
    let data = serde_json::json!({ "value": value, "win": win });
    ctx.event(tx, EventKind::ReadingRecorded, Some(id.to_string()), data).await?;
    experiment.latest = Some(value);
    if win == Some(Win::TargetHit) {
        // A target hit is celebrated at once (small wins wait for the daily batch).
        let unit = experiment.metric.unit.as_deref();
        let announcement = Message::channel(format!(
            "🎯 {id} {} hit its target: {} reached {} (target {}).",
            experiment.title,
            experiment.metric.name,
            format_value(value, unit),
            format_value(experiment.metric.target, unit)
        ));
        let key = format!("target_hit:{}:{id}", ctx.ws.0);
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
    let section = experiment_section(&experiment, &values, ctx.today(), false).with_field("What we learned", learning);
    Ok(Message::channel(text).with_section(section))
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
            Some(w) => format!("No learnings mention \"{w}\" yet."),
            None => "No learnings yet. Close an experiment with what you learned: `/experiment close E-3 lost <what we learned>`".into(),
        };
        return Ok(Message::private(text));
    }
    let mut reply = Message::private(format!("📚 {} learning{}", closed.len(), plural(closed.len())));
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
