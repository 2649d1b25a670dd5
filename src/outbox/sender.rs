//! The sender: claims due posts, hands each to its platform's delivery, and records what happened.
//! Retries back off exponentially with jitter; a 429 delays only its recipient; a post is dead and
//! reported only after `max_attempts` and `give_up_after` since its first attempt, so an outage of
//! a few minutes kills nothing. Posts to a channel nudge has not been invited to wait, tried again
//! hourly without counting attempts, and the member who last used nudge there is asked once to
//! invite it. A post left "sending" (a crash, a timeout) is looked up on the platform before it is sent
//! again, so a crash does not post twice.
//!
//! The sender does not poll: it sleeps until a transaction that queued posts commits (in this
//! process, or on Postgres in any replica, through `LISTEN`), until the next retry or paced post is
//! due, or at the latest until a slow safety poll.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::message::{Message, Section};
use crate::store::{
    ChannelId, OUTBOX_CHANNEL, OutboundId, OutboundMessage, Recipient, Store, StoreError, Tx, WorkspaceId,
};

/// Why a delivery failed, in the terms the sender decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub message: String,
    pub retryable: bool,
    /// The platform asked us to wait this long before posting to this recipient again.
    pub retry_after: Option<Duration>,
    /// The recipient exists, but nudge may not post there until someone invites it (Slack's
    /// `not_in_channel`): the post waits instead of failing, whatever `retryable` says.
    pub unreachable: bool,
    /// The post may have landed although no answer says so (a timeout or a reset after the request
    /// was sent, a 5xx): it is looked up on the platform before it is posted again.
    pub may_have_landed: bool,
}

impl DeliveryError {
    /// A failure that trying again later may cure (a platform that is down or not configured).
    pub fn temporary(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            message: message.into(),
            retryable: true,
            retry_after: None,
            unreachable: false,
            may_have_landed: false,
        }
    }

    /// A failure that trying again cannot cure.
    pub fn permanent(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            message: message.into(),
            retryable: false,
            retry_after: None,
            unreachable: false,
            may_have_landed: false,
        }
    }
}

pub type DeliveryFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DeliveryError>> + Send + 'a>>;

/// What a platform does for the sender.
pub trait Delivery: Send + Sync + 'static {
    /// Posts the message to its recipient; returns the platform's id for the post.
    fn deliver<'a>(&'a self, message: &'a OutboundMessage) -> DeliveryFuture<'a, String>;

    /// Finds a post whose outcome is unknown on the platform (by the id it carries), around the
    /// instant the attempt that may have posted it began; returns its platform id when it did go out.
    fn find_delivered<'a>(
        &'a self,
        message: &'a OutboundMessage,
        attempted_at: DateTime<Utc>,
    ) -> DeliveryFuture<'a, Option<String>>;

    /// The least time between two posts to one recipient.
    fn pace(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// Each configured platform's delivery, by the platform's name (as stored with its workspaces).
pub type Deliveries = HashMap<&'static str, Arc<dyn Delivery>>;

#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// A failing post is dead only after this many attempts…
    pub max_attempts: u32,
    /// …and this long after its first attempt, so that retries outlast a platform's outage.
    pub give_up_after: Duration,
    pub first_retry: Duration,
    pub longest_retry: Duration,
    /// How long a recipient that nudge may not post to (not invited) is held before trying again.
    pub unreachable_hold: Duration,
    /// Most posts claimed per round.
    pub batch: i64,
    /// How long a claimed post may stay "sending" before its outcome is looked up.
    pub reconcile_after: Duration,
    /// The longest the sender sleeps with nothing to do: the safety net under the wake-ups.
    pub safety_poll: Duration,
}

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            max_attempts: 8,
            give_up_after: Duration::from_secs(60 * 60),
            first_retry: Duration::from_secs(2),
            longest_retry: Duration::from_secs(15 * 60),
            unreachable_hold: Duration::from_secs(60 * 60),
            batch: 100,
            reconcile_after: Duration::from_secs(120),
            safety_poll: Duration::from_secs(30),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub delivered: usize,
    pub retrying: usize,
    /// Posts held because nudge may not post to their recipient yet (not invited).
    pub waiting: usize,
    pub dead: usize,
    /// Posts of unknown outcome found on the platform (and not posted again).
    pub reconciled: usize,
    /// Posts of unknown outcome not found, put back in the queue.
    pub requeued: usize,
}

impl Round {
    fn add(&mut self, other: Round) {
        self.claimed += other.claimed;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.waiting += other.waiting;
        self.dead += other.dead;
        self.reconciled += other.reconciled;
        self.requeued += other.requeued;
    }
}

#[derive(Clone)]
pub struct Sender {
    store: Store,
    deliveries: Deliveries,
    clock: SharedClock,
    settings: SenderSettings,
}

/// What became of one claimed post on the platform.
type Attempted = (OutboundMessage, Attempt);

enum Attempt {
    /// Posted now, or found on the platform from an earlier attempt whose answer was lost.
    Posted {
        platform_id: String,
        found: bool,
    },
    Failed(DeliveryError),
}

impl Sender {
    pub fn new(store: Store, deliveries: Deliveries, clock: SharedClock, settings: SenderSettings) -> Sender {
        Sender { store, deliveries, clock, settings }
    }

    /// Delivers until `shutdown` is cancelled. Deliveries run side by side and each outcome is
    /// recorded as it comes, so one recipient that hangs holds up nobody else's posts. On shutdown
    /// the deliveries in flight are finished and recorded (each is bounded by its platform client's
    /// timeout): an answer pending at shutdown is not turned into a retry.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener = self.listen().await;
        let mut in_flight: JoinSet<Attempted> = JoinSet::new();
        let most = usize::try_from(self.settings.batch).unwrap_or(100).max(1);
        while !shutdown.is_cancelled() {
            let room = most.saturating_sub(in_flight.len());
            let mut more_due = false;
            if room > 0 {
                match self.claim(room as i64).await {
                    Ok(claimed) => {
                        more_due = claimed.len() == room;
                        for message in claimed {
                            in_flight.spawn(self.clone().attempt(message));
                        }
                    }
                    Err(error) => tracing::error!(%error, "the outbox sender could not claim posts"),
                }
            }
            if more_due && in_flight.len() < most {
                continue;
            }
            let rest = self.rest().await;
            let notified = async {
                match &mut listener {
                    Some(listener) => match listener.recv().await {
                        Ok(_) => {}
                        // The listening connection broke: the safety poll carries on meanwhile.
                        Err(_) => std::future::pending().await,
                    },
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    self.record_finished(joined, &mut in_flight, &mut Round::default()).await;
                }
                _ = self.store.posts_queued() => {}
                _ = notified => {}
                _ = tokio::time::sleep(rest) => {}
            }
        }
        while let Some(joined) = in_flight.join_next().await {
            self.record_finished(joined, &mut in_flight, &mut Round::default()).await;
        }
    }

    /// On Postgres, listens for posts queued by any replica.
    async fn listen(&self) -> Option<sqlx::postgres::PgListener> {
        let pool = self.store.postgres_pool()?;
        let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for queued posts; other replicas' posts wait for the safety poll");
                return None;
            }
        };
        match listener.listen(OUTBOX_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for queued posts; other replicas' posts wait for the safety poll");
                None
            }
        }
    }

    /// How long to sleep when there is nothing to do now: until the next retry or paced post, or
    /// until a post left sending is stale, or the safety poll.
    async fn rest(&self) -> Duration {
        let next = async {
            let mut tx = self.store.read_once().await?;
            let delivery = tx.next_delivery_at().await?;
            let stale = tx.oldest_sending_claim().await?.map(|at| at + chrono_duration(self.settings.reconcile_after));
            Ok::<Option<DateTime<Utc>>, StoreError>(delivery.into_iter().chain(stale).min())
        }
        .await;
        match next {
            Ok(Some(at)) => (at - self.clock.now()).to_std().unwrap_or_default().min(self.settings.safety_poll),
            _ => self.settings.safety_poll,
        }
    }

    /// One round, start to finish: reconcile stale posts, claim due ones, deliver them side by side
    /// and record each outcome as it comes. For tests and benchmarks, which want a round to be over
    /// when this returns; [`Sender::run`] does the same without waiting for the slowest.
    pub async fn run_once(&self) -> Result<Round, StoreError> {
        let mut round = Round::default();
        let claimed = self.claim_counting(self.settings.batch, &mut round).await?;
        round.claimed = claimed.len();
        let mut in_flight = JoinSet::new();
        for message in claimed {
            in_flight.spawn(self.clone().attempt(message));
        }
        while let Some(joined) = in_flight.join_next().await {
            self.record_finished(joined, &mut in_flight, &mut round).await;
        }
        Ok(round)
    }

    async fn claim(&self, limit: i64) -> Result<Vec<OutboundMessage>, StoreError> {
        self.claim_counting(limit, &mut Round::default()).await
    }

    /// Reconciles stale posts, then claims up to `limit` due posts, one per recipient, none for a
    /// recipient with a post still in flight (so a channel's posts keep their order).
    async fn claim_counting(&self, limit: i64, round: &mut Round) -> Result<Vec<OutboundMessage>, StoreError> {
        self.reconcile(round).await?;
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        // One pace for all: every platform nudge speaks allows about one post a second per channel.
        let pace = self.deliveries.values().map(|d| d.pace()).max().unwrap_or(Duration::from_secs(1));
        let claimed = tx.claim_due_messages(now, chrono_duration(pace), limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// One claimed post on its platform. A post whose earlier answer was lost is looked for first,
    /// and posted only when it is not there.
    async fn attempt(self, message: OutboundMessage) -> Attempted {
        let Some(delivery) = self.deliveries.get(message.platform.as_str()).cloned() else {
            let error = not_configured(&message);
            return (message, Attempt::Failed(error));
        };
        if let Some(attempted_at) = message.unknown_outcome_at {
            match delivery.find_delivered(&message, attempted_at).await {
                Ok(Some(platform_id)) => return (message, Attempt::Posted { platform_id, found: true }),
                Ok(None) => {}
                Err(mut error) => {
                    // Still unknown: looked up again later, never posted blindly.
                    error.may_have_landed = true;
                    return (message, Attempt::Failed(error));
                }
            }
        }
        let outcome = match delivery.deliver(&message).await {
            Ok(platform_id) => Attempt::Posted { platform_id, found: false },
            Err(error) => Attempt::Failed(error),
        };
        (message, outcome)
    }

    /// Records a finished delivery and any others already finished, in one transaction. A
    /// transaction that fails leaves its posts "sending", to be reconciled with the platform later,
    /// never posted blindly again.
    async fn record_finished(
        &self,
        first: Result<Attempted, tokio::task::JoinError>,
        in_flight: &mut JoinSet<Attempted>,
        round: &mut Round,
    ) {
        let mut finished = Vec::new();
        // A delivery that panicked stays "sending" and is reconciled later.
        finished.extend(first.ok());
        while let Some(joined) = in_flight.try_join_next() {
            finished.extend(joined.ok());
        }
        if finished.is_empty() {
            return;
        }
        if let Err(error) = self.record(&finished, round).await {
            tracing::error!(%error, posts = finished.len(), "could not record deliveries; they are reconciled later");
        }
    }

    async fn record(&self, finished: &[Attempted], round: &mut Round) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let mut counted = Round::default();
        let delivered: Vec<(OutboundId, String)> = finished
            .iter()
            .filter_map(|(message, outcome)| match outcome {
                Attempt::Posted { platform_id, .. } => Some((message.id, platform_id.clone())),
                Attempt::Failed(_) => None,
            })
            .collect();
        tx.messages_delivered(&delivered, now).await?;
        for (message, outcome) in finished {
            match outcome {
                Attempt::Posted { found, .. } => {
                    if *found {
                        counted.reconciled += 1;
                    } else {
                        counted.delivered += 1;
                    }
                    // Invited again: the next refusal is news.
                    if let (Recipient::Channel(channel), Some(_)) =
                        (message.recipient, message.channel_unreachable_since)
                    {
                        tx.mark_channel_reachable(message.workspace_id, channel).await?;
                    }
                }
                Attempt::Failed(error) => self.record_failure(&mut tx, message, error, now, &mut counted).await?,
            }
        }
        tx.commit().await?;
        round.add(counted);
        Ok(())
    }

    async fn record_failure(
        &self,
        tx: &mut Tx,
        message: &OutboundMessage,
        error: &DeliveryError,
        now: DateTime<Utc>,
        round: &mut Round,
    ) -> Result<(), StoreError> {
        if error.unreachable {
            // Nothing is wrong with the post, and nobody can fix it by retrying: hold the recipient
            // (its other posts too) and tell someone who can invite nudge.
            let until = now + chrono_duration(self.settings.unreachable_hold);
            tx.delay_recipient(message.workspace_id, message.recipient, until).await?;
            tx.message_held(message.id, &error.message, until).await?;
            if let Recipient::Channel(channel) = message.recipient {
                self.ask_for_an_invite(tx, message.workspace_id, channel, now).await?;
            }
            round.waiting += 1;
            return Ok(());
        }
        if let Some(wait) = error.retry_after {
            // A 429 is about this recipient: hold its other posts too, and nobody else's. It is
            // not a failed attempt, so however long the limit lasts, the post is delayed, not lost.
            let retry_at = now + chrono_duration(wait);
            tx.delay_recipient(message.workspace_id, message.recipient, retry_at).await?;
            tx.message_rate_limited(message.id, &error.message, retry_at).await?;
            round.retrying += 1;
            return Ok(());
        }
        if error.may_have_landed && !self.gives_up(message, now) {
            // Posting again now could post twice: the next attempt first looks for this one.
            let attempted_at = message.unknown_outcome_at.or(message.claimed_at).unwrap_or(now);
            let look_up_at = now + chrono_duration(self.backoff(message.attempts));
            tx.message_outcome_unknown(message.id, &error.message, attempted_at, look_up_at).await?;
            round.retrying += 1;
            return Ok(());
        }
        if error.retryable && !self.gives_up(message, now) {
            let retry_at = now + chrono_duration(self.backoff(message.attempts));
            tx.message_failed(message.id, &error.message, Some(retry_at)).await?;
            round.retrying += 1;
            return Ok(());
        }
        tracing::warn!(
            outbox_id = message.id.0,
            workspace = message.workspace_id.0,
            channel = message.channel_id.map(|c| c.0),
            platform = %message.platform,
            attempts = message.attempts,
            reason = %error.message,
            "a post is dead; `nudge outbox` lists it"
        );
        tx.message_failed(message.id, &error.message, None).await?;
        round.dead += 1;
        Ok(())
    }

    /// Whether a failing post has had its chances: its attempts, over at least `give_up_after`.
    fn gives_up(&self, message: &OutboundMessage, now: DateTime<Utc>) -> bool {
        let first = message.first_attempt_at.unwrap_or(message.created_at);
        message.attempts >= self.settings.max_attempts && now - first >= chrono_duration(self.settings.give_up_after)
    }

    /// The first refusal since the channel was last reached queues one private notice to the member
    /// who last used nudge there. The mark in the database, not this process, makes it once: a
    /// restart or another replica finds the channel marked and says nothing.
    async fn ask_for_an_invite(
        &self,
        tx: &mut Tx,
        ws: WorkspaceId,
        channel: ChannelId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(name) = tx.mark_channel_unreachable(ws, channel, now).await? else { return Ok(()) };
        let Some(member) = tx.last_commander(ws, channel).await? else {
            tracing::warn!(
                workspace = ws.0,
                channel = channel.0,
                "nudge is not in a channel and nobody has used it there to tell; its posts wait"
            );
            return Ok(());
        };
        let key = format!("invite-needed:{}:{}", channel.0, now.timestamp_millis());
        tx.enqueue_message(ws, channel, Recipient::Member(member), &key, &invite_needed(&name), now).await?;
        tracing::info!(
            workspace = ws.0,
            channel = channel.0,
            member = member.0,
            "nudge is not in a channel; its posts wait, and the member who last used nudge there is asked to invite it"
        );
        Ok(())
    }

    async fn reconcile(&self, round: &mut Round) -> Result<(), StoreError> {
        let now = self.clock.now();
        let stale = {
            let mut tx = self.store.read_once().await?;
            tx.stale_sending_messages(now - chrono_duration(self.settings.reconcile_after), self.settings.batch).await?
        };
        for message in stale {
            let found = match self.deliveries.get(message.platform.as_str()) {
                Some(delivery) => delivery.find_delivered(&message, message.claimed_at.unwrap_or(now)).await,
                None => Err(not_configured(&message)),
            };
            let mut tx = self.store.begin().await?;
            match found {
                Ok(Some(platform_id)) => {
                    tx.message_delivered(message.id, &platform_id, now).await?;
                    round.reconciled += 1;
                }
                Ok(None) => {
                    tx.requeue_message(message.id, now).await?;
                    round.requeued += 1;
                }
                // Looked up again later, never posted blindly; an unreachable channel's history cannot
                // be read until nudge is invited back.
                Err(error) if error.retryable || error.unreachable => {
                    tracing::info!(
                        outbox_id = message.id.0,
                        workspace = message.workspace_id.0,
                        reason = %error.message,
                        "cannot reconcile a post yet"
                    );
                    tx.reconcile_later(message.id, now).await?;
                }
                Err(error) => {
                    // Posting again could post twice; an operator decides.
                    let reason = format!("outcome unknown and cannot be checked: {}", error.message);
                    tracing::warn!(outbox_id = message.id.0, workspace = message.workspace_id.0, %reason, "a post is dead");
                    tx.message_failed(message.id, &reason, None).await?;
                    round.dead += 1;
                }
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// first_retry × 2^(attempts − 1), capped, times a random factor in [0.5, 1) so posts that failed
    /// together do not all come back at the same instant.
    fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(20);
        let full = self.settings.first_retry.saturating_mul(1 << exponent).min(self.settings.longest_retry);
        let mut bytes = [0u8; 4];
        let _ = getrandom::fill(&mut bytes);
        let jitter = 0.5 + f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX) / 2.0;
        full.mul_f64(jitter)
    }
}

fn not_configured(message: &OutboundMessage) -> DeliveryError {
    DeliveryError::temporary(format!("{} is not configured on this server", message.platform))
}

/// What the member who last used nudge in a channel it cannot post to hears, privately.
fn invite_needed(channel: &str) -> Message {
    Message::private(format!("Invite @nudge to #{channel} so check-ins and celebrations can reach the team"))
        .with_section(Section::body(format!(
            "nudge is not a member of #{channel}, so its posts there are waiting. Type /invite @nudge in \
             #{channel} and they will follow."
        )))
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
