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
use super::{Command, ExperimentCommand, HelpTopic, NudgeCommand, PledgeCommand, PledgeFilter, Proposal};
use crate::config::Defaults;
use crate::domain::dates::DueDate;
use crate::domain::experiment;
use crate::domain::ids::{ChannelId, MemberId};
use crate::message::build::experiment_section;
use crate::message::{Message, Section};
use crate::store::{
    ChannelDefaults, ChannelRecord, EventKind, ExperimentRecord, MemberRecord, NewEvent, NewExperiment, QuickProposal,
    Reminders, Store, StoreError, Subject, Tx, WorkspaceId,
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
    /// Typed (or clicked) in a direct conversation with nudge rather than in a team channel. Such
    /// a conversation never becomes a channel: commands about an experiment or a pledge count in
    /// its own channel, and commands about a channel ask to be typed in one.
    pub direct: bool,
}

/// What to answer a channel command typed in a direct conversation.
const TEAM_CHANNEL_ONLY: &str = "That works in a team channel: type it where your team talks, and nudge keeps it there. \
     Here you can keep, extend or release your pledges, record readings, and ask for `/pledge list` or `/experiment learnings`.";

/// Why a command did not go through.
pub(super) enum Failure {
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

pub(super) fn refuse<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::User(Message::private(message)))
}

/// Everything a command runs against: its channel and member, resolved inside the transaction.
pub(super) struct Context<'a> {
    pub(super) ws: WorkspaceId,
    pub(super) channel: ChannelRecord,
    pub(super) member: MemberRecord,
    pub(super) now: DateTime<Utc>,
    pub(super) defaults: &'a Defaults,
}

impl Context<'_> {
    /// A pledge's reminders come in its owner's morning, and reach the channel after its grace.
    pub(super) fn reminders(&self) -> Reminders {
        Reminders { zone: self.zone(), escalate_after_days: self.channel.escalate_after_days }
    }

    /// Due dates are the owner's days when their time zone is known, else the channel's.
    pub(super) fn zone(&self) -> Tz {
        self.member.time_zone.unwrap_or(self.channel.time_zone)
    }

    pub(super) fn today(&self) -> NaiveDate {
        self.now.with_timezone(&self.zone()).date_naive()
    }

    pub(super) async fn event(
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

/// Typed text longer than this is echoed back with its refusal: retyping it would be a chore.
pub const ECHO_TYPED_AFTER_CHARS: usize = 80;
/// The echo comes in pieces that every platform shows whole, and never more than a few of them.
const ECHO_PIECE_CHARS: usize = 2000;
const ECHO_MAX_PIECES: usize = 10;

/// The reply to a command that did not parse: the problem, the usage line and an example. A long
/// command (`typed`, as the person would type it again) comes back with it, privately, so it can
/// be copied, fixed and sent instead of typed again.
pub fn usage_reply(error: &UsageError, typed: &str) -> Message {
    let reply = Message::private(error.to_string());
    let typed = typed.trim();
    if typed.chars().count() <= ECHO_TYPED_AFTER_CHARS {
        return reply;
    }
    let chars: Vec<char> = typed.chars().collect();
    let pieces: Vec<String> = chars.chunks(ECHO_PIECE_CHARS).map(|piece| piece.iter().collect()).collect();
    let count = pieces.len();
    // A fence keeps the text as typed; text that has fences of its own is shown as it is.
    let fenced = !typed.contains("```");
    let mut reply = reply;
    for (n, piece) in pieces.into_iter().take(ECHO_MAX_PIECES).enumerate() {
        let body = if fenced { format!("```{piece}```") } else { piece };
        let section = if n == 0 {
            Section::heading("What you typed, to copy and fix").with_body(body)
        } else {
            Section::body(body)
        };
        reply = reply.with_section(section);
    }
    if count > ECHO_MAX_PIECES {
        let shown = ECHO_MAX_PIECES * ECHO_PIECE_CHARS;
        reply = reply.with_section(Section::body(format!("(only the first {shown} characters are shown)")));
    }
    reply
}

/// The answer to a channel command (or form) used in a direct conversation: where to use it.
pub fn team_channel_only() -> Message {
    Message::private(TEAM_CHANNEL_ONLY)
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
            matches!(
                c,
                ExperimentCommand::List { .. } | ExperimentCommand::Show(_) | ExperimentCommand::Learnings { .. }
            )
        }
        Command::Pledge(c) => matches!(c, PledgeCommand::List(_)),
        Command::Nudge(c) => matches!(
            c,
            NudgeCommand::ShowRules
                | NudgeCommand::ShowSchedule
                | NudgeCommand::Digest
                | NudgeCommand::Settings
                | NudgeCommand::Dashboard
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
    let ctx = match resolve(&mut tx, defaults, inv, &command, false).await {
        Ok(Resolved::Ready(ctx)) => *ctx,
        Ok(Resolved::FirstSight) => {
            drop(tx);
            return write_one(store, defaults, inv, command).await;
        }
        Err(Failure::User(reply)) => return Ok(reply),
        Err(Failure::Store(error)) => return Err(error),
    };
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
    let Some(experiment) =
        tx.propose_by_platform_ids(inv.workspace, item.channel, item.member, &item.new, inv.now).await?
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

pub(super) fn proposal_reply(experiment: &ExperimentRecord, today: NaiveDate) -> Message {
    let text = format!("🧪 {} proposed {}: {}", experiment.owner_name, experiment.number, experiment.title);
    Message::channel(text).with_section(experiment_section(experiment, &[], today, true))
}

/// Runs one command inside `tx`, which the caller commits on success and rolls back otherwise. A
/// channel or member seen for the first time is created here.
async fn run(tx: &mut Tx, defaults: &Defaults, inv: &Invocation, command: Command) -> Result<Message, Failure> {
    let ctx = match resolve(tx, defaults, inv, &command, true).await? {
        Resolved::Ready(ctx) => *ctx,
        Resolved::FirstSight => return Err(Failure::Store(StoreError::Corrupt("a new member was not created".into()))),
    };
    run_command(tx, &ctx, command).await
}

/// What a command runs against, or that it needs its first-sight rows written first.
enum Resolved<'a> {
    Ready(Box<Context<'a>>),
    /// The member (or the channel typed in) is new; only a write may create them.
    FirstSight,
}

/// The experiment or pledge a command is about, if it is about one.
fn subject(command: &Command) -> Option<Subject> {
    match command {
        Command::Experiment(
            ExperimentCommand::Show(id)
            | ExperimentCommand::Start(id)
            | ExperimentCommand::Vote(id)
            | ExperimentCommand::Update { experiment: id, .. }
            | ExperimentCommand::Close { experiment: id, .. }
            // The review reminder's Extend review comes from a direct conversation.
            | ExperimentCommand::Edit { experiment: id, .. }
            | ExperimentCommand::Abandon { experiment: id, .. }
            | ExperimentCommand::Readings { experiment: id, .. },
        ) => Some(Subject::Experiment(*id)),
        Command::Pledge(
            PledgeCommand::Done { pledge: id, .. }
            | PledgeCommand::Extend { pledge: id, .. }
            | PledgeCommand::Release { pledge: id, .. },
        ) => Some(Subject::Pledge(*id)),
        _ => None,
    }
}

/// Whether a command needs no channel at all: it is about the person or the whole workspace.
fn needs_no_channel(command: &Command) -> bool {
    matches!(
        command,
        Command::Help(_)
            | Command::Pledge(PledgeCommand::List(PledgeFilter::Mine))
            | Command::Experiment(ExperimentCommand::Learnings { .. })
    )
}

/// Finds who typed the command and the channel it counts in: the channel of the experiment or
/// pledge it is about, else the channel it was typed in. With `create`, a member or channel seen
/// for the first time is created; a display name already known is kept (the platform's profile,
/// not the command, names people, so each has one name everywhere).
async fn resolve<'a>(
    tx: &mut Tx,
    defaults: &'a Defaults,
    inv: &Invocation,
    command: &Command,
    create: bool,
) -> Result<Resolved<'a>, Failure> {
    let (here, member) = tx.channel_and_member(inv.workspace, &inv.channel_id, &inv.member_id).await?;
    let member = match member {
        Some(member) => member,
        None if create => tx.ensure_member(inv.workspace, &inv.member_id, &inv.member_name, inv.now).await?,
        None => return Ok(Resolved::FirstSight),
    };
    let here = match (here, inv.direct) {
        (_, true) => None,
        (Some(channel), false) => Some(channel),
        (None, false) if create => {
            let channel_defaults = ChannelDefaults {
                schedule: defaults.checkin.expression().to_string(),
                time_zone: defaults.time_zone.name().to_string(),
                escalate_after_days: defaults.escalate_after_days,
                quiet_weekdays: defaults.quiet_days.weekdays_to_stored(),
            };
            Some(
                tx.ensure_channel(inv.workspace, &inv.channel_id, &inv.channel_name, &channel_defaults, inv.now)
                    .await?,
            )
        }
        (None, false) => return Ok(Resolved::FirstSight),
    };
    let own = match subject(command) {
        Some(subject) => tx.channel_of(inv.workspace, subject).await?,
        None => None,
    };
    let channel = match (own, here) {
        (Some(channel), _) | (None, Some(channel)) => channel,
        // An unknown experiment or pledge is refused by the command itself, in its own words.
        (None, None) if subject(command).is_some() || needs_no_channel(command) => unseen_channel(defaults, inv),
        (None, None) => return Err(Failure::User(Message::private(TEAM_CHANNEL_ONLY))),
    };
    Ok(Resolved::Ready(Box::new(Context { ws: inv.workspace, channel, member, now: inv.now, defaults })))
}

/// The channel a command sees when it counts in none (a direct conversation): the defaults, and no
/// rows (id 0 matches none).
fn unseen_channel(defaults: &Defaults, inv: &Invocation) -> ChannelRecord {
    ChannelRecord {
        id: ChannelId(0),
        workspace_id: inv.workspace,
        external_id: inv.channel_id.clone(),
        name: inv.channel_name.clone(),
        schedule: defaults.checkin.clone(),
        time_zone: defaults.time_zone,
        quiet: defaults.quiet_days.clone(),
        paused_until: None,
        rules: String::new(),
        escalate_after_days: defaults.escalate_after_days,
    }
}

async fn run_command(tx: &mut Tx, ctx: &Context<'_>, command: Command) -> Result<Message, Failure> {
    match command {
        Command::Help(topic) => Ok(help_reply(topic)),
        Command::Experiment(c) => super::experiments::run(tx, ctx, c).await,
        Command::Pledge(c) => super::pledges::run(tx, ctx, c).await,
        Command::Nudge(c) => super::channel::run(tx, ctx, c).await,
    }
}

// ----- small helpers ----------------------------------------------------------------------------

/// Resolves a typed date and refuses one in the past or absurdly far ahead. The refusal names the
/// form `field` the date came from, so a form shows it there and stays open.
pub(super) fn future_day(due: &DueDate, today: NaiveDate, what: &str, field: &str) -> Result<NaiveDate, Failure> {
    let day = due.resolve(today);
    let problem = if day < today {
        format!("That {what} ({day}) has already passed; pick today or later.")
    } else if day > today + Duration::days(366) {
        format!("That {what} ({day}) is more than a year away; small steps work better.")
    } else {
        return Ok(day);
    };
    Err(Failure::User(Message::private(problem).about_field(field)))
}
