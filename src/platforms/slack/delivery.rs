//! The outbox's deliveries to Slack: chat.postMessage with message metadata carrying the outbox
//! id, and conversations.history to find a post whose outcome was unknown.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::json;

use super::Slack;
use super::api::{MessageMetadata, SlackApiError};
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
        message: error.to_string(),
    }
}

impl Delivery for SlackDelivery {
    fn deliver<'a>(&'a self, message: &'a OutboundMessage) -> DeliveryFuture<'a, String> {
        Box::pin(self.post(message))
    }

    fn find_delivered<'a>(&'a self, message: &'a OutboundMessage) -> DeliveryFuture<'a, Option<String>> {
        Box::pin(self.find(message))
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

    async fn find(&self, message: &OutboundMessage) -> Result<Option<String>, DeliveryError> {
        let token = self.token(message).await?;
        // A second before the row was made, so clock skew cannot hide the post.
        let oldest = format!("{}.000000", message.created_at.timestamp() - 1);
        let history =
            self.slack.client.channel_history(&token, &message.address, &oldest, 200).await.map_err(delivery_error)?;
        Ok(history
            .into_iter()
            .find(|posted| {
                posted.metadata.as_ref().is_some_and(|m| {
                    m.event_type == OUTBOX_EVENT && m.event_payload["outbox_id"].as_i64() == Some(message.id.0)
                })
            })
            .map(|posted| posted.ts))
    }
}
