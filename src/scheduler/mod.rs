//! The scheduler: each channel's next firing per job (weekly check-in, digest, daily small wins,
//! each open pledge's next reminder) is a row in an indexed table. A tick takes only the rows that
//! are due (`FOR UPDATE SKIP LOCKED` on Postgres, so replicas and concurrent workers share the
//! work), claims each occurrence under its unique key (channel, job, instant), builds its posts
//! into the outbox in the same transaction, and moves the row to the job's next firing. An idle
//! tick is one index lookup and writes nothing, however many channels there are.
//!
//! When each job fires, and what a late one does, is `domain::firings`; what each one posts is
//! `jobs`. Quiet days, holidays and pauses suppress posts, recorded as suppressed with the reason.

mod jobs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::domain::firings::{self, ChannelJob, Due, PledgeStage};
use crate::domain::pledge::PledgeStatus;
use crate::domain::schedule::Schedule;
use crate::message::Message;
use crate::store::{Backend, ChannelRecord, DueFiring, MemberId, NewOccurrence, Recipient, Store, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// The longest rest between ticks; a tick also comes as soon as the next firing is due.
    pub tick: Duration,
    /// Firings taken per transaction.
    pub page: i64,
    /// Transactions taking pages at once on Postgres (SQLite has one writer).
    pub workers: usize,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings { tick: Duration::from_secs(30), page: 200, workers: 4 }
    }
}

/// What one tick did, across all channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    pub fired: usize,
    pub suppressed: usize,
    pub skipped: usize,
}

impl Tick {
    fn add(&mut self, other: Tick) {
        self.fired += other.fired;
        self.suppressed += other.suppressed;
        self.skipped += other.skipped;
    }
}

#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    clock: SharedClock,
    settings: SchedulerSettings,
}

/// One post a job owes: to the channel, or privately to one member.
pub(crate) enum Post {
    Channel(Message),
    Private { member: MemberId, message: Message },
}

/// What claiming an occurrence found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// Ours to build and post.
    Ours,
    /// Ours, but a quiet day, a holiday or a pause: recorded as suppressed.
    Quiet,
    /// Another replica, or an earlier tick, had it already.
    Taken,
}

/// A firing that failed is tried again after this long, so that it cannot hold up the others.
const RETRY_FAILED: chrono::Duration = chrono::Duration::minutes(5);

impl Scheduler {
    pub fn new(store: Store, clock: SharedClock, settings: SchedulerSettings) -> Scheduler {
        Scheduler { store, clock, settings }
    }

    /// Ticks until `shutdown` is cancelled; a tick in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Err(error) = self.plan_unplanned().await {
            tracing::error!(%error, "could not plan the channels and pledges that had no next firing");
        }
        while !shutdown.is_cancelled() {
            if let Err(error) = self.tick().await {
                tracing::error!(%error, "a scheduler tick failed");
            }
            let rest = self.rest().await;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(rest) => {}
            }
        }
    }

    /// Until the next firing is due, but never longer than a tick: another replica or a command may
    /// plan something sooner.
    async fn rest(&self) -> Duration {
        let next = async { self.store.read_once().await?.next_firing_at().await }.await;
        match next {
            Ok(Some(at)) => (at - self.clock.now()).to_std().unwrap_or_default().min(self.settings.tick),
            _ => self.settings.tick,
        }
    }

    /// Plans the jobs of channels and pledges that have no next firing (made before nudge kept
    /// them in a table).
    pub async fn plan_unplanned(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        loop {
            let mut tx = self.store.begin().await?;
            let channels = tx.channels_without_firings(500).await?;
            for channel in &channels {
                tx.plan_channel(channel, now).await?;
            }
            let pledges = tx.open_pledges_without_firings(500).await?;
            for (ws, pledge, channel_zone, escalate_after_days) in &pledges {
                let reminders = crate::store::Reminders {
                    zone: pledge.owner_time_zone.unwrap_or(*channel_zone),
                    escalate_after_days: *escalate_after_days,
                };
                let next = reminders.next(pledge.due_on, now).unwrap_or(now);
                tx.set_pledge_firing(*ws, pledge.channel_id, pledge.id, Some(next)).await?;
            }
            tx.commit().await?;
            if channels.len() < 500 && pledges.len() < 500 {
                return Ok(());
            }
        }
    }

    /// Fires whatever is due now. When nothing is, this is one index lookup and no transaction.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let now = self.clock.now();
        let next = self.store.read_once().await?.next_firing_at().await?;
        if next.is_none_or(|at| at > now) {
            return Ok(Tick::default());
        }
        let workers = match self.store.backend() {
            Backend::Postgres => self.settings.workers.max(1),
            Backend::Sqlite => 1,
        };
        let plans = Arc::new(Plans::default());
        let mut running = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (this, plans) = (self.clone(), plans.clone());
            running.spawn(async move {
                let mut tick = Tick::default();
                while let Some(page) = this.page(now, &plans).await? {
                    tick.add(page);
                }
                Ok::<Tick, StoreError>(tick)
            });
        }
        let mut tick = Tick::default();
        let mut failure = None;
        while let Some(done) = running.join_next().await {
            match done {
                Ok(Ok(worker)) => tick.add(worker),
                Ok(Err(error)) => failure = Some(error),
                Err(panic) => tracing::error!(error = %panic, "a scheduler worker panicked"),
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(tick),
        }
    }

    /// Takes one page of due firings and fires them in one transaction; `None` when none was left.
    /// A page that fails is taken apart, so that one bad firing cannot hold up the others.
    async fn page(&self, now: DateTime<Utc>, plans: &Plans) -> Result<Option<Tick>, StoreError> {
        let mut tx = self.store.begin().await?;
        let due = tx.claim_due_firings(now, self.settings.page).await?;
        if due.is_empty() {
            return Ok(None);
        }
        let mut tick = Tick::default();
        let mut failed = false;
        for firing in &due {
            if let Err(error) = self.fire(&mut tx, firing, now, plans, &mut tick).await {
                tracing::warn!(%error, "a page of firings failed; firing them one by one");
                failed = true;
                break;
            }
        }
        if !failed {
            tx.announce_queued_posts().await?;
            tx.commit().await?;
            return Ok(Some(tick));
        }
        drop(tx);
        let mut tick = Tick::default();
        for firing in &due {
            let mut tx = self.store.begin().await?;
            let mut one = Tick::default();
            match self.fire(&mut tx, firing, now, plans, &mut one).await {
                Ok(()) => {
                    tx.announce_queued_posts().await?;
                    tx.commit().await?;
                    tick.add(one);
                }
                Err(error) => {
                    drop(tx);
                    let channel = &firing.channel;
                    tracing::error!(
                        %error,
                        workspace = channel.workspace_id.0,
                        channel = %channel.external_id,
                        job = %firing.job,
                        "a firing failed; trying it again in five minutes"
                    );
                    let mut tx = self.store.begin().await?;
                    tx.reschedule_firing(channel.id, &firing.job, Some(now + RETRY_FAILED)).await?;
                    tx.commit().await?;
                }
            }
        }
        Ok(Some(tick))
    }

    /// What one due firing does, and when it fires next.
    async fn fire(
        &self,
        tx: &mut Tx,
        firing: &DueFiring,
        now: DateTime<Utc>,
        plans: &Plans,
        tick: &mut Tick,
    ) -> Result<(), StoreError> {
        let channel = &firing.channel;
        if let Some(job) = ChannelJob::from_name(&firing.job) {
            let schedule = job.schedule(&channel.schedule);
            let (due, next) = plans.get(schedule, channel.time_zone, firing.due_at, now);
            match due {
                Due::Fire(at) => {
                    if self.claim(tx, channel, job.name(), at, now, tick).await? == Claim::Ours {
                        let posts = jobs::build(tx, channel, job, at).await?;
                        self.queue(tx, channel, job.name(), at, posts, now, tick).await?;
                    }
                }
                Due::Skip(at) => self.skip(tx, channel, job.name(), at, now, tick).await?,
                Due::Nothing => {}
            }
            return tx.reschedule_firing(channel.id, &firing.job, next).await;
        }
        let pledge = match firing.pledge {
            Some(id) => tx.pledge_by_id(channel.workspace_id, id).await?,
            None => None,
        };
        let Some(pledge) = pledge.filter(|p| p.status == PledgeStatus::Open) else {
            // Kept, released, told to the channel already, or not a job we know: nothing more to do.
            return tx.reschedule_firing(channel.id, &firing.job, None).await;
        };
        // Reminders come in the owner's morning when we know their zone, else the channel's.
        let zone = pledge.owner_time_zone.unwrap_or(channel.time_zone);
        let escalate = channel.escalate_after_days;
        let mut broken = false;
        match firings::evaluate_pledge(pledge.due_on, zone, escalate, firing.due_at, now) {
            Due::Fire((stage, at)) => {
                let job = stage.job(&pledge.number.to_string());
                if self.claim(tx, channel, &job, at, now, tick).await? == Claim::Ours {
                    let posts = jobs::pledge_stage(tx, channel, &pledge, stage, at, now).await?;
                    broken = stage == PledgeStage::Broken && !posts.is_empty();
                    self.queue(tx, channel, &job, at, posts, now, tick).await?;
                }
            }
            Due::Skip((stage, at)) => {
                self.skip(tx, channel, &stage.job(&pledge.number.to_string()), at, now, tick).await?
            }
            Due::Nothing => {}
        }
        let next = if broken {
            None
        } else {
            firings::next_pledge_stage(pledge.due_on, zone, escalate, now).map(|(_, at)| at)
        };
        tx.reschedule_firing(channel.id, &firing.job, next).await
    }

    /// Claims one occurrence under its unique key; a quiet one is recorded as suppressed. The claim
    /// comes before any building, so replicas and later ticks pay one conflicting insert.
    async fn claim(
        &self,
        tx: &mut Tx,
        channel: &ChannelRecord,
        job: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<Claim, StoreError> {
        let quiet = quiet_reason(channel, due);
        let outcome = if quiet.is_some() { "suppressed" } else { "fired" };
        let occurrence = NewOccurrence { channel: channel.id, job, due_at: due, outcome, reason: quiet };
        if !tx.record_occurrence(channel.workspace_id, &occurrence, now).await? {
            return Ok(Claim::Taken);
        }
        if quiet.is_some() {
            tick.suppressed += 1;
            return Ok(Claim::Quiet);
        }
        Ok(Claim::Ours)
    }

    /// Queues a claimed occurrence's posts in its transaction; with none, it is recorded as
    /// suppressed because there was nothing worth saying.
    #[allow(clippy::too_many_arguments)]
    async fn queue(
        &self,
        tx: &mut Tx,
        channel: &ChannelRecord,
        job: &str,
        due: DateTime<Utc>,
        posts: Vec<Post>,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<(), StoreError> {
        let (ws, id) = (channel.workspace_id, channel.id);
        if posts.is_empty() {
            tick.suppressed += 1;
            return tx.set_occurrence_outcome(id, job, due, "suppressed", "nothing to say").await;
        }
        let key = format!("{job}:{}:{}", id.0, due.timestamp());
        for (n, post) in posts.into_iter().enumerate() {
            let (recipient, message) = match post {
                Post::Channel(message) => (Recipient::Channel(id), message),
                Post::Private { member, message } => (Recipient::Member(member), message),
            };
            tx.enqueue_message(ws, id, recipient, &format!("{key}:{n}"), &message, now).await?;
        }
        tick.fired += 1;
        Ok(())
    }

    async fn skip(
        &self,
        tx: &mut Tx,
        channel: &ChannelRecord,
        job: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<(), StoreError> {
        let occurrence = NewOccurrence {
            channel: channel.id,
            job,
            due_at: due,
            outcome: "skipped",
            reason: Some("more than six hours late"),
        };
        if tx.record_occurrence(channel.workspace_id, &occurrence, now).await? {
            tick.skipped += 1;
        }
        Ok(())
    }
}

/// Each (schedule, zone, due instant) evaluated once per tick: channels mostly share the default
/// schedule, and evaluating cron is a tick's main CPU cost.
#[derive(Default)]
struct Plans {
    known: Mutex<HashMap<PlanKey, Plan>>,
}

/// A schedule's expression, the zone it is read in, and the instant its job came due.
type PlanKey = (String, Tz, DateTime<Utc>);

/// What a due channel job does now, and when it fires next.
type Plan = (Due<DateTime<Utc>>, Option<DateTime<Utc>>);

impl Plans {
    /// What a channel job due since `due_at` does now, and when it fires next.
    fn get(&self, schedule: &Schedule, zone: Tz, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Plan {
        let key = (schedule.expression().to_string(), zone, due_at);
        if let Some(known) = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return *known;
        }
        let plan = (firings::evaluate(schedule, zone, due_at, now), schedule.next_after(now, zone));
        self.known.lock().unwrap_or_else(|e| e.into_inner()).insert(key, plan);
        plan
    }
}

/// Why a channel gets no automated post at `at`: a quiet weekday, a holiday, or a pause.
fn quiet_reason(channel: &ChannelRecord, at: DateTime<Utc>) -> Option<&'static str> {
    let day = at.with_timezone(&channel.time_zone).date_naive();
    if channel.paused_until.is_some_and(|until| day < until) {
        return Some("paused");
    }
    if channel.quiet.is_quiet(day) {
        return Some(if channel.quiet.holidays.contains(&day) { "holiday" } else { "quiet day" });
    }
    None
}
