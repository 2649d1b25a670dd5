//! The sender: claims due posts, delivers them, and records what happened. Retries back off
//! exponentially with jitter; a 429 delays only its recipient; after `max_attempts` a post is dead
//! and reported. A post left "sending" (a crash, a timeout) is looked up on the platform before it
//! is sent again, so a crash does not post twice.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::store::{OutboundMessage, Store, StoreError};

/// Why a delivery failed, in the terms the sender decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub message: String,
    pub retryable: bool,
    /// The platform asked us to wait this long before posting to this recipient again.
    pub retry_after: Option<Duration>,
}

/// What a platform does for the sender.
pub trait Delivery: Send + Sync + 'static {
    /// Posts the message; returns the platform's id for it.
    fn deliver(&self, message: &OutboundMessage) -> impl Future<Output = Result<String, DeliveryError>> + Send;

    /// Finds a post whose outcome is unknown on the platform (by the id it carries); returns its
    /// platform id when it did go out.
    fn find_delivered(
        &self,
        message: &OutboundMessage,
    ) -> impl Future<Output = Result<Option<String>, DeliveryError>> + Send;
}

#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Least time between two posts to one recipient (Slack allows about one per second per channel).
    pub pace: Duration,
    pub max_attempts: u32,
    pub first_retry: Duration,
    pub longest_retry: Duration,
    /// Most posts claimed per round.
    pub batch: i64,
    /// How long a claimed post may stay "sending" before its outcome is looked up.
    pub reconcile_after: Duration,
    /// How long the loop rests when there was nothing to do.
    pub idle: Duration,
}

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            pace: Duration::from_secs(1),
            max_attempts: 8,
            first_retry: Duration::from_secs(2),
            longest_retry: Duration::from_secs(15 * 60),
            batch: 100,
            reconcile_after: Duration::from_secs(120),
            idle: Duration::from_millis(500),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
    /// Posts of unknown outcome found on the platform (and not posted again).
    pub reconciled: usize,
    /// Posts of unknown outcome not found, put back in the queue.
    pub requeued: usize,
}

pub struct Sender<D> {
    store: Store,
    delivery: Arc<D>,
    clock: SharedClock,
    settings: SenderSettings,
}

impl<D: Delivery> Sender<D> {
    pub fn new(store: Store, delivery: Arc<D>, clock: SharedClock, settings: SenderSettings) -> Sender<D> {
        Sender { store, delivery, clock, settings }
    }

    /// Delivers until `shutdown` is cancelled; a round in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let busy = match self.run_once().await {
                Ok(round) => round.claimed as i64 >= self.settings.batch,
                Err(error) => {
                    tracing::error!(%error, "the outbox sender could not finish a round");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(self.settings.idle) => {}
                }
            }
        }
    }

    /// One round: reconcile stale posts, claim due ones, deliver them concurrently, record outcomes.
    pub async fn run_once(&self) -> Result<Round, StoreError> {
        let mut round = Round::default();
        self.reconcile(&mut round).await?;
        let now = self.clock.now();
        let claimed = {
            let mut tx = self.store.begin().await?;
            let claimed = tx.claim_due_messages(now, chrono_duration(self.settings.pace), self.settings.batch).await?;
            tx.commit().await?;
            claimed
        };
        round.claimed = claimed.len();
        // Each claimed post goes to a different recipient, so they can all go at once.
        let mut deliveries = JoinSet::new();
        for message in claimed {
            let delivery = self.delivery.clone();
            deliveries.spawn(async move {
                let result = delivery.deliver(&message).await;
                (message, result)
            });
        }
        let mut outcomes = Vec::with_capacity(round.claimed);
        while let Some(joined) = deliveries.join_next().await {
            // A delivery that panicked stays "sending" and is reconciled later.
            if let Ok(outcome) = joined {
                outcomes.push(outcome);
            }
        }
        // One transaction records the round; if it fails, the posts stay "sending" and are
        // reconciled with the platform later, never posted blindly again.
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        for (message, result) in &outcomes {
            self.record(&mut tx, message, result, now, &mut round).await?;
        }
        tx.commit().await?;
        Ok(round)
    }

    async fn record(
        &self,
        tx: &mut crate::store::Tx,
        message: &OutboundMessage,
        result: &Result<String, DeliveryError>,
        now: chrono::DateTime<chrono::Utc>,
        round: &mut Round,
    ) -> Result<(), StoreError> {
        match result {
            Ok(platform_id) => {
                tx.message_delivered(message.id, platform_id, now).await?;
                round.delivered += 1;
            }
            Err(error) if error.retryable && message.attempts < self.settings.max_attempts => {
                let wait = error.retry_after.unwrap_or_else(|| self.backoff(message.attempts));
                let retry_at = now + chrono_duration(wait);
                if error.retry_after.is_some() {
                    // A 429 is about this recipient: hold its other posts too, and nobody else's.
                    tx.delay_recipient(message.workspace_id, &message.recipient, retry_at).await?;
                }
                tx.message_failed(message.id, &error.message, Some(retry_at)).await?;
                round.retrying += 1;
            }
            Err(error) => {
                tracing::warn!(
                    outbox_id = message.id.0,
                    recipient = %message.recipient,
                    attempts = message.attempts,
                    reason = %error.message,
                    "a post is dead; `nudge outbox` lists it"
                );
                tx.message_failed(message.id, &error.message, None).await?;
                round.dead += 1;
            }
        }
        Ok(())
    }

    async fn reconcile(&self, round: &mut Round) -> Result<(), StoreError> {
        let now = self.clock.now();
        let stale = {
            let mut tx = self.store.begin().await?;
            tx.stale_sending_messages(now - chrono_duration(self.settings.reconcile_after), self.settings.batch).await?
        };
        for message in stale {
            let found = self.delivery.find_delivered(&message).await;
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
                Err(error) if error.retryable => {
                    tracing::info!(outbox_id = message.id.0, reason = %error.message, "cannot reconcile a post yet");
                }
                Err(error) => {
                    // Posting again could post twice; an operator decides.
                    let reason = format!("outcome unknown and cannot be checked: {}", error.message);
                    tracing::warn!(outbox_id = message.id.0, %reason, "a post is dead");
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

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
