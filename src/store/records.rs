//! What the store hands out and takes in, in domain types. Raw rows stay private to the store.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{StoreError, from_millis};
pub use crate::domain::event::{EventKind, EventRecord, NewEvent};
use crate::domain::experiment::ExperimentStatus;
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::metric::Metric;
use crate::domain::pledge::PledgeStatus;
use crate::domain::schedule::{QuietDays, Schedule, parse_time_zone};
use crate::message::Message;

pub use crate::domain::ids::{ChannelId, ExperimentId, MemberId, OutboundId, PledgeId, WorkspaceId};

/// Who a post goes to: a channel, or one member privately. Each platform turns it into its own
/// address at delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recipient {
    Channel(ChannelId),
    Member(MemberId),
}

impl Recipient {
    /// The stored key, also the pacing key: "channel:12", "member:7".
    pub fn key(self) -> String {
        match self {
            Recipient::Channel(channel) => format!("channel:{}", channel.0),
            Recipient::Member(member) => format!("member:{}", member.0),
        }
    }
}

/// A post the bot owes, as the sender sees it.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub id: OutboundId,
    pub workspace_id: WorkspaceId,
    /// The platform the workspace is on; the sender hands the post to its delivery.
    pub platform: String,
    /// The channel the post belongs to (a private reminder belongs to its pledge's channel).
    pub channel_id: Option<ChannelId>,
    pub recipient: Recipient,
    /// The recipient's id on the platform (its channel or user id), looked up when claimed.
    pub address: String,
    pub idempotency_key: String,
    pub message: Message,
    /// Attempts so far, this one included once claimed.
    pub attempts: u32,
    /// When the attempts counted so far began: a post is given up only once this is long enough ago.
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// When the latest attempt began (for a post left "sending", the attempt whose outcome is unknown).
    pub claimed_at: Option<DateTime<Utc>>,
    /// When an earlier attempt whose answer was lost began: the post is looked up on the platform
    /// around then before it is posted again.
    pub unknown_outcome_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Since when the post's channel has refused nudge (not invited), when it has.
    pub channel_unreachable_since: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub(super) struct OutboxRow {
    id: i64,
    workspace_id: i64,
    platform: String,
    channel_id: Option<i64>,
    member_id: Option<i64>,
    address: String,
    idempotency_key: String,
    message: String,
    attempts: i32,
    first_attempt_at: Option<i64>,
    claimed_at: Option<i64>,
    unknown_outcome_at: Option<i64>,
    created_at: i64,
    channel_unreachable_since: Option<i64>,
}

impl OutboxRow {
    pub(super) fn into_record(self) -> Result<OutboundMessage, StoreError> {
        let message = serde_json::from_str(&self.message)
            .map_err(|e| StoreError::Corrupt(format!("outbound message {} is not a message: {e}", self.id)))?;
        let recipient = match (self.member_id, self.channel_id) {
            (Some(member), _) => Recipient::Member(MemberId(member)),
            (None, Some(channel)) => Recipient::Channel(ChannelId(channel)),
            (None, None) => return Err(StoreError::Corrupt(format!("outbound message {} has no recipient", self.id))),
        };
        Ok(OutboundMessage {
            id: OutboundId(self.id),
            workspace_id: WorkspaceId(self.workspace_id),
            platform: self.platform,
            channel_id: self.channel_id.map(ChannelId),
            recipient,
            address: self.address,
            idempotency_key: self.idempotency_key,
            message,
            attempts: self.attempts.max(0) as u32,
            first_attempt_at: self.first_attempt_at.map(from_millis),
            claimed_at: self.claimed_at.map(from_millis),
            unknown_outcome_at: self.unknown_outcome_at.map(from_millis),
            created_at: from_millis(self.created_at),
            channel_unreachable_since: self.channel_unreachable_since.map(from_millis),
        })
    }
}

/// The outbox at a glance, for operators.
#[derive(Debug, Clone, Default)]
pub struct OutboxReport {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub dead: i64,
    pub dead_posts: Vec<DeadPost>,
}

#[derive(Debug, Clone)]
pub struct DeadPost {
    pub id: OutboundId,
    pub workspace_id: WorkspaceId,
    pub platform: String,
    /// The recipient's id on the platform.
    pub address: String,
    pub attempts: u32,
    pub last_error: String,
}

/// Which dead posts an operator puts back in the queue (`nudge outbox retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadPosts {
    One(OutboundId),
    All,
}

/// An installed workspace and its bot token, sealed (see `crypto`).
#[derive(Clone)]
pub struct Installation {
    pub workspace_id: WorkspaceId,
    pub bot_token_sealed: String,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation").field("workspace_id", &self.workspace_id).finish_non_exhaustive()
    }
}

/// What a command is about, when it is about one experiment or one pledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Experiment(ExperimentRef),
    Pledge(PledgeRef),
}

/// What a channel starts with when nudge first hears from it.
#[derive(Debug, Clone)]
pub struct ChannelDefaults {
    pub schedule: String,
    pub time_zone: String,
    pub escalate_after_days: u32,
    /// Stored weekdays, "sat,sun".
    pub quiet_weekdays: String,
}

#[derive(Debug, Clone)]
pub struct ChannelRecord {
    pub id: ChannelId,
    pub workspace_id: WorkspaceId,
    pub external_id: String,
    pub name: String,
    pub schedule: Schedule,
    pub time_zone: Tz,
    pub quiet: QuietDays,
    /// Automated posts resume on this day.
    pub paused_until: Option<NaiveDate>,
    pub rules: String,
    pub escalate_after_days: u32,
}

#[derive(sqlx::FromRow)]
pub(super) struct ChannelRow {
    id: i64,
    external_id: String,
    name: String,
    schedule: String,
    time_zone: String,
    quiet_weekdays: String,
    holidays: String,
    paused_until: Option<String>,
    rules: String,
    escalate_after_days: i32,
}

impl ChannelRow {
    pub(super) fn into_record(self, workspace_id: WorkspaceId) -> Result<ChannelRecord, StoreError> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("channel {} has a bad {what}: {e}", self.external_id))
        };
        Ok(ChannelRecord {
            id: ChannelId(self.id),
            workspace_id,
            schedule: Schedule::parse(&self.schedule).map_err(|e| corrupt("schedule", &e))?,
            time_zone: parse_time_zone(&self.time_zone).map_err(|e| corrupt("time zone", &e))?,
            quiet: QuietDays::from_stored(&self.quiet_weekdays, &self.holidays),
            paused_until: self.paused_until.as_deref().map(parse_day).transpose().map_err(|e| corrupt("pause", &e))?,
            escalate_after_days: self.escalate_after_days.max(0) as u32,
            external_id: self.external_id,
            name: self.name,
            rules: self.rules,
        })
    }
}

/// One row of `channel_and_member`: either side may be missing.
#[derive(sqlx::FromRow)]
pub(super) struct ContextRow {
    channel_id: Option<i64>,
    channel_external_id: Option<String>,
    channel_name: Option<String>,
    schedule: Option<String>,
    time_zone: Option<String>,
    quiet_weekdays: Option<String>,
    holidays: Option<String>,
    paused_until: Option<String>,
    rules: Option<String>,
    escalate_after_days: Option<i32>,
    member_id: Option<i64>,
    member_external_id: Option<String>,
    display_name: Option<String>,
    member_time_zone: Option<String>,
}

impl ContextRow {
    pub(super) fn into_records(
        self,
        ws: WorkspaceId,
    ) -> Result<(Option<ChannelRecord>, Option<MemberRecord>), StoreError> {
        let channel = match (self.channel_id, self.channel_external_id) {
            (Some(id), Some(external_id)) => Some(
                ChannelRow {
                    id,
                    external_id,
                    name: self.channel_name.unwrap_or_default(),
                    schedule: self.schedule.unwrap_or_default(),
                    time_zone: self.time_zone.unwrap_or_default(),
                    quiet_weekdays: self.quiet_weekdays.unwrap_or_default(),
                    holidays: self.holidays.unwrap_or_default(),
                    paused_until: self.paused_until,
                    rules: self.rules.unwrap_or_default(),
                    escalate_after_days: self.escalate_after_days.unwrap_or_default(),
                }
                .into_record(ws)?,
            ),
            _ => None,
        };
        let member = match (self.member_id, self.member_external_id) {
            (Some(id), Some(external_id)) => Some(
                MemberRow {
                    id,
                    external_id,
                    display_name: self.display_name.unwrap_or_default(),
                    time_zone: self.member_time_zone,
                }
                .into_record(),
            ),
            _ => None,
        };
        Ok((channel, member))
    }
}

/// A channel as the scheduler sees it: its settings and when nudge first saw it.
#[derive(Debug, Clone)]
pub struct ScheduledChannel {
    pub channel: ChannelRecord,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct ScheduledChannelRow {
    workspace_id: i64,
    created_at: i64,
    #[sqlx(flatten)]
    channel: ChannelRow,
}

impl ScheduledChannelRow {
    pub(super) fn into_record(self) -> Result<ScheduledChannel, StoreError> {
        let channel = self.channel.into_record(WorkspaceId(self.workspace_id))?;
        Ok(ScheduledChannel { channel, created_at: from_millis(self.created_at) })
    }
}

/// A job whose next firing has come due, with its channel as it is now.
#[derive(Debug, Clone)]
pub struct DueFiring {
    pub channel: ChannelRecord,
    /// "checkin", "digest", "celebrations", "pledge:<row id>" or "review:<row id>".
    pub job: String,
    pub pledge: Option<PledgeId>,
    /// The experiment of a review reminder ("review:<row id>").
    pub experiment: Option<ExperimentId>,
    pub due_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct DueFiringRow {
    job: String,
    pledge_id: Option<i64>,
    experiment_id: Option<i64>,
    due_at: i64,
    workspace_id: i64,
    #[sqlx(flatten)]
    channel: ChannelRow,
}

impl DueFiringRow {
    pub(super) fn into_record(self) -> Result<DueFiring, StoreError> {
        Ok(DueFiring {
            channel: self.channel.into_record(WorkspaceId(self.workspace_id))?,
            job: self.job,
            pledge: self.pledge_id.map(PledgeId),
            experiment: self.experiment_id.map(ExperimentId),
            due_at: from_millis(self.due_at),
        })
    }
}

/// A firing to claim: the unique key (channel, job, instant) and what happened.
#[derive(Debug, Clone, Copy)]
pub struct NewOccurrence<'a> {
    pub channel: ChannelId,
    pub job: &'a str,
    pub due_at: DateTime<Utc>,
    /// fired | suppressed | skipped
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
}

/// One firing of one job for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceRecord {
    pub job: String,
    pub due_at: DateTime<Utc>,
    /// fired | suppressed | skipped
    pub outcome: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub id: MemberId,
    pub external_id: String,
    pub display_name: String,
    pub time_zone: Option<Tz>,
}

#[derive(sqlx::FromRow)]
pub(super) struct MemberRow {
    id: i64,
    external_id: String,
    display_name: String,
    time_zone: Option<String>,
}

impl MemberRow {
    pub(super) fn into_record(self) -> MemberRecord {
        MemberRecord {
            id: MemberId(self.id),
            external_id: self.external_id,
            display_name: self.display_name,
            // A member's zone comes from the platform; an unknown one falls back to the channel's.
            time_zone: self.time_zone.as_deref().and_then(|tz| parse_time_zone(tz).ok()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExperimentRecord {
    pub id: ExperimentId,
    pub number: ExperimentRef,
    pub channel_id: ChannelId,
    pub owner_id: MemberId,
    pub owner_external_id: String,
    pub owner_name: String,
    pub title: String,
    pub hypothesis: String,
    pub metric: Metric,
    pub status: ExperimentStatus,
    pub review_on: Option<NaiveDate>,
    pub learning: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub votes: i64,
    /// The most recent reading, if any.
    pub latest: Option<f64>,
}

#[derive(sqlx::FromRow)]
pub(super) struct ExperimentRow {
    id: i64,
    number: i64,
    channel_id: i64,
    owner_id: i64,
    owner_external_id: String,
    owner_name: String,
    title: String,
    hypothesis: String,
    metric_name: String,
    metric_unit: Option<String>,
    baseline: f64,
    target: f64,
    status: String,
    review_on: Option<String>,
    learning: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    closed_at: Option<i64>,
    votes: i64,
    latest: Option<f64>,
}

impl ExperimentRow {
    pub(super) fn into_record(self) -> Result<ExperimentRecord, StoreError> {
        let number = ExperimentRef(self.number);
        let status = ExperimentStatus::from_stored(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("{number} has status {:?}", self.status)))?;
        let metric = Metric::new(self.metric_name, self.metric_unit, self.baseline, self.target)
            .map_err(|e| StoreError::Corrupt(format!("{number} has a bad metric: {e}")))?;
        Ok(ExperimentRecord {
            id: ExperimentId(self.id),
            number,
            channel_id: ChannelId(self.channel_id),
            owner_id: MemberId(self.owner_id),
            owner_external_id: self.owner_external_id,
            owner_name: self.owner_name,
            title: self.title,
            hypothesis: self.hypothesis,
            metric,
            status,
            review_on: self.review_on.as_deref().map(parse_day).transpose()?,
            learning: self.learning,
            created_at: from_millis(self.created_at),
            started_at: self.started_at.map(from_millis),
            closed_at: self.closed_at.map(from_millis),
            votes: self.votes,
            latest: self.latest,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadingRecord {
    /// Its number, shown by `/experiment readings`.
    pub id: i64,
    pub value: f64,
    pub note: Option<String>,
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it (none when it came through the API), and their name.
    pub recorded_by: Option<MemberId>,
    pub recorder_name: Option<String>,
}

/// One change to an experiment (`/experiment edit`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Edit<'a> {
    Title(&'a str),
    Hypothesis(&'a str),
    MetricName(&'a str),
    Unit(Option<&'a str>),
    Target(f64),
    Review(Option<NaiveDate>),
}

#[derive(Debug, Clone)]
pub struct PledgeRecord {
    pub id: PledgeId,
    pub number: PledgeRef,
    pub channel_id: ChannelId,
    pub owner_id: MemberId,
    pub owner_external_id: String,
    pub owner_name: String,
    /// The owner's own time zone, when the platform told us.
    pub owner_time_zone: Option<Tz>,
    pub text: String,
    pub due_on: NaiveDate,
    pub experiment_id: Option<ExperimentId>,
    pub status: PledgeStatus,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub(super) struct PledgeRow {
    id: i64,
    number: i64,
    channel_id: i64,
    owner_id: i64,
    owner_external_id: String,
    owner_name: String,
    owner_time_zone: Option<String>,
    text: String,
    due_on: String,
    experiment_id: Option<i64>,
    status: String,
    note: Option<String>,
    created_at: i64,
    resolved_at: Option<i64>,
}

impl PledgeRow {
    pub(super) fn into_record(self) -> Result<PledgeRecord, StoreError> {
        let number = PledgeRef(self.number);
        Ok(PledgeRecord {
            id: PledgeId(self.id),
            number,
            channel_id: ChannelId(self.channel_id),
            owner_id: MemberId(self.owner_id),
            owner_external_id: self.owner_external_id,
            owner_name: self.owner_name,
            owner_time_zone: self.owner_time_zone.as_deref().and_then(|tz| parse_time_zone(tz).ok()),
            text: self.text,
            due_on: parse_day(&self.due_on)?,
            experiment_id: self.experiment_id.map(ExperimentId),
            status: PledgeStatus::from_stored(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("{number} has status {:?}", self.status)))?,
            note: self.note,
            created_at: from_millis(self.created_at),
            resolved_at: self.resolved_at.map(from_millis),
        })
    }
}

pub struct NewExperiment<'a> {
    pub channel: ChannelId,
    pub owner: &'a MemberRecord,
    pub title: &'a str,
    pub hypothesis: &'a str,
    pub metric: &'a Metric,
    pub review_on: Option<NaiveDate>,
}

/// A proposal by the platform ids of its channel and member, for [`Tx::propose_many`](super::Tx::propose_many).
pub struct QuickProposal<'a> {
    pub channel: &'a str,
    pub member: &'a str,
    /// Channel and owner in it are filled in from the platform ids.
    pub new: NewExperiment<'a>,
}

pub struct NewPledge<'a> {
    pub channel: ChannelId,
    pub owner: MemberId,
    pub text: &'a str,
    pub due_on: NaiveDate,
    pub experiment: Option<ExperimentId>,
    pub reminders: Reminders,
}

/// What a pledge's reminders follow: the owner's time zone (the channel's until the owner's is
/// known) and the days overdue before the channel hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reminders {
    pub zone: Tz,
    pub escalate_after_days: u32,
}

impl Reminders {
    /// When a pledge due on `due_on` next needs a reminder after `after`.
    pub fn next(&self, due_on: NaiveDate, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        crate::domain::firings::next_pledge_stage(due_on, self.zone, self.escalate_after_days, after).map(|(_, at)| at)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    pub experiments: i64,
    pub readings: i64,
    pub pledges: i64,
    pub votes: i64,
    pub events: i64,
}

pub(super) fn parse_day(text: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| StoreError::Corrupt(format!("day {text:?}: {e}")))
}
