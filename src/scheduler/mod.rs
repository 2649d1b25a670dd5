//! The scheduler: each channel's next firing per job (weekly check-in, digest, mid-week small wins,
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
use crate::store::{
    Backend, ChannelId, ChannelRecord, DueFiring, ExperimentRecord, MemberId, NewOccurrence, NewPost, OutboundId,
    PledgeId, PledgeRecord, Recipient, Store, StoreError, Tx, WorkspaceId,
};

#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// How check-ins and digests link to their channel's dashboard; none without a public URL.
    pub dashboard: Option<DashboardLinks>,
    /// The longest rest between ticks; a tick also comes as soon as the next firing is due.
    pub tick: Duration,
    /// Firings taken per transaction.
    pub page: i64,
    /// Transactions taking pages at once on Postgres (SQLite has one writer).
    pub workers: usize,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings { tick: Duration::from_secs(30), page: 200, workers: 4, dashboard: None }
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

/// What dashboard links are made with: this installation's link key and the public base URL.
#[derive(Clone)]
pub struct DashboardLinks {
    pub key: Arc<Vec<u8>>,
    pub base_url: String,
}

impl std::fmt::Debug for DashboardLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key signs links that open a team's data; it is never printed.
        f.debug_struct("DashboardLinks").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// One post a job owes: to the channel, or privately to one member.
pub(crate) enum Post {
    Channel(Message),
    Private { member: MemberId, message: Message },
}

/// A firing that failed is tried again after this long, so that it cannot hold up the others.
const RETRY_FAILED: chrono::Duration = chrono::Duration::minutes(5);

impl Scheduler {
    /// A check-in or digest with the "View dashboard" link, valid until after the next one.
    fn with_dashboard(&self, message: Message, channel: &ChannelRecord, now: DateTime<Utc>) -> Message {
        let Some(links) = &self.settings.dashboard else { return message };
        let grant = crate::web::links::Grant {
            workspace: channel.workspace_id,
            channel: channel.id,
            expires: now + crate::web::links::LIFETIME,
        };
        let url = format!("{}/dashboard/{}", links.base_url, crate::web::links::token(&links.key, grant));
        message.with_link("View dashboard", url)
    }

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
            // Review dates an earlier nudge planned nothing for, or dropped: told on the morning.
            let reviews = tx.reviews_without_firings(now.date_naive(), 500).await?;
            for (ws, channel, experiment, zone, day) in &reviews {
                let at = firings::local_time(*zone, *day, firings::REMINDER_HOUR).map(|at| at.max(now));
                tx.set_review_firing(*ws, *channel, *experiment, at).await?;
            }
            tx.commit().await?;
            if channels.len() < 500 && pledges.len() < 500 && reviews.len() < 500 {
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
        match self.fire(&mut tx, &due, now, plans).await {
            Ok(tick) => {
                tx.announce_queued_posts().await?;
                tx.commit().await?;
                return Ok(Some(tick));
            }
            Err(error) => {
                tracing::warn!(%error, firings = due.len(), "a page of firings failed; firing them one by one")
            }
        }
        drop(tx);
        let mut tick = Tick::default();
        for firing in due {
            let mut tx = self.store.begin().await?;
            match self.fire(&mut tx, std::slice::from_ref(&firing), now, plans).await {
                Ok(one) => {
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

    /// What a page of due firings does, in `tx`: each one's occurrence is decided by the rules,
    /// built from reads done for the whole page at once, claimed under its unique key (only what is
    /// ours is posted), and its row moved to its next firing.
    async fn fire(
        &self,
        tx: &mut Tx,
        due: &[DueFiring],
        now: DateTime<Utc>,
        plans: &Plans,
    ) -> Result<Tick, StoreError> {
        let wanted: Vec<(WorkspaceId, PledgeId)> =
            due.iter().filter_map(|f| Some((f.channel.workspace_id, f.pledge?))).collect();
        let pledges = tx.pledges_by_ids(&wanted).await?;
        let mut reviewed = HashMap::new();
        for firing in due {
            if let Some(id) = firing.experiment
                && let Some(experiment) = tx.experiment_by_id(firing.channel.workspace_id, id).await?
            {
                reviewed.insert(id, experiment);
            }
        }

        // 1. What each firing does now, and when it fires next.
        let mut planned = Vec::with_capacity(due.len());
        for firing in due {
            let channel = &firing.channel;
            if let Some(job) = ChannelJob::from_name(&firing.job) {
                let (occurs, next) = plans.get(job.schedule(&channel.schedule), channel.time_zone, firing.due_at, now);
                let occurs = match occurs {
                    Due::Fire(at) => Some((Occurs::Fire, at)),
                    Due::Skip(at) => Some((Occurs::Skip, at)),
                    Due::Nothing => None,
                };
                planned.push(Planned { firing, work: Work::Channel(job), occurs, next });
                continue;
            }
            if let Some(id) = firing.experiment {
                planned.push(plan_review(firing, reviewed.get(&id), now));
                continue;
            }
            let Some(pledge) = firing.pledge.and_then(|id| pledges.get(&id)).filter(|p| p.status == PledgeStatus::Open)
            else {
                // Kept, released, told to the channel already, or not a job we know: nothing more to do.
                planned.push(Planned { firing, work: Work::Done, occurs: None, next: None });
                continue;
            };
            // Reminders come in the owner's morning when we know their zone, else the channel's.
            let zone = pledge.owner_time_zone.unwrap_or(channel.time_zone);
            let escalate = channel.escalate_after_days;
            let next = firings::next_pledge_stage(pledge.due_on, zone, escalate, now).map(|(_, at)| at);
            let (work, occurs) = match firings::evaluate_pledge(pledge.due_on, zone, escalate, firing.due_at, now) {
                Due::Fire((stage, at)) => (Work::Pledge(pledge, stage), Some((Occurs::Fire, at))),
                Due::Skip((stage, at)) => (Work::Pledge(pledge, stage), Some((Occurs::Skip, at))),
                Due::Nothing => (Work::Done, None),
            };
            planned.push(Planned { firing, work, occurs, next });
        }

        // 2. Build what fires and is not quiet, from reads for the whole page.
        let firing_now = |job: ChannelJob| {
            let mut channels: Vec<(WorkspaceId, ChannelId)> = planned
                .iter()
                .filter(|p| matches!(p.work, Work::Channel(j) if j == job) && p.posts_now())
                .map(|p| (p.firing.channel.workspace_id, p.firing.channel.id))
                .collect();
            channels.dedup();
            channels
        };
        let checkins = tx.checkin_reads(&firing_now(ChannelJob::CheckIn)).await?;
        let since = |job: ChannelJob, back: chrono::Duration| {
            planned
                .iter()
                .filter(|p| matches!(p.work, Work::Channel(j) if j == job))
                .filter_map(|p| p.occurs)
                .map(|(_, at)| at - back)
                .min()
        };
        let digests = match since(ChannelJob::Digest, chrono::Duration::weeks(53)) {
            Some(since) => tx.events_of_channels(&firing_now(ChannelJob::Digest), since).await?,
            None => Default::default(),
        };
        let recent = match since(ChannelJob::Celebrations, jobs::WINS_LOOK_BACK) {
            Some(since) => tx.events_of_channels(&firing_now(ChannelJob::Celebrations), since).await?,
            None => Default::default(),
        };
        let mut built: Vec<Option<Post>> = Vec::with_capacity(planned.len());
        // What each post told of wins: the channel's mark moves, and dead target hits are folded,
        // only for posts that are claimed and queued.
        let mut told_wins: Vec<Option<(DateTime<Utc>, Vec<OutboundId>)>> = Vec::with_capacity(planned.len());
        // A win is told in one post of a page, even if two of a channel's posts fire together.
        let mut wins_built: Vec<ChannelId> = Vec::new();
        for plan in &planned {
            let channel = &plan.firing.channel;
            let wins = match (plan.work, plan.occurs) {
                (Work::Channel(ChannelJob::Digest | ChannelJob::Celebrations), Some((Occurs::Fire, at)))
                    if plan.posts_now() && !wins_built.contains(&channel.id) =>
                {
                    wins_built.push(channel.id);
                    let events = match plan.work {
                        Work::Channel(ChannelJob::Digest) => digests.get(&channel.id),
                        _ => recent.get(&channel.id),
                    };
                    let mark = tx.celebrated_through(channel.workspace_id, channel.id).await?;
                    let dead = tx.dead_target_hits(channel.workspace_id, channel.id).await?;
                    let events = events.map_or(&[][..], Vec::as_slice);
                    Some((at, jobs::wins(tx, channel, mark, at, events, &dead).await?))
                }
                _ => None,
            };
            let empty = jobs::Wins::default();
            let news = wins.as_ref().map_or(&empty, |(_, wins)| wins);
            let post = match (plan.work, plan.occurs) {
                (_, None) | (_, Some((Occurs::Skip, _))) | (Work::Done, _) => None,
                _ if !plan.posts_now() => None,
                (Work::Channel(ChannelJob::CheckIn), Some((_, at))) => {
                    Some(Post::Channel(self.with_dashboard(jobs::checkin(channel, at, &checkins), channel, now)))
                }
                (Work::Channel(ChannelJob::Digest), Some((_, at))) => {
                    let events = digests.get(&channel.id).map_or(&[][..], Vec::as_slice);
                    jobs::digest(channel, at, events, news).map(|m| Post::Channel(self.with_dashboard(m, channel, now)))
                }
                (Work::Channel(ChannelJob::Celebrations), Some(_)) => {
                    jobs::celebrations(channel, news).map(Post::Channel)
                }
                (Work::Pledge(pledge, stage), Some((_, at))) => Some(jobs::pledge_reminder(channel, pledge, stage, at)),
                (Work::Review(experiment), Some((_, at))) => {
                    let values: Vec<f64> =
                        tx.readings(channel.workspace_id, experiment.id).await?.into_iter().map(|r| r.value).collect();
                    Some(jobs::review_reminder(channel, experiment, &values, at))
                }
            };
            told_wins.push(wins.filter(|_| post.is_some()).map(|(at, wins)| (at, wins.folded)));
            built.push(post);
        }

        // 3. Claim each occurrence with what it came to; only what is ours is posted.
        let jobs: Vec<String> = planned.iter().map(Planned::job_name).collect();
        let mut claims = Vec::new();
        let mut tick = Tick::default();
        for ((plan, post), job) in planned.iter().zip(&built).zip(&jobs) {
            let Some((occurs, at)) = plan.occurs else { continue };
            let channel = &plan.firing.channel;
            let (outcome, reason) = match occurs {
                Occurs::Skip => ("skipped", Some("more than six hours late")),
                Occurs::Fire => match quiet_reason(channel, at) {
                    Some(quiet) => ("suppressed", Some(quiet)),
                    None if post.is_none() => ("suppressed", Some("nothing to say")),
                    None => ("fired", None),
                },
            };
            claims
                .push((channel.workspace_id, NewOccurrence { channel: channel.id, job, due_at: at, outcome, reason }));
        }
        let ours = tx.record_occurrences(&claims, now).await?;
        let mut posts = Vec::new();
        // The pledges the channel is told of now: broken from now on, with no reminder left.
        let mut told = Vec::new();
        let mut claimed = ours.into_iter();
        for (n, (plan, post)) in planned.iter().zip(&built).enumerate() {
            let Some((occurs, at)) = plan.occurs else { continue };
            if !claimed.next().unwrap_or(false) {
                continue;
            }
            let (ws, id) = (plan.firing.channel.workspace_id, plan.firing.channel.id);
            match post {
                _ if occurs == Occurs::Skip => tick.skipped += 1,
                Some(post) if plan.posts_now() => {
                    let (recipient, message) = match post {
                        Post::Channel(message) => (Recipient::Channel(id), message),
                        Post::Private { member, message } => (Recipient::Member(*member), message),
                    };
                    let key = format!("{}:{}:{}:0", jobs[n], id.0, at.timestamp());
                    posts.push(NewPost { workspace: ws, channel: id, recipient, idempotency_key: key, message });
                    if let Some((through, folded)) = &told_wins[n] {
                        tx.mark_celebrated(ws, id, *through).await?;
                        tx.fold_dead_posts(ws, folded).await?;
                    }
                    if let Work::Pledge(pledge, PledgeStage::Broken) = plan.work {
                        jobs::mark_broken(tx, &plan.firing.channel, pledge, at, now).await?;
                        told.push(n);
                    }
                    tick.fired += 1;
                }
                _ => tick.suppressed += 1,
            }
        }
        tx.enqueue_messages(&posts, now).await?;

        // 4. Each row moves to its job's next firing.
        let moved: Vec<(ChannelId, String, Option<DateTime<Utc>>)> = planned
            .iter()
            .enumerate()
            .map(|(n, plan)| {
                (plan.firing.channel.id, plan.firing.job.clone(), plan.next.filter(|_| !told.contains(&n)))
            })
            .collect();
        tx.reschedule_firings(&moved).await?;
        Ok(tick)
    }
}

/// What a due firing is about.
#[derive(Clone, Copy)]
enum Work<'a> {
    Channel(ChannelJob),
    Pledge(&'a PledgeRecord, PledgeStage),
    /// An experiment's review date has come: its owner hears privately.
    Review(&'a ExperimentRecord),
    /// Nothing to fire (the pledge was resolved, or a setting moved the firing later).
    Done,
}

/// Whether an occurrence fires or is recorded as skipped (too late).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Occurs {
    Fire,
    Skip,
}

/// One due firing, decided.
struct Planned<'a> {
    firing: &'a DueFiring,
    work: Work<'a>,
    occurs: Option<(Occurs, DateTime<Utc>)>,
    next: Option<DateTime<Utc>>,
}

impl Planned<'_> {
    /// It fires now on a day that is not quiet: worth building its posts.
    fn posts_now(&self) -> bool {
        matches!(self.occurs, Some((Occurs::Fire, at)) if quiet_reason(&self.firing.channel, at).is_none())
    }

    /// The occurrence's job name: "checkin", "pledge_due:P-4"…
    fn job_name(&self) -> String {
        match self.work {
            Work::Channel(job) => job.name().to_string(),
            Work::Pledge(pledge, stage) => stage.job(&pledge.number.to_string()),
            Work::Review(experiment) => format!("review:{}", experiment.number),
            Work::Done => self.firing.job.clone(),
        }
    }
}

/// A review reminder that came due: it fires once, however late (the review date still matters),
/// for an experiment that is not closed and still has a review date. On a quiet day or in a pause
/// it is suppressed and tried again the next morning, so the owner hears on the first day nudge may
/// speak.
fn plan_review<'a>(firing: &'a DueFiring, experiment: Option<&'a ExperimentRecord>, now: DateTime<Utc>) -> Planned<'a> {
    let Some(experiment) = experiment.filter(|e| !e.status.is_closed() && e.review_on.is_some()) else {
        return Planned { firing, work: Work::Done, occurs: None, next: None };
    };
    let channel = &firing.channel;
    let at = firing.due_at;
    let next = quiet_reason(channel, at).and_then(|_| {
        let tomorrow = now.with_timezone(&channel.time_zone).date_naive().succ_opt()?;
        firings::local_time(channel.time_zone, tomorrow, firings::REMINDER_HOUR)
    });
    Planned { firing, work: Work::Review(experiment), occurs: Some((Occurs::Fire, at)), next }
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
    firings::quiet_reason(&channel.quiet, channel.paused_until, day)
}
