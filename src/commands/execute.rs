//! Execution: applies a parsed [`Command`] to the store and says what happened as a neutral
//! [`Message`]. Reads run in a read-only transaction and never wait for writes. A write runs in one
//! short transaction (several commands of one workspace may share it, see `writer`); a command that
//! fails for a reason the person can fix (unknown id, wrong status, no capacity) changes nothing
//! and is answered privately with what to do instead.
//!
//! Every command refuses before it writes (a conditional update that changed nothing is not a
//! write that matters), which is what lets commands share a transaction without savepoints; a
//! command that refuses after writing makes its batch run again one command at a time.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::grammar::{UsageError, help_text};
use super::{
    Command, ExperimentCommand, ExperimentFilter, HelpTopic, NudgeCommand, PledgeCommand, PledgeFilter, Proposal,
    QuietChange,
};
use crate::config::Defaults;
use crate::domain::dates::DueDate;
use crate::domain::digest::Digest;
use crate::domain::experiment::{self, ExperimentStatus, Outcome};
use crate::domain::ids::{ChannelId, ExperimentRef, MemberId, PledgeRef};
use crate::domain::metric::{Win, format_value};
use crate::domain::pledge::{PledgeStatus, days_overdue, has_capacity};
use crate::domain::schedule::{QuietDays, weekday_name};
use crate::message::build::{self, PledgeButtons, day_label, experiment_section, pledge_section, plural};
use crate::message::{Message, Section};
use crate::store::{
    ChannelDefaults, ChannelRecord, EventKind, ExperimentRecord, MemberRecord, NewEvent, NewExperiment, NewPledge,
    PledgeRecord, QuickProposal, Recipient, Reminders, Store, StoreError, Tx, WorkspaceId,
};

/// Most items one reply lists, so every reply fits the platforms' message limits.
pub const LIST_LIMIT: i64 = 15;

/// Who typed the command, where, and when. The workspace comes from the verified request, never
/// from the command text.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub workspace: WorkspaceId,
    pub channel_id: String,
    pub channel_name: String,
    pub member_id: String,
    pub member_name: String,
    pub now: DateTime<Utc>,
}

/// Why a command did not go through.
enum Failure {
    /// Something the person can fix; answered privately, nothing written.
    User(Message),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

impl From<experiment::TransitionError> for Failure {
    fn from(error: experiment::TransitionError) -> Self {
        Failure::User(Message::private(error.to_string()))
    }
}

fn refuse<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::User(Message::private(message)))
}

/// Everything a command runs against: its channel and member, resolved inside the transaction.
struct Context<'a> {
    ws: WorkspaceId,
    channel: ChannelRecord,
    member: MemberRecord,
    now: DateTime<Utc>,
    defaults: &'a Defaults,
}

impl Context<'_> {
    /// A pledge's reminders come in its owner's morning, and reach the channel after its grace.
    fn reminders(&self) -> Reminders {
        Reminders { zone: self.zone(), escalate_after_days: self.channel.escalate_after_days }
    }

    /// Due dates are the owner's days when their time zone is known, else the channel's.
    fn zone(&self) -> Tz {
        self.member.time_zone.unwrap_or(self.channel.time_zone)
    }

    fn today(&self) -> NaiveDate {
        self.now.with_timezone(&self.zone()).date_naive()
    }

    async fn event(
        &self,
        tx: &mut Tx,
        kind: EventKind,
        subject: Option<String>,
        data: serde_json::Value,
    ) -> Result<(), StoreError> {
        let event =
            NewEvent { channel: Some(self.channel.id), actor: Some(self.member.id), kind, subject, data: &data };
        tx.append_event(self.ws, &event, self.now).await
    }
}

/// The reply to a command that did not parse: the problem, the usage line and an example.
pub fn usage_reply(error: &UsageError) -> Message {
    Message::private(error.to_string())
}

/// The answer to a help command; it needs no workspace, channel or database. The list goes in a
/// section and the headline stays short, because platforms repeat the headline as the fallback.
pub fn help_reply(topic: HelpTopic) -> Message {
    let headline = match topic {
        HelpTopic::All => "What nudge can do",
        HelpTopic::Experiment => "Experiments with nudge",
        HelpTopic::Pledge => "Pledges with nudge",
    };
    Message::private(headline).with_section(Section::body(help_text(topic)))
}

/// Whether a command only reads: it runs in a read-only transaction, outside any writer.
pub fn is_read(command: &Command) -> bool {
    match command {
        Command::Help(_) => true,
        Command::Experiment(c) => {
            matches!(c, ExperimentCommand::List(_) | ExperimentCommand::Show(_) | ExperimentCommand::Learnings { .. })
        }
        Command::Pledge(c) => matches!(c, PledgeCommand::List(_)),
        Command::Nudge(c) => matches!(
            c,
            NudgeCommand::ShowRules | NudgeCommand::ShowSchedule | NudgeCommand::Digest | NudgeCommand::Settings
        ),
    }
}

/// Runs one command on its own: a read in a read-only transaction, a write in a transaction of its
/// own (run again once after a conflict with another transaction). The server goes through the
/// per-workspace writers instead (`writer::Commands`); tests and tools use this.
pub async fn execute(
    store: &Store,
    defaults: &Defaults,
    inv: &Invocation,
    command: Command,
) -> Result<Message, StoreError> {
    match command {
        Command::Help(topic) => Ok(help_reply(topic)),
        command if is_read(&command) => read(store, defaults, inv, command).await,
        command => write_one(store, defaults, inv, command).await,
    }
}

/// A read command in a read-only transaction. The first command in a channel, or from a member,
/// registers them (the channel gets its check-ins from then on), so that one runs as a write.
pub async fn read(
    store: &Store,
    defaults: &Defaults,
    inv: &Invocation,
    command: Command,
) -> Result<Message, StoreError> {
    let mut tx = store.read().await?;
    let (Some(channel), Some(member)) = tx.channel_and_member(inv.workspace, &inv.channel_id, &inv.member_id).await?
    else {
        drop(tx);
        return write_one(store, defaults, inv, command).await;
    };
    let ctx = Context { ws: inv.workspace, channel, member, now: inv.now, defaults };
    let reply = run_command(&mut tx, &ctx, command).await;
    // A read has nothing to keep; ending it explicitly returns the connection at once.
    tx.commit().await?;
    match reply {
        Ok(reply) | Err(Failure::User(reply)) => Ok(reply),
        Err(Failure::Store(error)) => Err(error),
    }
}

/// A write command in a transaction of its own, run once more if it conflicted with another
/// transaction (a deadlock, a serialization failure, a busy SQLite file).
pub async fn write_one(
    store: &Store,
    defaults: &Defaults,
    inv: &Invocation,
    command: Command,
) -> Result<Message, StoreError> {
    match write_once(store, defaults, inv, &command).await {
        Err(error) if error.is_conflict() => {
            tracing::info!(%error, "a command conflicted with another transaction; running it again");
            write_once(store, defaults, inv, &command).await
        }
        result => result,
    }
}

async fn write_once(
    store: &Store,
    defaults: &Defaults,
    inv: &Invocation,
    command: &Command,
) -> Result<Message, StoreError> {
    // A proposal that needs nothing read first is one statement: on Postgres it needs no
    // transaction around it at all.
    if let Some(new) = quick_proposal(command) {
        let mut tx = store.autocommit().await?;
        if let Some(reply) = propose_quickly(&mut tx, inv, new).await? {
            tx.commit().await?;
            return Ok(reply);
        }
    }
    let mut tx = store.begin().await?;
    match run(&mut tx, defaults, inv, command.clone()).await {
        Ok(reply) => {
            tx.commit().await?;
            Ok(reply)
        }
        // Dropping the transaction rolls back everything, including first-sight channel/member rows.
        Err(Failure::User(reply)) => Ok(reply),
        Err(Failure::Store(error)) => Err(error),
    }
}

/// Why a batch of writes was given up before its commit, so that its commands run one by one.
#[derive(Debug)]
pub enum Abandoned {
    Store(StoreError),
    /// A command refused after it had written: the batch cannot keep its writes.
    RefusedAfterWriting,
}

/// Runs several write commands of one workspace in one transaction and one commit. Answers come
/// back in the order of `jobs`. `Err` means nothing of it was kept (safe to run each again alone);
/// a failed commit answers every command with the error (its outcome is unknown, so not safe).
pub async fn write_batch(
    store: &Store,
    defaults: &Defaults,
    jobs: &[(Invocation, Command)],
) -> Result<Vec<Result<Message, StoreError>>, Abandoned> {
    if let Some(answers) = proposals_only(store, defaults, jobs).await? {
        return Ok(answers);
    }
    let mut tx = store.begin().await.map_err(Abandoned::Store)?;
    let mut answers: Vec<Option<Result<Message, StoreError>>> = jobs.iter().map(|_| None).collect();
    // Proposals that need nothing read first go in one statement per workspace.
    let quick: Vec<(usize, &Invocation, &Proposal)> =
        jobs.iter().enumerate().filter_map(|(n, (inv, command))| Some((n, inv, quick_proposal(command)?))).collect();
    let owners: Vec<MemberRecord> = quick.iter().map(|(_, inv, _)| unknown_owner(inv)).collect();
    let mut workspaces: Vec<WorkspaceId> = quick.iter().map(|(_, inv, _)| inv.workspace).collect();
    workspaces.sort_by_key(|ws| ws.0);
    workspaces.dedup();
    for ws in workspaces {
        let (places, items): (Vec<usize>, Vec<QuickProposal<'_>>) = quick
            .iter()
            .zip(&owners)
            .filter(|((_, inv, _), _)| inv.workspace == ws)
            .map(|(&(n, inv, proposal), owner)| (n, quick_item(inv, proposal, owner)))
            .unzip();
        let now = jobs[places[0]].0.now;
        let proposed = tx.propose_many(ws, &items, now).await.map_err(Abandoned::Store)?;
        for (n, experiment) in places.into_iter().zip(proposed) {
            answers[n] = experiment.map(|e| Ok(proposal_reply(&e, now.date_naive())));
        }
    }
    for ((inv, command), answer) in jobs.iter().zip(answers.iter_mut()) {
        if answer.is_some() {
            continue;
        }
        let before = tx.writes();
        *answer = Some(match run(&mut tx, defaults, inv, command.clone()).await {
            Ok(reply) => Ok(reply),
            Err(Failure::User(_)) if tx.writes() > before => return Err(Abandoned::RefusedAfterWriting),
            Err(Failure::User(reply)) => Ok(reply),
            Err(Failure::Store(error)) => return Err(Abandoned::Store(error)),
        });
    }
    let answers: Vec<Result<Message, StoreError>> = answers.into_iter().flatten().collect();
    match tx.commit().await {
        Ok(()) => Ok(answers),
        Err(error) => {
            tracing::error!(%error, commands = jobs.len(), "a shared commit failed");
            Ok(jobs.iter().map(|_| Err(StoreError::SharedCommit(error.to_string()))).collect())
        }
    }
}

/// A batch of nothing but quick proposals in one workspace (the common burst) is one statement, so
/// on Postgres it needs no transaction around it. `None` for any other batch.
async fn proposals_only(
    store: &Store,
    defaults: &Defaults,
    jobs: &[(Invocation, Command)],
) -> Result<Option<Vec<Result<Message, StoreError>>>, Abandoned> {
    let Some(((first, _), _)) = jobs.split_first() else { return Ok(Some(Vec::new())) };
    let quick: Option<Vec<&Proposal>> = jobs
        .iter()
        .map(|(inv, command)| quick_proposal(command).filter(|_| inv.workspace == first.workspace))
        .collect();
    let Some(quick) = quick else { return Ok(None) };
    let owners: Vec<MemberRecord> = jobs.iter().map(|(inv, _)| unknown_owner(inv)).collect();
    let items: Vec<QuickProposal<'_>> = jobs
        .iter()
        .zip(&quick)
        .zip(&owners)
        .map(|(((inv, _), proposal), owner)| quick_item(inv, proposal, owner))
        .collect();
    let mut tx = store.autocommit().await.map_err(Abandoned::Store)?;
    let proposed = tx.propose_many(first.workspace, &items, first.now).await.map_err(Abandoned::Store)?;
    tx.commit().await.map_err(Abandoned::Store)?;
    let mut answers = Vec::with_capacity(jobs.len());
    for ((inv, command), experiment) in jobs.iter().zip(proposed) {
        answers.push(match experiment {
            Some(experiment) => Ok(proposal_reply(&experiment, first.now.date_naive())),
            // A channel or member seen for the first time: the full path creates them.
            None => write_one(store, defaults, inv, command.clone()).await,
        });
    }
    Ok(Some(answers))
}

/// A proposal with no review date: nothing about it depends on anyone's time zone.
fn quick_proposal(command: &Command) -> Option<&Proposal> {
    match command {
        Command::Experiment(ExperimentCommand::Propose(proposal)) if proposal.review.is_none() => Some(proposal),
        _ => None,
    }
}

/// The whole proposal in one statement; `None` (nothing written) when its channel or member is
/// new, which the full path handles.
async fn propose_quickly(tx: &mut Tx, inv: &Invocation, proposal: &Proposal) -> Result<Option<Message>, StoreError> {
    let owner = unknown_owner(inv);
    let item = quick_item(inv, proposal, &owner);
    let member = (item.member, item.member_name);
    let Some(experiment) = tx.propose_by_platform_ids(inv.workspace, item.channel, member, &item.new, inv.now).await?
    else {
        return Ok(None);
    };
    // Without a review date no day is shown, so the day in any zone will do.
    Ok(Some(proposal_reply(&experiment, inv.now.date_naive())))
}

/// The proposer as far as the command knows them: the store fills in the rest from the platform ids.
fn unknown_owner(inv: &Invocation) -> MemberRecord {
    MemberRecord {
        id: MemberId(0),
        external_id: inv.member_id.clone(),
        display_name: inv.member_name.clone(),
        time_zone: None,
    }
}

fn quick_item<'a>(inv: &'a Invocation, proposal: &'a Proposal, owner: &'a MemberRecord) -> QuickProposal<'a> {
    QuickProposal {
        channel: &inv.channel_id,
        member: &inv.member_id,
        member_name: &inv.member_name,
        new: NewExperiment {
            channel: ChannelId(0),
            owner,
            title: &proposal.title,
            hypothesis: &proposal.hypothesis,
            metric: &proposal.metric,
            review_on: None,
        },
    }
}

fn proposal_reply(experiment: &ExperimentRecord, today: NaiveDate) -> Message {
    let text = format!("🧪 {} proposed {}: {}", experiment.owner_name, experiment.number, experiment.title);
    Message::channel(text).with_section(experiment_section(experiment, &[], today, true))
}

/// Runs one command inside `tx`, which the caller commits on success and rolls back otherwise. A
/// channel or member seen for the first time is created here.
async fn run(tx: &mut Tx, defaults: &Defaults, inv: &Invocation, command: Command) -> Result<Message, Failure> {
    let (channel, member) = tx.channel_and_member(inv.workspace, &inv.channel_id, &inv.member_id).await?;
    let channel = match channel {
        Some(channel) => channel,
        None => {
            let channel_defaults = ChannelDefaults {
                schedule: defaults.checkin.expression().to_string(),
                time_zone: defaults.time_zone.name().to_string(),
                escalate_after_days: defaults.escalate_after_days,
            };
            tx.ensure_channel(inv.workspace, &inv.channel_id, &inv.channel_name, &channel_defaults, inv.now).await?
        }
    };
    // A member seen before is written again only when their display name changed.
    let member = match member {
        Some(member) if member.display_name == inv.member_name || inv.member_name.is_empty() => member,
        _ => tx.ensure_member(inv.workspace, &inv.member_id, &inv.member_name, inv.now).await?,
    };
    let ctx = Context { ws: inv.workspace, channel, member, now: inv.now, defaults };
    run_command(tx, &ctx, command).await
}

async fn run_command(tx: &mut Tx, ctx: &Context<'_>, command: Command) -> Result<Message, Failure> {
    match command {
        Command::Help(topic) => Ok(help_reply(topic)),
        Command::Experiment(c) => run_experiment(tx, ctx, c).await,
        Command::Pledge(c) => run_pledge(tx, ctx, c).await,
        Command::Nudge(c) => run_nudge(tx, ctx, c).await,
    }
}

// ----- experiments ------------------------------------------------------------------------------

async fn run_experiment(tx: &mut Tx, ctx: &Context<'_>, command: ExperimentCommand) -> Result<Message, Failure> {
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

// ----- pledges ----------------------------------------------------------------------------------

async fn run_pledge(tx: &mut Tx, ctx: &Context<'_>, command: PledgeCommand) -> Result<Message, Failure> {
    match command {
        PledgeCommand::Make { text, due } => make_pledge(tx, ctx, &text, &due).await,
        PledgeCommand::Done { pledge, note } => keep_pledge(tx, ctx, pledge, note.as_deref()).await,
        PledgeCommand::Extend { pledge, due } => extend_pledge(tx, ctx, pledge, &due).await,
        PledgeCommand::Release { pledge, reason } => release_pledge(tx, ctx, pledge, &reason).await,
        PledgeCommand::List(filter) => list_pledges(tx, ctx, filter).await,
    }
}

async fn make_pledge(tx: &mut Tx, ctx: &Context<'_>, text: &str, due: &DueDate) -> Result<Message, Failure> {
    let today = ctx.today();
    let due_on = future_day(due, today, "due date")?;
    let open = tx.open_pledges_of(ctx.ws, ctx.member.id).await?;
    let limit = ctx.defaults.max_open_pledges;
    if !has_capacity(open.len(), limit) {
        let mut reply = Message::private(format!(
            "You already hold {} open pledges, the most this team keeps at once so each gets the attention it \
             deserves. Keep or release one first:",
            open.len()
        ));
        for pledge in &open {
            reply = reply.with_section(pledge_section(pledge, today, PledgeButtons::All));
        }
        return Err(Failure::User(reply));
    }
    let pledge = tx
        .insert_pledge(
            ctx.ws,
            &NewPledge {
                channel: ctx.channel.id,
                owner: ctx.member.id,
                text,
                due_on,
                experiment: None,
                reminders: ctx.reminders(),
            },
            ctx.now,
        )
        .await?;
    let data = serde_json::json!({ "due_on": due_on.to_string() });
    ctx.event(tx, EventKind::PledgeMade, Some(pledge.number.to_string()), data).await?;
    let text = format!(
        "🤝 {} pledged: {} (by {}, {})",
        ctx.member.display_name,
        pledge.text,
        day_label(due_on, today),
        pledge.number
    );
    Ok(Message::channel(text).with_section(pledge_section(&pledge, today, PledgeButtons::All)))
}

async fn own_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef) -> Result<PledgeRecord, Failure> {
    let Some(pledge) = tx.pledge(ctx.ws, id).await? else {
        return refuse(format!(
            "There is no {id} in this workspace. `/pledge list all` shows the channel's open pledges."
        ));
    };
    if pledge.owner_id != ctx.member.id {
        return refuse(format!("{id} is {}'s pledge; only they can keep or release it.", pledge.owner_name));
    }
    if !pledge.status.can_resolve() {
        return refuse(format!("{id} is already {}.", pledge.status.as_str()));
    }
    Ok(pledge)
}

async fn keep_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef, note: Option<&str>) -> Result<Message, Failure> {
    let pledge = own_pledge(tx, ctx, id).await?;
    if !tx.resolve_pledge(ctx.ws, pledge.id, PledgeStatus::Kept, note, ctx.now).await? {
        return refuse(format!("{id} changed while you typed; `/pledge list` shows where it stands."));
    }
    let late = days_overdue(pledge.due_on, ctx.today());
    ctx.event(tx, EventKind::PledgeKept, Some(id.to_string()), serde_json::json!({ "days_late": late })).await?;
    let when = match late {
        0 => "on time".to_string(),
        d => format!("{d} day{} late, and kept all the same", plural(d as usize)),
    };
    let mut text = format!("✅ {} kept {id}: {} ({when})", ctx.member.display_name, pledge.text);
    if let Some(note) = note {
        text.push_str(&format!(" — {note}"));
    }
    Ok(Message::channel(text))
}

async fn extend_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef, due: &DueDate) -> Result<Message, Failure> {
    let pledge = own_pledge(tx, ctx, id).await?;
    let today = ctx.today();
    let due_on = future_day(due, today, "new due date")?;
    if due_on == pledge.due_on {
        return refuse(format!("{id} is already due {}.", day_label(due_on, today)));
    }
    if !tx.extend_pledge(ctx.ws, &pledge, due_on, ctx.reminders(), ctx.now).await? {
        return refuse(format!("{id} changed while you typed; `/pledge list` shows where it stands."));
    }
    let data = serde_json::json!({ "from": pledge.due_on.to_string(), "to": due_on.to_string() });
    ctx.event(tx, EventKind::PledgeExtended, Some(id.to_string()), data).await?;
    let updated = PledgeRecord { due_on, status: PledgeStatus::Open, ..pledge };
    Ok(Message::private(format!(
        "📅 {id} is now due {}. Saying so early keeps everyone's plans honest.",
        day_label(due_on, today)
    ))
    .with_section(pledge_section(&updated, today, PledgeButtons::All)))
}

async fn release_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef, reason: &str) -> Result<Message, Failure> {
    let pledge = own_pledge(tx, ctx, id).await?;
    if !tx.resolve_pledge(ctx.ws, pledge.id, PledgeStatus::Released, Some(reason), ctx.now).await? {
        return refuse(format!("{id} changed while you typed; `/pledge list` shows where it stands."));
    }
    ctx.event(tx, EventKind::PledgeReleased, Some(id.to_string()), serde_json::json!({})).await?;
    Ok(Message::private(format!(
        "Released {id} ({}). Thanks for saying so: an honest release keeps the team's trust, and it is not a break.",
        pledge.text
    )))
}

async fn list_pledges(tx: &mut Tx, ctx: &Context<'_>, filter: PledgeFilter) -> Result<Message, Failure> {
    let today = ctx.today();
    let (pledges, whose) = match filter {
        PledgeFilter::Mine => (tx.open_pledges_of(ctx.ws, ctx.member.id).await?, "Your"),
        PledgeFilter::All => (tx.open_pledges_in_channel(ctx.ws, ctx.channel.id, LIST_LIMIT).await?, "This channel's"),
    };
    if pledges.is_empty() {
        let text = match filter {
            PledgeFilter::Mine => "You have no open pledges. Make one: `/pledge call five customers by fri`",
            PledgeFilter::All => "No open pledges in this channel. Make one: `/pledge call five customers by fri`",
        };
        return Ok(Message::private(text));
    }
    let mut reply = Message::private(format!("{whose} open pledges ({})", pledges.len()));
    for pledge in &pledges {
        reply = reply.with_section(pledge_section(
            pledge,
            today,
            if pledge.owner_id == ctx.member.id { PledgeButtons::All } else { PledgeButtons::None },
        ));
    }
    Ok(reply)
}

// ----- channel settings and digest --------------------------------------------------------------

async fn run_nudge(tx: &mut Tx, ctx: &Context<'_>, command: NudgeCommand) -> Result<Message, Failure> {
    let channel = &ctx.channel;
    match command {
        NudgeCommand::ShowRules if channel.rules.is_empty() => Ok(Message::private(
            "This channel has no rules yet. Agree the rules of the game early: `/nudge rules set <text>`",
        )),
        NudgeCommand::ShowRules => {
            Ok(Message::private("📜 The rules of the game in this channel").with_section(Section::body(&channel.rules)))
        }
        NudgeCommand::SetRules(rules) => {
            tx.set_rules(ctx.ws, channel.id, &rules).await?;
            ctx.event(tx, EventKind::RulesSet, None, serde_json::json!({})).await?;
            let text = format!("📜 {} set the rules of the game for this channel", ctx.member.display_name);
            Ok(Message::channel(text).with_section(Section::body(rules)))
        }
        NudgeCommand::ShowSchedule => Ok(Message::private(schedule_line(channel, ctx.now))),
        NudgeCommand::SetSchedule { schedule, time_zone } => {
            let zone = time_zone.unwrap_or(channel.time_zone);
            tx.set_schedule(channel, &schedule, zone, ctx.now).await?;
            let data = serde_json::json!({ "schedule": schedule.expression(), "time_zone": zone.name() });
            ctx.event(tx, EventKind::ScheduleSet, None, data).await?;
            let updated = ChannelRecord { schedule, time_zone: zone, ..channel.clone() };
            Ok(Message::channel(format!("🗓️ {}", schedule_line(&updated, ctx.now))))
        }
        NudgeCommand::Quiet(change) => set_quiet(tx, ctx, change).await,
        NudgeCommand::Pause { weeks } => pause(tx, ctx, weeks).await,
        NudgeCommand::Digest => digest(tx, ctx).await,
        NudgeCommand::Settings => Ok(settings(ctx)),
    }
}

fn schedule_line(channel: &ChannelRecord, now: DateTime<Utc>) -> String {
    let zone = channel.time_zone;
    let next = channel
        .schedule
        .next_after(now, zone)
        .map(|at| at.with_timezone(&zone).format("%a %-d %b %H:%M").to_string())
        .unwrap_or_else(|| "never".into());
    format!("Check-ins: {} ({}). Next: {next}.", channel.schedule.describe(), zone.name())
}

async fn set_quiet(tx: &mut Tx, ctx: &Context<'_>, change: QuietChange) -> Result<Message, Failure> {
    let today = ctx.channel_today();
    let quiet = match change {
        QuietChange::Clear => QuietDays::default(),
        QuietChange::Set { weekdays, holidays } => {
            if let Some(past) = holidays.iter().find(|d| **d < today) {
                return refuse(format!("{past} has already passed; quiet days are for today or later."));
            }
            let mut quiet = ctx.channel.quiet.clone();
            if let Some(weekdays) = weekdays {
                if weekdays.len() == 7 {
                    return refuse(
                        "Every day quiet would silence nudge; to stop it for a while use `/nudge pause <weeks>`.",
                    );
                }
                quiet.weekdays = weekdays;
            }
            // Past holidays no longer matter; dropping them keeps the list short.
            quiet.holidays.retain(|d| *d >= today);
            quiet.holidays.extend(holidays);
            let normalized = QuietDays::from_stored(&quiet.weekdays_to_stored(), &quiet.holidays_to_stored());
            if normalized.holidays.len() > 100 {
                return refuse("That would be more than 100 holidays; clear old ones with `/nudge quiet off` first.");
            }
            normalized
        }
    };
    tx.set_quiet_days(ctx.ws, ctx.channel.id, &quiet.weekdays_to_stored(), &quiet.holidays_to_stored()).await?;
    let data = serde_json::json!({ "weekdays": quiet.weekdays_to_stored(), "holidays": quiet.holidays_to_stored() });
    ctx.event(tx, EventKind::QuietDaysSet, None, data).await?;
    Ok(Message::channel(format!("🤫 {}", quiet_line(&quiet))))
}

fn quiet_line(quiet: &QuietDays) -> String {
    if quiet.weekdays.is_empty() && quiet.holidays.is_empty() {
        return "No quiet days: nudge posts on any day its schedule says.".into();
    }
    let mut parts = Vec::new();
    if !quiet.weekdays.is_empty() {
        let days: Vec<&str> = quiet.weekdays.iter().map(|d| weekday_name(*d)).collect();
        parts.push(format!("every {}", days.join(", ")));
    }
    if !quiet.holidays.is_empty() {
        let days: Vec<String> = quiet.holidays.iter().map(|d| d.to_string()).collect();
        parts.push(days.join(", "));
    }
    format!("Quiet days (no automated posts): {}.", parts.join("; "))
}

async fn pause(tx: &mut Tx, ctx: &Context<'_>, weeks: u32) -> Result<Message, Failure> {
    let until = (weeks > 0).then(|| ctx.channel_today() + Duration::weeks(weeks.into()));
    tx.set_paused_until(ctx.ws, ctx.channel.id, until).await?;
    let data = serde_json::json!({ "until": until.map(|d| d.to_string()) });
    ctx.event(tx, EventKind::PauseSet, None, data).await?;
    let text = match until {
        Some(day) => format!(
            "⏸️ {} paused nudge's automated posts here until {}. `/nudge pause 0` resumes them sooner.",
            ctx.member.display_name,
            day_label(day, ctx.channel_today())
        ),
        None => "▶️ Automated posts are back on in this channel.".into(),
    };
    Ok(Message::channel(text))
}

async fn digest(tx: &mut Tx, ctx: &Context<'_>) -> Result<Message, Failure> {
    // A year of events is enough to count the learning streak in weeks.
    let since = ctx.now - Duration::weeks(53);
    let events = tx.events_since(ctx.ws, ctx.channel.id, since).await?;
    let digest = Digest::compute(&events, ctx.now, ctx.channel.time_zone);
    Ok(build::digest(&digest, &ctx.channel.name))
}

fn settings(ctx: &Context<'_>) -> Message {
    let channel = &ctx.channel;
    let paused = match channel.paused_until {
        Some(day) if day > ctx.channel_today() => format!("until {}", day_label(day, ctx.channel_today())),
        _ => "no".into(),
    };
    let rules = if channel.rules.is_empty() { "none yet".to_string() } else { channel.rules.clone() };
    let section = Section::heading(format!("Settings for #{}", channel.name))
        .with_field("Check-ins", schedule_line(channel, ctx.now))
        .with_field("Quiet days", quiet_line(&channel.quiet))
        .with_field("Paused", paused)
        .with_field("Open pledges per person", ctx.defaults.max_open_pledges.to_string())
        .with_field(
            "Overdue pledges",
            format!("the owner hears after 1 day, the channel after {} days", channel.escalate_after_days),
        )
        .with_field("Rules", rules);
    Message::private("⚙️ nudge settings for this channel").with_section(section)
}

impl Context<'_> {
    /// Channel-wide dates (quiet days, pauses) follow the channel's zone, not the typist's.
    fn channel_today(&self) -> NaiveDate {
        self.now.with_timezone(&self.channel.time_zone).date_naive()
    }
}

// ----- small helpers ----------------------------------------------------------------------------

/// Resolves a typed date and refuses one in the past or absurdly far ahead.
fn future_day(due: &DueDate, today: NaiveDate, what: &str) -> Result<NaiveDate, Failure> {
    let day = due.resolve(today);
    if day < today {
        return refuse(format!("That {what} ({day}) has already passed; pick today or later."));
    }
    if day > today + Duration::days(366) {
        return refuse(format!("That {what} ({day}) is more than a year away; small steps work better."));
    }
    Ok(day)
}

/// "15 of 16+" when a list was cut, else the count.
fn count_label(shown: usize, fetched: usize) -> String {
    if fetched > shown { format!("The {shown} newest") } else { shown.to_string() }
}
