//! The outbox's deliveries to Teams. A channel's posts (the weekly check-in, celebrations, the
//! digest) each start a new thread (`POST v3/conversations` with the channel); a group chat's go
//! into the chat; a member's private reminders go to their personal conversation, which is created
//! the first time and kept.
//!
//! Ambiguous outcomes: Bot Connector POSTs are not idempotent and Teams offers bots no way to find
//! a post they made, so a post whose request went out without an answer (a timeout, a reset) is
//! counted as delivered, unconfirmed, and never posted again: a lost answer usually means a slow
//! connector that did post, and a second copy in a team's channel is the nag nudge promises not to
//! be. 429 (after its Retry-After), 412, 502, 503 and 504 are Microsoft's documented "try again"
//! answers, given before the post is made, and are retried with backoff and jitter; any other 5xx
//! is treated like a lost answer. A conversation that removed, blocked or disabled nudge (403
//! `BotNotInConversationRoster`, `ConversationBlockedByUser`, `BotDisabledByAdmin`, or 404) takes
//! no more posts: each is undeliverable with the reason, at once, not retried.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::api::ConnectorError;
use super::wire::{ConversationRecord, Place};
use super::{PLATFORM, Teams, records, render};
use crate::clock::SharedClock;
use crate::outbox::{Delivery, DeliveryError, DeliveryFuture};
use crate::store::{OutboundMessage, Recipient, Store, StoreError, WorkspaceId};

pub struct TeamsDelivery {
    teams: Arc<Teams>,
    store: Store,
    clock: SharedClock,
}

impl TeamsDelivery {
    pub fn new(teams: Arc<Teams>, store: Store, clock: SharedClock) -> TeamsDelivery {
        TeamsDelivery { teams, store, clock }
    }
}

fn store_error(error: StoreError) -> DeliveryError {
    DeliveryError::temporary(error.to_string())
}

fn undeliverable(reason: &str) -> DeliveryError {
    DeliveryError::permanent(format!("undeliverable: {reason}"))
}

fn delivery_error(error: &ConnectorError) -> DeliveryError {
    let may_have_landed = error.may_have_landed()
        || matches!(error, ConnectorError::Status { status, .. } if *status >= 500 && !error.is_retryable());
    DeliveryError {
        message: error.to_string(),
        retryable: error.is_retryable() && !may_have_landed,
        retry_after: error.retry_after(),
        unreachable: false,
        may_have_landed,
    }
}

impl Delivery for TeamsDelivery {
    fn deliver<'a>(&'a self, message: &'a OutboundMessage) -> DeliveryFuture<'a, String> {
        Box::pin(self.post(message))
    }

    /// Teams cannot be asked whether a post was made, so one whose answer was lost counts as made
    /// (see the module docs): it is never posted a second time.
    fn find_delivered<'a>(
        &'a self,
        message: &'a OutboundMessage,
        attempted_at: DateTime<Utc>,
    ) -> DeliveryFuture<'a, Option<String>> {
        Box::pin(async move {
            tracing::warn!(
                outbox_id = message.id.0,
                workspace = message.workspace_id.0,
                attempted_at = %attempted_at,
                "a Teams post's answer was lost; it counts as posted and is not posted again"
            );
            Ok(Some(format!("unconfirmed:{}", message.id.0)))
        })
    }
}

impl TeamsDelivery {
    async fn conversation(&self, ws: WorkspaceId, key: &str) -> Result<Option<ConversationRecord>, DeliveryError> {
        let mut tx = self.store.read_once().await.map_err(store_error)?;
        let stored = tx.platform_record(ws, PLATFORM, records::CONVERSATION, key).await.map_err(store_error)?;
        Ok(stored.and_then(|s| serde_json::from_str(&s).ok()))
    }

    async fn post(&self, message: &OutboundMessage) -> Result<String, DeliveryError> {
        let ws = message.workspace_id;
        let activity = render::activity(&message.message);
        let connector = &self.teams.connector;
        let (key, record) = match message.recipient {
            Recipient::Channel(_) => {
                let record = self.conversation(ws, &message.address).await?.ok_or_else(|| {
                    undeliverable("nudge has not been installed in this conversation (no conversation reference)")
                })?;
                (message.address.clone(), record)
            }
            Recipient::Member(_) => self.personal(ws, &message.address).await?,
        };
        if let Some(reason) = &record.removed {
            return Err(undeliverable(reason));
        }
        let posted = match record.place {
            Place::Channel => {
                let parameters = json!({
                    "isGroup": true,
                    "channelData": {"channel": {"id": record.id}, "tenant": {"id": self.teams.settings.tenant_id}},
                    "activity": activity,
                });
                connector.create(&record.service_url, &parameters).await.map(|c| c.activity_id.unwrap_or(c.id))
            }
            Place::GroupChat | Place::Personal => {
                connector.send(&record.service_url, &record.id, None, &activity).await
            }
        };
        match posted {
            Ok(id) => Ok(id),
            Err(error) if error.is_blocked() => {
                let reason = format!("{error}: nudge was removed or blocked there");
                self.mark_removed(ws, &key, record, &reason).await;
                Err(undeliverable(&reason))
            }
            Err(error) => Err(delivery_error(&error)),
        }
    }

    /// Posts to this conversation stop until nudge is added there again.
    async fn mark_removed(&self, ws: WorkspaceId, key: &str, mut record: ConversationRecord, reason: &str) {
        record.removed = Some(reason.to_string());
        let saved = async {
            let mut tx = self.store.begin().await?;
            let value = serde_json::to_string(&record).unwrap_or_default();
            tx.save_platform_record(ws, PLATFORM, records::CONVERSATION, key, &value, self.clock.now()).await?;
            tx.commit().await
        }
        .await;
        if let Err(error) = saved {
            tracing::warn!(%error, "could not record that a Teams conversation refused nudge");
        }
    }

    /// A member's personal conversation with nudge, created (and kept) the first time.
    async fn personal(&self, ws: WorkspaceId, member: &str) -> Result<(String, ConversationRecord), DeliveryError> {
        let (known, service_url) = {
            let mut tx = self.store.read_once().await.map_err(store_error)?;
            let known = tx.platform_record(ws, PLATFORM, records::PERSONAL, member).await.map_err(store_error)?;
            let tenant = &self.teams.settings.tenant_id;
            let url = tx.platform_record(ws, PLATFORM, records::SERVICE_URL, tenant).await.map_err(store_error)?;
            (known, url)
        };
        if let Some(id) = known
            && let Some(record) = self.conversation(ws, &id).await?
        {
            return Ok((id, record));
        }
        let service_url = service_url.ok_or_else(|| {
            DeliveryError::temporary("no serviceUrl is known for the tenant yet; it is learned from the first activity")
        })?;
        let tenant = &self.teams.settings.tenant_id;
        let parameters = json!({
            "bot": {"id": format!("28:{}", self.teams.connector.app_id())},
            "members": [{"id": member}],
            "tenantId": tenant,
            "channelData": {"tenant": {"id": tenant}},
            "isGroup": false,
        });
        let created = self.teams.connector.create(&service_url, &parameters).await.map_err(|error| {
            if error.is_blocked() { undeliverable(&error.to_string()) } else { delivery_error(&error) }
        })?;
        let record = ConversationRecord { place: Place::Personal, id: created.id.clone(), service_url, removed: None };
        let saved = async {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let value = serde_json::to_string(&record).unwrap_or_default();
            tx.save_platform_record(ws, PLATFORM, records::PERSONAL, member, &created.id, now).await?;
            tx.save_platform_record(ws, PLATFORM, records::CONVERSATION, &created.id, &value, now).await?;
            tx.commit().await
        }
        .await;
        // Creating it again next time is harmless: Teams answers with the same conversation.
        if let Err(error) = saved {
            tracing::warn!(%error, "could not keep a member's Teams conversation");
        }
        Ok((created.id, record))
    }
}
