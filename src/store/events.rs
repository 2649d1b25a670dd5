//! The event log: appended by every change, read by the digest.

use super::*;

/// kind, subject, actor, data, at
pub(super) type EventRow = (String, Option<String>, Option<i64>, String, i64);

impl Tx {
    // ----- event log ----------------------------------------------------------------------------

    /// Appends to the event log; every change a command makes writes one.
    pub async fn append_event(
        &mut self,
        ws: WorkspaceId,
        event: &NewEvent<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "INSERT INTO events (workspace_id, channel_id, actor_id, kind, subject, data, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(ws.0)
            .bind(event.channel.map(|c| c.0))
            .bind(event.actor.map(|m| m.0))
            .bind(event.kind.as_str())
            .bind(event.subject.as_deref())
            .bind(event.data.to_string())
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// The channel's events at or after `since`, oldest first.
    pub async fn events_since(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        since: DateTime<Utc>,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows: Vec<EventRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT kind, subject, actor_id, data, at FROM events \
                 WHERE workspace_id = $1 AND channel_id = $2 AND at >= $3 ORDER BY id",
            )
            .bind(ws.0)
            .bind(channel.0)
            .bind(to_millis(since))
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(event_record).collect()
    }
}

/// An event as stored, read back.
pub(super) fn event_record((kind, subject, actor, data, at): EventRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        kind: EventKind::from_stored(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown event kind {kind:?}")))?,
        subject,
        actor: actor.map(MemberId),
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
        at: from_millis(at),
    })
}
