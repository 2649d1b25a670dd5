//! Execution: applies a parsed [`Command`] to the store in one transaction and says what happened
//! as a neutral [`Reply`]. A command that fails for a reason the user can fix (unknown id, wrong
//! status, no capacity) is rolled back whole and answered privately with what to do instead.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::digest::Digest;
use super::grammar::{UsageError, help_text};
use super::reply::{ActionKind, ActionStyle, MetricRow, Reply, Section};
use super::{
    Command, ExperimentCommand, ExperimentFilter, HelpTopic, NudgeCommand, PledgeCommand, PledgeFilter, Proposal,
    QuietChange,
};
use crate::config::Defaults;
use crate::domain::dates::DueDate;
use crate::domain::experiment::{self, ExperimentStatus, Outcome};
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::metric::{Win, format_value, sparkline};
use crate::domain::pledge::{PledgeStatus, days_overdue, has_capacity};
use crate::domain::schedule::{QuietDays, weekday_name};
use crate::store::{
    ChannelDefaults, ChannelRecord, EventKind, ExperimentRecord, MemberRecord, NewEvent, NewExperiment, NewPledge,
    PledgeRecord, Store, StoreError, Tx, WorkspaceId,
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
    User(Reply),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

impl From<experiment::TransitionError> for Failure {
    fn from(error: experiment::TransitionError) -> Self {
        Failure::User(Reply::private(error.to_string()))
    }
}

fn refuse<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::User(Reply::private(message)))
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
pub fn usage_reply(error: &UsageError) -> Reply {
    Reply::private(error.to_string())
}

/// The answer to a help command; it needs no workspace, channel or database. The list goes in a
/// section and the headline stays short, because platforms repeat the headline as the fallback.
pub fn help_reply(topic: HelpTopic) -> Reply {
    let headline = match topic {
        HelpTopic::All => "What nudge can do",
        HelpTopic::Experiment => "Experiments with nudge",
        HelpTopic::Pledge => "Pledges with nudge",
    };
    Reply::private(headline).with_section(Section::body(help_text(topic)))
}

/// Runs one command in a transaction of its own. Help needs no database; everything else is
/// committed only when the command succeeds.
pub async fn execute(
    store: &Store,
    defaults: &Defaults,
    inv: &Invocation,
    command: Command,
) -> Result<Reply, StoreError> {
    if let Command::Help(topic) = command {
        return Ok(help_reply(topic));
    }
    let mut tx = store.begin().await?;
    match run(&mut tx, defaults, inv, command).await {
        Ok(reply) => {
            tx.commit().await?;
            Ok(reply)
        }
        // Dropping the transaction rolls back everything, including first-sight channel/member rows.
        Err(Failure::User(reply)) => Ok(reply),
        Err(Failure::Store(error)) => Err(error),
    }
}

/// Runs several commands in one transaction, each under its own savepoint: a command that fails is
/// rolled back alone (it changes nothing), and the rest share one commit. Answers come back in the
/// order of `jobs`. If the shared transaction itself breaks before its commit, nothing of it was
/// kept, so each command is run again on its own; if the commit fails, every command fails.
pub async fn execute_batch(
    store: &Store,
    defaults: &Defaults,
    jobs: Vec<(Invocation, Command)>,
) -> Vec<Result<Reply, StoreError>> {
    match try_batch(store, defaults, &jobs).await {
        Ok(Ok(answers)) => answers,
        Ok(Err(commit_error)) => {
            tracing::error!(error = %commit_error, commands = jobs.len(), "a shared commit failed");
            jobs.iter().map(|_| Err(StoreError::SharedCommit(commit_error.to_string()))).collect()
        }
        Err(error) => {
            tracing::warn!(%error, commands = jobs.len(), "a shared transaction broke; running its commands one by one");
            let mut answers = Vec::with_capacity(jobs.len());
            for (inv, command) in jobs {
                answers.push(execute(store, defaults, &inv, command).await);
            }
            answers
        }
    }
}

/// The outer error means the batch was abandoned before its commit (safe to run again); the inner
/// one that the commit itself failed (its outcome unknown, so not safe to run again).
async fn try_batch(
    store: &Store,
    defaults: &Defaults,
    jobs: &[(Invocation, Command)],
) -> Result<Result<Vec<Result<Reply, StoreError>>, StoreError>, StoreError> {
    let mut tx = store.begin().await?;
    let mut answers = Vec::with_capacity(jobs.len());
    for (inv, command) in jobs {
        if let Command::Help(topic) = command {
            answers.push(Ok(help_reply(*topic)));
            continue;
        }
        tx.savepoint().await?;
        match run(&mut tx, defaults, inv, command.clone()).await {
            Ok(reply) => {
                tx.release_savepoint().await?;
                answers.push(Ok(reply));
            }
            Err(Failure::User(reply)) => {
                tx.rollback_to_savepoint().await?;
                answers.push(Ok(reply));
            }
            Err(Failure::Store(error)) => {
                tx.rollback_to_savepoint().await?;
                answers.push(Err(error));
            }
        }
    }
    Ok(tx.commit().await.map(|()| answers))
}

/// Runs one command inside `tx`, which the caller commits on success and rolls back otherwise.
async fn run(tx: &mut Tx, defaults: &Defaults, inv: &Invocation, command: Command) -> Result<Reply, Failure> {
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
    match command {
        Command::Help(topic) => Ok(help_reply(topic)),
        Command::Experiment(c) => run_experiment(tx, &ctx, c).await,
        Command::Pledge(c) => run_pledge(tx, &ctx, c).await,
        Command::Nudge(c) => run_nudge(tx, &ctx, c).await,
    }
}

// ----- experiments ------------------------------------------------------------------------------

async fn run_experiment(tx: &mut Tx, ctx: &Context<'_>, command: ExperimentCommand) -> Result<Reply, Failure> {
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

async fn propose(tx: &mut Tx, ctx: &Context<'_>, proposal: Proposal) -> Result<Reply, Failure> {
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
    let experiment = tx.insert_experiment(ctx.ws, &new, ctx.now).await?;
    ctx.event(tx, EventKind::ExperimentProposed, Some(experiment.number.to_string()), serde_json::json!({})).await?;
    let text = format!("🧪 {} proposed {}: {}", ctx.member.display_name, experiment.number, experiment.title);
    Ok(Reply::channel(text).with_section(experiment_section(&experiment, &[], ctx.today(), true)))
}

async fn list_experiments(tx: &mut Tx, ctx: &Context<'_>, filter: ExperimentFilter) -> Result<Reply, Failure> {
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
        return Ok(Reply::private(format!(
            "{what} in this channel yet. Propose one: `/experiment propose <title> | <hypothesis> | <metric> <baseline> -> <target>`"
        )));
    }
    let shown = experiments.len().min(LIST_LIMIT as usize);
    let mut text =
        format!("{} experiment{} in #{}", count_label(shown, experiments.len()), plural(shown), ctx.channel.name);
    if !label.is_empty() {
        text = format!("{text} ({label})");
    }
    let mut reply = Reply::private(text);
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

async fn show_experiment(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef) -> Result<Reply, Failure> {
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
    Ok(Reply::private(format!("{} · {}", experiment.number, experiment.title)).with_section(section))
}

async fn start_experiment(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef) -> Result<Reply, Failure> {
    let mut experiment = find_experiment(tx, ctx, id).await?;
    let running = experiment::start(id, experiment.status)?;
    if !tx.transition_experiment(ctx.ws, experiment.id, experiment.status, running, None, ctx.now).await? {
        return refuse(format!("{id} changed while you typed; have another look with `/experiment show {id}`."));
    }
    experiment.status = running;
    ctx.event(tx, EventKind::ExperimentStarted, Some(id.to_string()), serde_json::json!({})).await?;
    let text =
        format!("🚀 {id} is running: {}. Record readings with `/experiment update {id} <value>`.", experiment.title);
    Ok(Reply::channel(text).with_section(experiment_section(&experiment, &[], ctx.today(), true)))
}

async fn record_reading(
    tx: &mut Tx,
    ctx: &Context<'_>,
    id: ExperimentRef,
    value: f64,
    note: Option<&str>,
) -> Result<Reply, Failure> {
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
        let announcement = Reply::channel(format!(
            "🎯 {id} {} hit its target: {} reached {} (target {}).",
            experiment.title,
            experiment.metric.name,
            format_value(value, unit),
            format_value(experiment.metric.target, unit)
        ));
        let key = format!("target_hit:{}:{id}", ctx.ws.0);
        let recipient = ctx.channel.external_id.clone();
        tx.enqueue_message(ctx.ws, Some(ctx.channel.id), &recipient, &key, &announcement, ctx.now).await?;
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
    Ok(Reply::private(text).with_section(experiment_section(&experiment, &values, ctx.today(), false)))
}

async fn close_experiment(
    tx: &mut Tx,
    ctx: &Context<'_>,
    id: ExperimentRef,
    outcome: Outcome,
    learning: &str,
) -> Result<Reply, Failure> {
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
    Ok(Reply::channel(text).with_section(section))
}

async fn vote(tx: &mut Tx, ctx: &Context<'_>, id: ExperimentRef) -> Result<Reply, Failure> {
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
    Ok(Reply::private(format!(
        "👍 Voted for {id} ({}); it has {votes} vote{} now.",
        experiment.title,
        plural(votes as usize)
    )))
}

async fn learnings(tx: &mut Tx, ctx: &Context<'_>, words: Option<&str>) -> Result<Reply, Failure> {
    let closed = tx.learnings(ctx.ws, words, LIST_LIMIT).await?;
    if closed.is_empty() {
        let text = match words {
            Some(w) => format!("No learnings mention \"{w}\" yet."),
            None => "No learnings yet. Close an experiment with what you learned: `/experiment close E-3 lost <what we learned>`".into(),
        };
        return Ok(Reply::private(text));
    }
    let mut reply = Reply::private(format!("📚 {} learning{}", closed.len(), plural(closed.len())));
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

/// One experiment as a section: heading, metric row, status fields and the buttons that fit its status.
fn experiment_section(experiment: &ExperimentRecord, values: &[f64], today: NaiveDate, detailed: bool) -> Section {
    let id = experiment.number;
    let mut section =
        Section::heading(format!("{id} · {}", experiment.title)).with_metric(metric_row(experiment, values));
    section = section.with_field("Status", experiment.status.as_str()).with_field("Owner", &experiment.owner_name);
    if let Some(review) = experiment.review_on.filter(|_| !experiment.status.is_closed()) {
        let days = (review - today).num_days();
        let when = match days {
            d if d < 0 => format!("{} (overdue by {} day{})", day_label(review, today), -d, plural((-d) as usize)),
            0 => "today".to_string(),
            d => format!("{} ({d} day{} left)", day_label(review, today), plural(d as usize)),
        };
        section = section.with_field("Review", when);
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

fn metric_row(experiment: &ExperimentRecord, values: &[f64]) -> MetricRow {
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

// ----- pledges ----------------------------------------------------------------------------------

async fn run_pledge(tx: &mut Tx, ctx: &Context<'_>, command: PledgeCommand) -> Result<Reply, Failure> {
    match command {
        PledgeCommand::Make { text, due } => make_pledge(tx, ctx, &text, &due).await,
        PledgeCommand::Done { pledge, note } => keep_pledge(tx, ctx, pledge, note.as_deref()).await,
        PledgeCommand::Extend { pledge, due } => extend_pledge(tx, ctx, pledge, &due).await,
        PledgeCommand::Release { pledge, reason } => release_pledge(tx, ctx, pledge, &reason).await,
        PledgeCommand::List(filter) => list_pledges(tx, ctx, filter).await,
    }
}

async fn make_pledge(tx: &mut Tx, ctx: &Context<'_>, text: &str, due: &DueDate) -> Result<Reply, Failure> {
    let today = ctx.today();
    let due_on = future_day(due, today, "due date")?;
    let open = tx.open_pledges_of(ctx.ws, ctx.member.id).await?;
    let limit = ctx.defaults.max_open_pledges;
    if !has_capacity(open.len(), limit) {
        let mut reply = Reply::private(format!(
            "You already hold {} open pledges, the most this team keeps at once so each gets the attention it \
             deserves. Keep or release one first:",
            open.len()
        ));
        for pledge in &open {
            reply = reply.with_section(pledge_section(pledge, today, true));
        }
        return Err(Failure::User(reply));
    }
    let pledge = tx
        .insert_pledge(
            ctx.ws,
            &NewPledge { channel: ctx.channel.id, owner: ctx.member.id, text, due_on, experiment: None },
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
    Ok(Reply::channel(text).with_section(pledge_section(&pledge, today, true)))
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

async fn keep_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef, note: Option<&str>) -> Result<Reply, Failure> {
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
    Ok(Reply::channel(text))
}

async fn extend_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef, due: &DueDate) -> Result<Reply, Failure> {
    let pledge = own_pledge(tx, ctx, id).await?;
    let today = ctx.today();
    let due_on = future_day(due, today, "new due date")?;
    if due_on == pledge.due_on {
        return refuse(format!("{id} is already due {}.", day_label(due_on, today)));
    }
    if !tx.extend_pledge(ctx.ws, pledge.id, due_on).await? {
        return refuse(format!("{id} changed while you typed; `/pledge list` shows where it stands."));
    }
    let data = serde_json::json!({ "from": pledge.due_on.to_string(), "to": due_on.to_string() });
    ctx.event(tx, EventKind::PledgeExtended, Some(id.to_string()), data).await?;
    let updated = PledgeRecord { due_on, status: PledgeStatus::Open, ..pledge };
    Ok(Reply::private(format!(
        "📅 {id} is now due {}. Saying so early keeps everyone's plans honest.",
        day_label(due_on, today)
    ))
    .with_section(pledge_section(&updated, today, true)))
}

async fn release_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef, reason: &str) -> Result<Reply, Failure> {
    let pledge = own_pledge(tx, ctx, id).await?;
    if !tx.resolve_pledge(ctx.ws, pledge.id, PledgeStatus::Released, Some(reason), ctx.now).await? {
        return refuse(format!("{id} changed while you typed; `/pledge list` shows where it stands."));
    }
    ctx.event(tx, EventKind::PledgeReleased, Some(id.to_string()), serde_json::json!({})).await?;
    Ok(Reply::private(format!(
        "Released {id} ({}). Thanks for saying so: an honest release keeps the team's trust, and it is not a break.",
        pledge.text
    )))
}

async fn list_pledges(tx: &mut Tx, ctx: &Context<'_>, filter: PledgeFilter) -> Result<Reply, Failure> {
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
        return Ok(Reply::private(text));
    }
    let mut reply = Reply::private(format!("{whose} open pledges ({})", pledges.len()));
    for pledge in &pledges {
        reply = reply.with_section(pledge_section(pledge, today, pledge.owner_id == ctx.member.id));
    }
    Ok(reply)
}

fn pledge_section(pledge: &PledgeRecord, today: NaiveDate, own: bool) -> Section {
    let id = pledge.number;
    let overdue = days_overdue(pledge.due_on, today);
    let due = match overdue {
        0 if pledge.due_on == today => "today".to_string(),
        0 => day_label(pledge.due_on, today),
        d => format!("{} (overdue by {d} day{})", day_label(pledge.due_on, today), plural(d as usize)),
    };
    let mut section = Section::heading(format!("{id} · {}", pledge.text))
        .with_field("Owner", &pledge.owner_name)
        .with_field("Due", due);
    if own {
        section = section
            .with_action("Done", ActionKind::PledgeDone(id), ActionStyle::Primary)
            .with_action("Extend", ActionKind::PledgeExtend(id), ActionStyle::Default)
            .with_action("Release", ActionKind::PledgeRelease(id), ActionStyle::Danger);
    }
    section
}

// ----- channel settings and digest --------------------------------------------------------------

async fn run_nudge(tx: &mut Tx, ctx: &Context<'_>, command: NudgeCommand) -> Result<Reply, Failure> {
    let channel = &ctx.channel;
    match command {
        NudgeCommand::ShowRules if channel.rules.is_empty() => Ok(Reply::private(
            "This channel has no rules yet. Agree the rules of the game early: `/nudge rules set <text>`",
        )),
        NudgeCommand::ShowRules => {
            Ok(Reply::private("📜 The rules of the game in this channel").with_section(Section::body(&channel.rules)))
        }
        NudgeCommand::SetRules(rules) => {
            tx.set_rules(ctx.ws, channel.id, &rules).await?;
            ctx.event(tx, EventKind::RulesSet, None, serde_json::json!({})).await?;
            let text = format!("📜 {} set the rules of the game for this channel", ctx.member.display_name);
            Ok(Reply::channel(text).with_section(Section::body(rules)))
        }
        NudgeCommand::ShowSchedule => Ok(Reply::private(schedule_line(channel, ctx.now))),
        NudgeCommand::SetSchedule { schedule, time_zone } => {
            let zone = time_zone.unwrap_or(channel.time_zone);
            tx.set_schedule(ctx.ws, channel.id, schedule.expression(), zone.name()).await?;
            let data = serde_json::json!({ "schedule": schedule.expression(), "time_zone": zone.name() });
            ctx.event(tx, EventKind::ScheduleSet, None, data).await?;
            let updated = ChannelRecord { schedule, time_zone: zone, ..channel.clone() };
            Ok(Reply::channel(format!("🗓️ {}", schedule_line(&updated, ctx.now))))
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

async fn set_quiet(tx: &mut Tx, ctx: &Context<'_>, change: QuietChange) -> Result<Reply, Failure> {
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
    Ok(Reply::channel(format!("🤫 {}", quiet_line(&quiet))))
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

async fn pause(tx: &mut Tx, ctx: &Context<'_>, weeks: u32) -> Result<Reply, Failure> {
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
    Ok(Reply::channel(text))
}

async fn digest(tx: &mut Tx, ctx: &Context<'_>) -> Result<Reply, Failure> {
    // A year of events is enough to count the learning streak in weeks.
    let since = ctx.now - Duration::weeks(53);
    let events = tx.events_since(ctx.ws, ctx.channel.id, since).await?;
    let digest = Digest::compute(&events, ctx.now, ctx.channel.time_zone);
    Ok(digest.reply(&ctx.channel.name))
}

fn settings(ctx: &Context<'_>) -> Reply {
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
    Reply::private("⚙️ nudge settings for this channel").with_section(section)
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

/// "Fri 27 Nov", with the year when it is not this year's.
pub fn day_label(day: NaiveDate, today: NaiveDate) -> String {
    if day.year() == today.year() {
        day.format("%a %-d %b").to_string()
    } else {
        day.format("%a %-d %b %Y").to_string()
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// "15 of 16+" when a list was cut, else the count.
fn count_label(shown: usize, fetched: usize) -> String {
    if fetched > shown { format!("The {shown} newest") } else { shown.to_string() }
}
