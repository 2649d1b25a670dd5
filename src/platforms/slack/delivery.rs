//! The outbox's deliveries to Slack: chat.postMessage with message metadata carrying the outbox
//! id, and conversations.history to find a post whose outcome was unknown.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Slack;
use super::api::{self, HistoryWindow, MessageMetadata, SlackApiError};
use super::render;
use crate::outbox::{Delivery, DeliveryError, DeliveryFuture};
use crate::store::{OutboundMessage, Store, WorkspaceId};

/// The metadata event type nudge's posts carry.
pub const OUTBOX_EVENT: &str = "nudge_outbox";

pub struct SlackDelivery {
    slack: Arc<Slack>,
    store: Store,
    /// Workspace → team id; a workspace's team never changes, so one lookup each is enough.
    teams: RwLock<HashMap<WorkspaceId, String>>,
}

impl SlackDelivery {
    pub fn new(slack: Arc<Slack>, store: Store) -> SlackDelivery {
        SlackDelivery { slack, store, teams: RwLock::new(HashMap::new()) }
    }

    async fn token(&self, message: &OutboundMessage) -> Result<secrecy::SecretString, DeliveryError> {
        let cached = self.teams.read().unwrap_or_else(|e| e.into_inner()).get(&message.workspace_id).cloned();
        let team = match cached {
            Some(team) => Some(team),
            None => {
                self.lookup_team(message.workspace_id).await.map_err(|e| DeliveryError::temporary(e.to_string()))?
            }
        };
        let Some(team) = team else {
            return Err(DeliveryError::permanent("the workspace is gone"));
        };
        self.slack.token_for(&self.store, &team).await.map_err(|error| match error {
            super::TokenError::Store(e) => DeliveryError::temporary(e.to_string()),
            other => DeliveryError::permanent(other.to_string()),
        })
    }
}

impl SlackDelivery {
    async fn lookup_team(&self, ws: WorkspaceId) -> Result<Option<String>, crate::store::StoreError> {
        let mut tx = self.store.begin().await?;
        let team = tx.workspace_external_id(ws).await?;
        if let Some(team) = &team {
            self.teams.write().unwrap_or_else(|e| e.into_inner()).insert(ws, team.clone());
        }
        Ok(team)
    }
}

fn delivery_error(error: SlackApiError) -> DeliveryError {
    DeliveryError {
        retryable: error.is_retryable(),
        retry_after: error.retry_after(),
        unreachable: error.is_not_in_channel(),
        may_have_landed: error.may_have_landed(),
        message: error.to_string(),
    }
}

/// How far before an attempt began its post may carry Slack's timestamp (clocks differ a little).
const WINDOW_BEFORE: chrono::Duration = chrono::Duration::seconds(5);
/// Messages per history call: the most Slack allows apps outside its Marketplace.
const HISTORY_PAGE: u32 = 15;
const MAX_HISTORY_PAGES: usize = 20;

/// How long after an attempt began its post may have landed: until its request timed out, and a
/// little more for the clocks.
fn window_after() -> chrono::Duration {
    chrono::Duration::from_std(api::CONNECT_TIMEOUT + api::REQUEST_TIMEOUT).unwrap_or_default() + WINDOW_BEFORE
}

/// A Slack timestamp ("seconds.micros") for an instant.
fn slack_ts(at: DateTime<Utc>) -> String {
    format!("{}.{:06}", at.timestamp(), at.timestamp_subsec_micros())
}

impl Delivery for SlackDelivery {
    fn deliver<'a>(&'a self, message: &'a OutboundMessage) -> DeliveryFuture<'a, String> {
        Box::pin(self.post(message))
    }

    fn find_delivered<'a>(
        &'a self,
        message: &'a OutboundMessage,
        attempted_at: DateTime<Utc>,
    ) -> DeliveryFuture<'a, Option<String>> {
        Box::pin(self.find(message, attempted_at))
    }
}

impl SlackDelivery {
    /// chat.postMessage to the channel, or to the member's id (Slack opens the direct conversation).
    async fn post(&self, message: &OutboundMessage) -> Result<String, DeliveryError> {
        let token = self.token(message).await?;
        let body = render::message(&message.message);
        let metadata =
            MessageMetadata { event_type: OUTBOX_EVENT.into(), event_payload: json!({ "outbox_id": message.id.0 }) };
        self.slack
            .client
            .post_message(&token, &message.address, &body, Some(&metadata))
            .await
            .map(|posted| posted.ts)
            .map_err(delivery_error)
    }

    /// Reads the channel's history over the few seconds in which the attempt could have posted
    /// (from a little before it began until its request had certainly timed out), page by page, and
    /// looks for the outbox id the post carries. The window stays small however busy the channel
    /// is, so the post is found behind any number of newer messages, and the pages stay within the
    /// history limits Slack sets for apps outside its Marketplace (15 messages a call).
    async fn find(
        &self,
        message: &OutboundMessage,
        attempted_at: DateTime<Utc>,
    ) -> Result<Option<String>, DeliveryError> {
        let token = self.token(message).await?;
        let oldest = slack_ts(attempted_at - WINDOW_BEFORE);
        let latest = slack_ts(attempted_at + window_after());
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_HISTORY_PAGES {
            let window =
                HistoryWindow { oldest: &oldest, latest: &latest, limit: HISTORY_PAGE, cursor: cursor.as_deref() };
            let page =
                self.slack.client.channel_history(&token, &message.address, &window).await.map_err(delivery_error)?;
            let found = page.messages.into_iter().find(|posted| {
                posted.metadata.as_ref().is_some_and(|m| {
                    m.event_type == OUTBOX_EVENT && m.event_payload["outbox_id"].as_i64() == Some(message.id.0)
                })
            });
            if let Some(posted) = found {
                return Ok(Some(posted.ts));
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(None),
            }
        }
        // More messages in a minute than any team writes: say so rather than guess.
        Err(DeliveryError::temporary(format!(
            "more than {} messages around the attempt; the post is looked up again later",
            MAX_HISTORY_PAGES * HISTORY_PAGE as usize
        )))
    }
}
