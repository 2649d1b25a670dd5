//! The scheduler: a tick loop that finds each channel's due occurrences (weekly check-in, digest,
//! daily celebrations, pledge reminders), claims each one with a unique key
//! (channel, job, instant) and builds its posts into the outbox in the same transaction, so any
//! number of replicas on one Postgres fire each occurrence exactly once.
//!
//! An occurrence less than six hours late fires once; an older one is recorded as skipped. Quiet
//! days, holidays and pauses suppress posts, recorded as suppressed with the reason.

mod jobs;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::commands::Reply;
use crate::domain::schedule::Schedule;
use crate::store::{ChannelId, ChannelRecord, NewOccurrence, PledgeRecord, ScheduledChannel, Store, StoreError};

#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    pub tick: Duration,
    /// An occurrence later than this is recorded as skipped instead of fired.
    pub late_limit: chrono::Duration,
    /// The weekly digest, in each channel's time zone.
    pub digest: Schedule,
    /// The daily batch of small wins, in each channel's time zone.
    pub celebrations: Schedule,
    /// Local hour of pledge reminders.
    pub reminder_hour: u32,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            tick: Duration::from_secs(30),
            late_limit: chrono::Duration::hours(6),
            digest: Schedule::parse("0 16 * * 5").expect("a valid constant schedule"),
            celebrations: Schedule::parse("0 17 * * *").expect("a valid constant schedule"),
            reminder_hour: 9,
        }
    }
}

/// What one tick did, across all channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    pub fired: usize,
    pub suppressed: usize,
    pub skipped: usize,
}

#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    clock: SharedClock,
    settings: SchedulerSettings,
}

/// Channels read per query while ticking.
const CHANNEL_PAGE: i64 = 500;

/// Channels ticked at once: each is a few short transactions, so several keep the pool busy.
const CHANNELS_AT_ONCE: usize = 8;

/// One post a job owes: to the channel, or privately to one person.
pub(crate) enum Post {
    Channel(Reply),
    Private { recipient: String, reply: Reply },
}

impl Scheduler {
    pub fn new(store: Store, clock: SharedClock, settings: SchedulerSettings) -> Scheduler {
        Scheduler { store, clock, settings }
    }

    /// Ticks until `shutdown` is cancelled; a tick in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(error) = self.tick().await {
                tracing::error!(%error, "a scheduler tick failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(self.settings.tick) => {}
            }
        }
    }

    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let now = self.clock.now();
        let mut tick = Tick::default();
        let mut after = ChannelId(0);
        let firings = Arc::new(Firings::new(now));
        loop {
            let page = {
                let mut tx = self.store.begin().await?;
                tx.channels_after(after, CHANNEL_PAGE).await?
            };
            let Some(last) = page.last().map(|c| c.channel.clone()) else { break };
            after = last.id;
            let pledges = {
                let mut tx = self.store.begin().await?;
                tx.open_pledges_in_channels(ChannelId(page[0].channel.id.0 - 1), last.id).await?
            };
            let pledges = Arc::new(pledges);
            let mut running = tokio::task::JoinSet::new();
            for channel in page {
                if running.len() >= CHANNELS_AT_ONCE {
                    add(&mut tick, running.join_next().await);
                }
                let (this, firings, pledges) = (self.clone(), firings.clone(), pledges.clone());
                running.spawn(async move {
                    let mut tick = Tick::default();
                    let own: Vec<&PledgeRecord> =
                        pledges.iter().filter(|p| p.channel_id == channel.channel.id).collect();
                    this.tick_channel(&channel, &own, &firings, now, &mut tick).await.map(|()| tick)
                });
            }
            while let Some(done) = running.join_next().await {
                add(&mut tick, Some(done));
            }
        }
        Ok(tick)
    }

    async fn tick_channel(
        &self,
        scheduled: &ScheduledChannel,
        pledges: &[&PledgeRecord],
        firings: &Firings,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<(), StoreError> {
        let channel = &scheduled.channel;
        let jobs: [(&str, &Schedule); 3] = [
            (jobs::CHECKIN, &channel.schedule),
            (jobs::DIGEST, &self.settings.digest),
            (jobs::CELEBRATIONS, &self.settings.celebrations),
        ];
        for (job, schedule) in jobs {
            let since = (now - self.settings.late_limit).max(scheduled.created_at);
            if let Some(due) = firings.last(schedule, channel.time_zone, since, now) {
                self.occur(channel, job, due, now, tick).await?;
            } else {
                let long_ago = (now - chrono::Duration::days(8)).max(scheduled.created_at);
                if let Some(missed) =
                    firings.last(schedule, channel.time_zone, long_ago, now - self.settings.late_limit)
                {
                    let mut tx = self.store.begin().await?;
                    let occurrence = NewOccurrence {
                        channel: channel.id,
                        job,
                        due_at: missed,
                        outcome: "skipped",
                        reason: Some("more than six hours late"),
                    };
                    if tx.record_occurrence(channel.workspace_id, &occurrence, now).await? {
                        tx.commit().await?;
                        tick.skipped += 1;
                    }
                }
            }
        }
        self.pledge_reminders(channel, pledges, now, tick).await
    }

    /// Claims one occurrence and, when it is ours, builds its posts in the same transaction. The
    /// claim comes first, so replicas and later ticks pay one conflicting insert, not a build.
    async fn occur(
        &self,
        channel: &ChannelRecord,
        job: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<(), StoreError> {
        let (ws, id) = (channel.workspace_id, channel.id);
        let quiet = quiet_reason(channel, due);
        let outcome = if quiet.is_some() { "suppressed" } else { "fired" };
        let mut tx = self.store.begin().await?;
        let occurrence = NewOccurrence { channel: id, job, due_at: due, outcome, reason: quiet };
        if !tx.record_occurrence(ws, &occurrence, now).await? {
            return Ok(()); // another replica, or an earlier tick, has it
        }
        if quiet.is_some() {
            tx.commit().await?;
            tick.suppressed += 1;
            return Ok(());
        }
        match jobs::build(&mut tx, channel, job, due, now).await? {
            Some(posts) => {
                let key = format!("{job}:{}:{}", id.0, due.timestamp());
                for (n, post) in posts.into_iter().enumerate() {
                    let (recipient, reply) = match post {
                        Post::Channel(reply) => (channel.external_id.clone(), reply),
                        Post::Private { recipient, reply } => (recipient, reply),
                    };
                    tx.enqueue_message(ws, Some(id), &recipient, &format!("{key}:{n}"), &reply, now).await?;
                }
                tick.fired += 1;
            }
            None => {
                tx.set_occurrence_outcome(id, job, due, "suppressed", "nothing to say").await?;
                tick.suppressed += 1;
            }
        }
        tx.commit().await
    }

    /// Each open pledge's current stage: due today (the owner, privately), overdue (the owner),
    /// broken after the channel's grace (the channel, and the pledge is marked broken). Only the
    /// current stage fires, once; the broken stage is tried each day until a day that is not quiet.
    async fn pledge_reminders(
        &self,
        channel: &ChannelRecord,
        pledges: &[&PledgeRecord],
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<(), StoreError> {
        for pledge in pledges {
            // Reminders come in the owner's morning when we know their zone, else the channel's.
            let zone = pledge.owner_time_zone.unwrap_or(channel.time_zone);
            let today = now.with_timezone(&zone).date_naive();
            let overdue = (today - pledge.due_on).num_days();
            let (stage, day) = match overdue {
                0 => (jobs::PLEDGE_DUE, today),
                d if d >= i64::from(channel.escalate_after_days) => (jobs::PLEDGE_BROKEN, today),
                1.. => (jobs::PLEDGE_OVERDUE, pledge.due_on + chrono::Duration::days(1)),
                _ => continue,
            };
            let Some(instant) = local_time(zone, day, self.settings.reminder_hour) else { continue };
            if instant > now || (stage != jobs::PLEDGE_BROKEN && now - instant > self.settings.late_limit) {
                continue;
            }
            let job = format!("{stage}:{}", pledge.number);
            self.occur(channel, &job, instant, now, tick).await?;
        }
        Ok(())
    }
}

type FiringList = Arc<Vec<DateTime<Utc>>>;

/// Firings in the window a tick looks at, computed once per (schedule, zone) per tick: channels
/// mostly share the default schedule, and evaluating cron is the tick's main CPU cost.
struct Firings {
    window_start: DateTime<Utc>,
    now: DateTime<Utc>,
    known: std::sync::Mutex<HashMap<(String, Tz), FiringList>>,
}

impl Firings {
    fn new(now: DateTime<Utc>) -> Firings {
        Firings { window_start: now - chrono::Duration::days(8), now, known: Default::default() }
    }

    /// The latest firing in (`since`, `until`].
    fn last(&self, schedule: &Schedule, zone: Tz, since: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let key = (schedule.expression().to_string(), zone);
        let cached = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        let firings = cached.unwrap_or_else(|| {
            let all = Arc::new(firings_between(schedule, zone, self.window_start, self.now));
            self.known.lock().unwrap_or_else(|e| e.into_inner()).insert(key, all.clone());
            all
        });
        firings.iter().rev().find(|at| **at > since && **at <= until).copied()
    }
}

/// Adds one channel's tick to the total; a channel that failed is logged and retried next tick.
fn add(total: &mut Tick, done: Option<Result<Result<Tick, StoreError>, tokio::task::JoinError>>) {
    match done {
        Some(Ok(Ok(tick))) => {
            total.fired += tick.fired;
            total.suppressed += tick.suppressed;
            total.skipped += tick.skipped;
        }
        Some(Ok(Err(error))) => tracing::error!(%error, "a channel's tick failed; the next tick tries again"),
        Some(Err(error)) => tracing::error!(%error, "a channel's tick panicked"),
        None => {}
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

/// Every firing of `schedule` in (`since`, `until`], oldest first.
fn firings_between(schedule: &Schedule, zone: Tz, since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut firings = Vec::new();
    let mut at = since;
    // Bounded: eight days of a minutely schedule is 11,520 firings.
    while firings.len() < 20_000 {
        match schedule.next_after(at, zone) {
            Some(next) if next <= until => {
                firings.push(next);
                at = next;
            }
            _ => break,
        }
    }
    firings
}

/// `hour`:00 local on `day`, the earlier instant when the clock repeats, skipped forward in a gap.
fn local_time(zone: Tz, day: NaiveDate, hour: u32) -> Option<DateTime<Utc>> {
    let naive = day.and_hms_opt(hour, 0, 0)?;
    match zone.from_local_datetime(&naive) {
        chrono::LocalResult::Single(at) | chrono::LocalResult::Ambiguous(at, _) => Some(at.with_timezone(&Utc)),
        chrono::LocalResult::None => {
            zone.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest().map(|at| at.with_timezone(&Utc))
        }
    }
}
