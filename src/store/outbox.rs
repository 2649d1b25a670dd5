//! The outbox: posts owed, claimed, delivered, retried, reconciled. A post carries its platform and a
//! typed recipient (a channel, or one member privately); the recipient's platform id is looked up
//! when the post is claimed, so nothing here knows how a platform addresses anyone.

use super::*;

/// The columns of a post as the sender sees it, with its recipient's platform id.
const OUTBOX_COLUMNS: &str = "o.id, o.workspace_id, o.platform, o.channel_id, o.member_id, \
     COALESCE(m.external_id, c.external_id, '') AS address, o.idempotency_key, o.message, o.attempts, \
     o.first_attempt_at, o.claimed_at, o.unknown_outcome_at, o.created_at, c.unreachable_since AS channel_unreachable_since \
     FROM outbound_messages o LEFT JOIN channels c ON c.id = o.channel_id LEFT JOIN members m ON m.id = o.member_id";

impl Tx {
    /// Queues a post the bot owes in `channel` (to the channel itself, or privately to a member);
    /// false when a post with this idempotency key was queued before (a job that runs twice owes it
    /// once). The sender is woken when this transaction commits.
    pub async fn enqueue_message(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        recipient: Recipient,
        idempotency_key: &str,
        message: &Message,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let member = match recipient {
            Recipient::Member(member) => Some(member.0),
            Recipient::Channel(_) => None,
        };
        // Every recipient has a pacing row, so claiming can lock it (see claim_due_messages).
        const PG_ENQUEUE: &str = "WITH paced AS (INSERT INTO delivery_pacing (workspace_id, recipient, next_allowed_at) \
             VALUES ($1, $4, 0) ON CONFLICT (workspace_id, recipient) DO NOTHING) \
             INSERT INTO outbound_messages (workspace_id, platform, channel_id, member_id, recipient, idempotency_key, \
             message, status, attempts, next_attempt_at, created_at) \
             SELECT $1, w.platform, $2, $3, $4, $5, $6, 'pending', 0, $7, $7 FROM workspaces w WHERE w.id = $1 \
             ON CONFLICT (idempotency_key) DO NOTHING";
        const SQLITE_ENQUEUE: &str = "INSERT INTO outbound_messages (workspace_id, platform, channel_id, member_id, \
             recipient, idempotency_key, message, status, attempts, next_attempt_at, created_at) \
             SELECT $1, w.platform, $2, $3, $4, $5, $6, 'pending', 0, $7, $7 FROM workspaces w WHERE w.id = $1 \
             ON CONFLICT (idempotency_key) DO NOTHING";
        let inserted = on_conn!(write self, |c, pg| {
            if !pg {
                sqlx::query(
                    "INSERT INTO delivery_pacing (workspace_id, recipient, next_allowed_at) VALUES ($1, $2, 0) \
                     ON CONFLICT (workspace_id, recipient) DO NOTHING",
                )
                .bind(ws.0)
                .bind(recipient.key())
                .execute(&mut *c)
                .await?;
            }
            sqlx::query(if pg { PG_ENQUEUE } else { SQLITE_ENQUEUE })
                .bind(ws.0)
                .bind(channel.0)
                .bind(member)
                .bind(recipient.key())
                .bind(idempotency_key)
                .bind(&json)
                .bind(to_millis(now))
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        if inserted == 1 {
            self.queued_posts = true;
        }
        Ok(inserted == 1)
    }

    /// On Postgres, tells every replica's sender that posts were queued (delivered at commit).
    pub async fn announce_queued_posts(&mut self) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
            if pg {
                sqlx::query("SELECT pg_notify($1, '')").bind(OUTBOX_CHANNEL).execute(&mut *c).await?;
            }
        });
        Ok(())
    }

    /// Claims due posts, at most one per recipient and only for recipients whose pace allows a
    /// post now, marks them sending, and moves each recipient's next slot `pace` later. On Postgres
    /// the pacing slots are locked with SKIP LOCKED, so replicas never claim the same post or post
    /// twice to one recipient within the pace.
    pub async fn claim_due_messages(
        &mut self,
        now: DateTime<Utc>,
        pace: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<OutboundMessage>, StoreError> {
        const PG_CLAIM: &str = "WITH due AS (SELECT workspace_id, recipient, MIN(id) AS id FROM outbound_messages \
             WHERE status = 'pending' AND next_attempt_at <= $1 GROUP BY workspace_id, recipient), \
             busy AS (SELECT DISTINCT workspace_id, recipient FROM outbound_messages WHERE status = 'sending'), \
             paced AS (SELECT due.id, p.workspace_id, p.recipient FROM delivery_pacing p \
             JOIN due ON due.workspace_id = p.workspace_id AND due.recipient = p.recipient \
             WHERE p.next_allowed_at <= $1 AND NOT EXISTS (SELECT 1 FROM busy \
             WHERE busy.workspace_id = due.workspace_id AND busy.recipient = due.recipient) \
             ORDER BY due.id LIMIT $2 FOR UPDATE OF p SKIP LOCKED), \
             moved AS (UPDATE delivery_pacing p SET next_allowed_at = $3 FROM paced \
             WHERE p.workspace_id = paced.workspace_id AND p.recipient = paced.recipient), \
             claimed AS (UPDATE outbound_messages o SET status = 'sending', attempts = attempts + 1, claimed_at = $1, \
             first_attempt_at = COALESCE(o.first_attempt_at, $1) \
             FROM paced WHERE o.id = paced.id AND o.status = 'pending' RETURNING o.*) \
             SELECT o.id, o.workspace_id, o.platform, o.channel_id, o.member_id, \
             COALESCE(m.external_id, c.external_id, '') AS address, o.idempotency_key, o.message, o.attempts, \
             o.first_attempt_at, o.claimed_at, o.unknown_outcome_at, o.created_at, \
             c.unreachable_since AS channel_unreachable_since FROM claimed o LEFT JOIN channels c ON c.id = o.channel_id \
             LEFT JOIN members m ON m.id = o.member_id ORDER BY o.id";
        const SQLITE_DUE: &str = "SELECT MIN(o.id) FROM outbound_messages o JOIN delivery_pacing p \
             ON p.workspace_id = o.workspace_id AND p.recipient = o.recipient \
             WHERE o.status = 'pending' AND o.next_attempt_at <= $1 AND p.next_allowed_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM outbound_messages s WHERE s.status = 'sending' \
             AND s.workspace_id = o.workspace_id AND s.recipient = o.recipient) \
             GROUP BY o.workspace_id, o.recipient ORDER BY MIN(o.id) LIMIT $2";
        let rows: Vec<OutboxRow> = on_conn!(write self, |c, pg| {
            if pg {
                sqlx::query_as(PG_CLAIM)
                    .bind(to_millis(now))
                    .bind(limit)
                    .bind(to_millis(now + pace))
                    .fetch_all(&mut *c)
                    .await?
            } else {
                // One writer at a time on SQLite, so reading, then updating, claims safely.
                let ids: Vec<i64> = sqlx::query_scalar(SQLITE_DUE).bind(to_millis(now)).bind(limit).fetch_all(&mut *c).await?;
                let list = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
                sqlx::query(
                    "UPDATE outbound_messages SET status = 'sending', attempts = attempts + 1, claimed_at = $1, \
                     first_attempt_at = COALESCE(first_attempt_at, $1) WHERE id IN (SELECT value FROM json_each($2))",
                )
                .bind(to_millis(now))
                .bind(&list)
                .execute(&mut *c)
                .await?;
                sqlx::query(
                    "UPDATE delivery_pacing SET next_allowed_at = $1 WHERE (workspace_id, recipient) IN \
                     (SELECT workspace_id, recipient FROM outbound_messages WHERE id IN (SELECT value FROM json_each($2)))",
                )
                .bind(to_millis(now + pace))
                .bind(&list)
                .execute(&mut *c)
                .await?;
                sqlx::query_as(cached_sql!(
                    "SELECT ",
                    OUTBOX_COLUMNS,
                    " WHERE o.id IN (SELECT value FROM json_each($1)) ORDER BY o.id"
                ))
                .bind(&list)
                .fetch_all(&mut *c)
                .await?
            }
        });
        rows.into_iter().map(OutboxRow::into_record).collect()
    }

    pub async fn message_delivered(
        &mut self,
        id: OutboundId,
        platform_message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE outbound_messages SET status = 'sent', platform_message_id = $2, sent_at = $3, last_error = NULL \
                 WHERE id = $1",
            )
            .bind(id.0)
            .bind(platform_message_id)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Records a failed attempt: pending again at `retry_at`, or dead when there is no retry.
    pub async fn message_failed(
        &mut self,
        id: OutboundId,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let (status, next) = match retry_at {
            Some(at) => ("pending", Some(to_millis(at))),
            None => ("dead", None),
        };
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE outbound_messages SET status = $2, last_error = $3, \
                 next_attempt_at = COALESCE($4, next_attempt_at), unknown_outcome_at = NULL WHERE id = $1",
            )
            .bind(id.0)
            .bind(status)
            .bind(error)
            .bind(next)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Records an attempt whose answer was lost (a timeout, a reset, a 5xx): the post may have landed,
    /// so it is pending again at `look_up_at`, and the sender looks for it on the platform, around
    /// `attempted_at`, before it posts again.
    pub async fn message_outcome_unknown(
        &mut self,
        id: OutboundId,
        error: &str,
        attempted_at: DateTime<Utc>,
        look_up_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE outbound_messages SET status = 'pending', last_error = $2, next_attempt_at = $3, \
                 unknown_outcome_at = $4 WHERE id = $1",
            )
            .bind(id.0)
            .bind(error)
            .bind(to_millis(look_up_at))
            .bind(to_millis(attempted_at))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Records an attempt the platform refused with a rate limit: pending again at `retry_at`, and
    /// the attempt does not count, so sustained limits delay a post but never kill it.
    pub async fn message_rate_limited(
        &mut self,
        id: OutboundId,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE outbound_messages SET status = 'pending', last_error = $2, next_attempt_at = $3, \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE id = $1",
            )
            .bind(id.0)
            .bind(error)
            .bind(to_millis(retry_at))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Records an attempt the recipient refused because nudge may not post there yet (it was not
    /// invited): pending again at `until`, and the attempt does not count toward giving up; the
    /// hour before a post is given up starts again when it is next tried.
    pub async fn message_held(&mut self, id: OutboundId, error: &str, until: DateTime<Utc>) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE outbound_messages SET status = 'pending', last_error = $2, next_attempt_at = $3, \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, first_attempt_at = NULL WHERE id = $1",
            )
            .bind(id.0)
            .bind(error)
            .bind(to_millis(until))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Marks a channel as refusing nudge's posts since `now`. Returns the channel's name only when
    /// it was not marked already: the one transaction, on any replica, that should tell someone.
    pub async fn mark_channel_unreachable(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let name: Option<String> = on_conn!(write self, |c, pg| {
            sqlx::query_scalar(
                "UPDATE channels SET unreachable_since = $3 \
                 WHERE workspace_id = $1 AND id = $2 AND unreachable_since IS NULL \
                 RETURNING CASE WHEN name = '' THEN external_id ELSE name END",
            )
            .bind(ws.0)
            .bind(channel.0)
            .bind(to_millis(now))
            .fetch_optional(&mut *c)
            .await?
        });
        Ok(name)
    }

    /// A post reached the channel again: the next refusal is news worth telling.
    pub async fn mark_channel_reachable(&mut self, ws: WorkspaceId, channel: ChannelId) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query("UPDATE channels SET unreachable_since = NULL WHERE workspace_id = $1 AND id = $2")
                .bind(ws.0)
                .bind(channel.0)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// The member behind the channel's newest event that has one: the last to use a command there.
    pub async fn last_commander(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
    ) -> Result<Option<MemberId>, StoreError> {
        let member: Option<i64> = on_conn!(self, |c, pg| {
            sqlx::query_scalar(
                "SELECT actor_id FROM events WHERE workspace_id = $1 AND channel_id = $2 AND actor_id IS NOT NULL \
                 ORDER BY at DESC, id DESC LIMIT 1",
            )
            .bind(ws.0)
            .bind(channel.0)
            .fetch_optional(&mut *c)
            .await?
        });
        Ok(member.map(MemberId))
    }

    /// Holds every post to one recipient until `until` (a 429's Retry-After), others unaffected.
    pub async fn delay_recipient(
        &mut self,
        ws: WorkspaceId,
        recipient: Recipient,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE delivery_pacing SET next_allowed_at = $3 \
                 WHERE workspace_id = $1 AND recipient = $2 AND next_allowed_at < $3",
            )
            .bind(ws.0)
            .bind(recipient.key())
            .bind(to_millis(until))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// When the sender next has something to do: the earliest instant a pending post may go, given
    /// its retry time and its recipient's pace. `None` when nothing is pending. A recipient with a
    /// post in flight does not count (its next post waits for that one, and the sender wakes when
    /// it is done), or the sender would spin on a post it may not claim.
    pub async fn next_delivery_at(&mut self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = on_conn!(self, |c, pg| {
            sqlx::query_scalar(
                "SELECT MIN(CASE WHEN p.next_allowed_at > o.next_attempt_at THEN p.next_allowed_at \
                 ELSE o.next_attempt_at END) FROM outbound_messages o JOIN delivery_pacing p \
                 ON p.workspace_id = o.workspace_id AND p.recipient = o.recipient WHERE o.status = 'pending' \
                 AND NOT EXISTS (SELECT 1 FROM outbound_messages s WHERE s.status = 'sending' \
                 AND s.workspace_id = o.workspace_id AND s.recipient = o.recipient)",
            )
            .fetch_one(&mut *c)
            .await?
        });
        Ok(at.map(from_millis))
    }

    /// Posts left "sending" since before `claimed_before`: their outcome is unknown (a crash, a
    /// timeout), so they are reconciled with the platform before any retry.
    pub async fn stale_sending_messages(
        &mut self,
        claimed_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboundMessage>, StoreError> {
        let rows: Vec<OutboxRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                OUTBOX_COLUMNS,
                " WHERE o.status = 'sending' AND o.claimed_at < $1 ORDER BY o.id LIMIT $2"
            ))
            .bind(to_millis(claimed_before))
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(OutboxRow::into_record).collect()
    }

    /// When the oldest post left "sending" was claimed: the sender looks it up once it is stale.
    pub async fn oldest_sending_claim(&mut self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = on_conn!(self, |c, pg| {
            sqlx::query_scalar("SELECT MIN(claimed_at) FROM outbound_messages WHERE status = 'sending'")
                .fetch_one(&mut *c)
                .await?
        });
        Ok(at.map(from_millis))
    }

    /// A post of unknown outcome that could not be looked up yet: looked up again once it is stale
    /// again, not in every round.
    pub async fn reconcile_later(&mut self, id: OutboundId, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query("UPDATE outbound_messages SET claimed_at = $2 WHERE id = $1 AND status = 'sending'")
                .bind(id.0)
                .bind(to_millis(now))
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Puts dead posts back in the queue, as if just owed: pending, no attempts, due `now`. Only
    /// dead posts: a post that went out is never sent again this way. Returns how many were requeued.
    pub async fn retry_dead_messages(&mut self, which: DeadPosts, now: DateTime<Utc>) -> Result<u64, StoreError> {
        const RETRY: &str = "UPDATE outbound_messages SET status = 'pending', attempts = 0, first_attempt_at = NULL, \
             next_attempt_at = $1 WHERE status = 'dead'";
        let requeued = on_conn!(write self, |c, pg| {
            match which {
                DeadPosts::One(id) => sqlx::query(cached_sql!(RETRY, " AND id = $2")).bind(to_millis(now)).bind(id.0),
                DeadPosts::All => sqlx::query(RETRY).bind(to_millis(now)),
            }
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if requeued > 0 {
            self.queued_posts = true;
        }
        Ok(requeued)
    }

    /// The channel's target-hit announcements that died in the outbox, with their experiments:
    /// the next batch of wins carries them, so a target hit is never lost.
    pub async fn dead_target_hits(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
    ) -> Result<Vec<(OutboundId, ExperimentRef)>, StoreError> {
        let rows: Vec<(i64, String)> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT id, idempotency_key FROM outbound_messages WHERE workspace_id = $1 AND channel_id = $2 \
                 AND member_id IS NULL AND status = 'dead' AND idempotency_key LIKE 'target_hit:%' ORDER BY id",
            )
            .bind(ws.0)
            .bind(channel.0)
            .fetch_all(&mut *c)
            .await?
        });
        // The key is "target_hit:<workspace>:<E-n>:<reading>"; older posts' keys end at the experiment.
        Ok(rows
            .into_iter()
            .filter_map(|(id, key)| Some((OutboundId(id), key.split(':').nth(2)?.parse().ok()?)))
            .collect())
    }

    /// Dead posts whose news went out in a later post: "folded", so they are neither counted as
    /// lost nor retried by `nudge outbox retry --dead`.
    pub async fn fold_dead_posts(&mut self, ws: WorkspaceId, posts: &[OutboundId]) -> Result<(), StoreError> {
        for post in posts {
            on_conn!(write self, |c, pg| {
                sqlx::query(
                    "UPDATE outbound_messages SET status = 'folded', last_error = 'told in a later batch of wins' \
                     WHERE workspace_id = $1 AND id = $2 AND status = 'dead'",
                )
                .bind(ws.0)
                .bind(post.0)
                .execute(&mut *c)
                .await?;
            });
        }
        Ok(())
    }

    /// A post's status (pending, sending, sent, dead, folded), or `None` when there is no such post.
    pub async fn outbound_status(&mut self, id: OutboundId) -> Result<Option<String>, StoreError> {
        let status: Option<String> = on_conn!(self, |c, pg| {
            sqlx::query_scalar("SELECT status FROM outbound_messages WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(status)
    }

    /// Puts an unknown-outcome post back in the queue (it was not found on the platform).
    pub async fn requeue_message(&mut self, id: OutboundId, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE outbound_messages SET status = 'pending', next_attempt_at = $2 WHERE id = $1 AND status = 'sending'",
            )
            .bind(id.0)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// The platform's id for a workspace (a Slack team id, a Teams tenant id), to find its token
    /// when delivering.
    pub async fn workspace_external_id(&mut self, ws: WorkspaceId) -> Result<Option<String>, StoreError> {
        let found: Option<String> = on_conn!(self, |c, pg| {
            sqlx::query_scalar("SELECT external_id FROM workspaces WHERE id = $1")
                .bind(ws.0)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(found)
    }

    /// A workspace's posts in the order they were owed, whatever their status.
    pub async fn outbox_messages(&mut self, ws: WorkspaceId) -> Result<Vec<OutboundMessage>, StoreError> {
        let rows: Vec<OutboxRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!("SELECT ", OUTBOX_COLUMNS, " WHERE o.workspace_id = $1 ORDER BY o.id"))
                .bind(ws.0)
                .fetch_all(&mut *c)
                .await?
        });
        rows.into_iter().map(OutboxRow::into_record).collect()
    }

    /// Counts by status, and the dead posts with their reasons, for operators (`nudge outbox`).
    pub async fn outbox_report(&mut self, dead_limit: i64) -> Result<OutboxReport, StoreError> {
        let counts: Vec<(String, i64)> = on_conn!(self, |c, pg| {
            sqlx::query_as("SELECT status, COUNT(*) FROM outbound_messages GROUP BY status").fetch_all(&mut *c).await?
        });
        let dead: Vec<(i64, i64, String, String, i32, Option<String>)> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT o.id, o.workspace_id, o.platform, COALESCE(m.external_id, c.external_id, ''), o.attempts, \
                 o.last_error FROM outbound_messages o LEFT JOIN channels c ON c.id = o.channel_id \
                 LEFT JOIN members m ON m.id = o.member_id WHERE o.status = 'dead' ORDER BY o.id DESC LIMIT $1",
            )
            .bind(dead_limit)
            .fetch_all(&mut *c)
            .await?
        });
        let count = |status: &str| counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        Ok(OutboxReport {
            pending: count("pending"),
            sending: count("sending"),
            sent: count("sent"),
            dead: count("dead"),
            dead_posts: dead
                .into_iter()
                .map(|(id, ws, platform, address, attempts, error)| DeadPost {
                    id: OutboundId(id),
                    workspace_id: WorkspaceId(ws),
                    platform,
                    address,
                    attempts: attempts.max(0) as u32,
                    last_error: error.unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// How many rows the workspace has in each table: lets tests prove a failed command wrote nothing.
    pub async fn row_counts(&mut self, ws: WorkspaceId) -> Result<RowCounts, StoreError> {
        let (experiments, readings, pledges, votes, events): (i64, i64, i64, i64, i64) = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM experiments WHERE workspace_id = $1), \
                 (SELECT COUNT(*) FROM readings WHERE workspace_id = $1), \
                 (SELECT COUNT(*) FROM pledges WHERE workspace_id = $1), \
                 (SELECT COUNT(*) FROM votes WHERE workspace_id = $1), \
                 (SELECT COUNT(*) FROM events WHERE workspace_id = $1)",
            )
            .bind(ws.0)
            .fetch_one(&mut *c)
            .await?
        });
        Ok(RowCounts { experiments, readings, pledges, votes, events })
    }
}
