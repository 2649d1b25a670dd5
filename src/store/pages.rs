//! What the scheduler and the sender do for many channels or posts at once: on Postgres one
//! statement per kind, with the rows passed as arrays, so a page of 200 check-ins costs a handful
//! of round trips; on SQLite a statement per row, which one local writer does just as quickly.
//! Every read is scoped by (workspace, channel) pairs taken from the rows being worked on.

use std::collections::{HashMap, HashSet};

use super::events::event_record;
use super::*;

/// One post for [`Tx::enqueue_messages`].
pub struct NewPost<'a> {
    pub workspace: WorkspaceId,
    pub channel: ChannelId,
    pub recipient: Recipient,
    pub idempotency_key: String,
    pub message: &'a Message,
}

/// What check-ins of many channels show, read at once, by channel.
#[derive(Default)]
pub struct CheckInReads {
    /// Running experiments, newest first.
    pub running: HashMap<ChannelId, Vec<ExperimentRecord>>,
    /// Readings of the running experiments asked for, oldest first.
    pub readings: HashMap<ExperimentId, Vec<f64>>,
    /// Open (and broken) pledges, soonest due first.
    pub pledges: HashMap<ChannelId, Vec<PledgeRecord>>,
    /// Proposed experiments, most votes first.
    pub backlog: HashMap<ChannelId, Vec<ExperimentRecord>>,
}

/// channel, kind, subject, actor, data, at
type ChannelEventRow = (i64, String, Option<String>, Option<i64>, String, i64);

/// Most rows of one kind a channel contributes to a check-in.
const PER_CHANNEL: usize = 100;

fn pairs(channels: &[(WorkspaceId, ChannelId)]) -> (Vec<i64>, Vec<i64>) {
    channels.iter().map(|(ws, channel)| (ws.0, channel.0)).unzip()
}

fn by_channel<T>(rows: impl IntoIterator<Item = (ChannelId, T)>) -> HashMap<ChannelId, Vec<T>> {
    let mut grouped: HashMap<ChannelId, Vec<T>> = HashMap::new();
    for (channel, row) in rows {
        let list = grouped.entry(channel).or_default();
        if list.len() < PER_CHANNEL {
            list.push(row);
        }
    }
    grouped
}

impl Tx {
    /// Claims many occurrences at once under their unique keys; true for each one that is ours
    /// (false when another replica, or an earlier tick, had it).
    pub async fn record_occurrences(
        &mut self,
        occurrences: &[(WorkspaceId, NewOccurrence<'_>)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        if occurrences.is_empty() {
            return Ok(Vec::new());
        }
        if self.is_sqlite() {
            let mut ours = Vec::with_capacity(occurrences.len());
            for (ws, occurrence) in occurrences {
                ours.push(self.record_occurrence(*ws, occurrence, now).await?);
            }
            return Ok(ours);
        }
        let ws: Vec<i64> = occurrences.iter().map(|(ws, _)| ws.0).collect();
        let channels: Vec<i64> = occurrences.iter().map(|(_, o)| o.channel.0).collect();
        let jobs: Vec<&str> = occurrences.iter().map(|(_, o)| o.job).collect();
        let due: Vec<i64> = occurrences.iter().map(|(_, o)| to_millis(o.due_at)).collect();
        let outcomes: Vec<&str> = occurrences.iter().map(|(_, o)| o.outcome).collect();
        let reasons: Vec<Option<&str>> = occurrences.iter().map(|(_, o)| o.reason).collect();
        let inserted: Vec<(i64, String, i64)> = on_postgres!(write self, |c| {
            sqlx::query_as(
                "INSERT INTO occurrences (workspace_id, channel_id, job, due_at, outcome, reason, created_at) \
                 SELECT w, c, j, d, o, r, $7 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], \
                 $5::text[], $6::text[]) AS t(w, c, j, d, o, r) \
                 ON CONFLICT (channel_id, job, due_at) DO NOTHING RETURNING channel_id, job, due_at",
            )
            .bind(&ws)
            .bind(&channels)
            .bind(&jobs)
            .bind(&due)
            .bind(&outcomes)
            .bind(&reasons)
            .bind(to_millis(now))
            .fetch_all(&mut *c)
            .await?
        });
        let ours: HashSet<(i64, String, i64)> = inserted.into_iter().collect();
        Ok(occurrences
            .iter()
            .map(|(_, o)| ours.contains(&(o.channel.0, o.job.to_string(), to_millis(o.due_at))))
            .collect())
    }

    /// Everything the check-ins of these channels show.
    pub async fn checkin_reads(&mut self, channels: &[(WorkspaceId, ChannelId)]) -> Result<CheckInReads, StoreError> {
        let mut reads = CheckInReads::default();
        if channels.is_empty() {
            return Ok(reads);
        }
        if self.is_sqlite() {
            for (ws, channel) in channels {
                let running = self.experiments_in_channel(*ws, *channel, &[ExperimentStatus::Running], 100).await?;
                for experiment in running.iter().take(crate::message::build::CHECKIN_ITEMS) {
                    let values = self.readings(*ws, experiment.id).await?.into_iter().map(|r| r.value).collect();
                    reads.readings.insert(experiment.id, values);
                }
                reads.running.insert(*channel, running);
                reads.pledges.insert(*channel, self.open_pledges_in_channel(*ws, *channel, 100).await?);
                reads.backlog.insert(*channel, self.backlog(*ws, *channel, 3).await?);
            }
            return Ok(reads);
        }
        let (ws, ids) = pairs(channels);
        let experiments: Vec<ExperimentRow> = on_postgres!(self, |c| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                EXPERIMENT_COLUMNS,
                " WHERE e.status IN ('running', 'proposed') AND (e.workspace_id, e.channel_id) IN \
                 (SELECT * FROM UNNEST($1::bigint[], $2::bigint[])) ORDER BY e.channel_id, e.number DESC"
            ))
            .bind(&ws)
            .bind(&ids)
            .fetch_all(&mut *c)
            .await?
        });
        let mut running = Vec::new();
        let mut proposed = Vec::new();
        for row in experiments {
            let experiment = row.into_record()?;
            match experiment.status {
                ExperimentStatus::Running => running.push((experiment.channel_id, experiment)),
                _ => proposed.push((experiment.channel_id, experiment)),
            }
        }
        reads.running = by_channel(running);
        let mut backlog = by_channel(proposed);
        for list in backlog.values_mut() {
            list.sort_by(|a, b| b.votes.cmp(&a.votes).then(a.number.cmp(&b.number)));
            list.truncate(3);
        }
        reads.backlog = backlog;
        let workspace_of: HashMap<ChannelId, WorkspaceId> = channels.iter().map(|(ws, c)| (*c, *ws)).collect();
        let shown: Vec<(i64, i64)> = reads
            .running
            .values()
            .flat_map(|list| list.iter().take(crate::message::build::CHECKIN_ITEMS))
            .filter_map(|e| Some((workspace_of.get(&e.channel_id)?.0, e.id.0)))
            .collect();
        let (reading_ws, experiment_ids): (Vec<i64>, Vec<i64>) = shown.into_iter().unzip();
        let values: Vec<(i64, f64)> = on_postgres!(self, |c| {
            sqlx::query_as(
                "SELECT experiment_id, value FROM readings WHERE (workspace_id, experiment_id) IN \
                 (SELECT * FROM UNNEST($1::bigint[], $2::bigint[])) ORDER BY experiment_id, id",
            )
            .bind(&reading_ws)
            .bind(&experiment_ids)
            .fetch_all(&mut *c)
            .await?
        });
        for (experiment, value) in values {
            reads.readings.entry(ExperimentId(experiment)).or_default().push(value);
        }
        let pledges: Vec<PledgeRow> = on_postgres!(self, |c| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                PLEDGE_COLUMNS,
                " WHERE p.status IN ('open', 'broken') AND (p.workspace_id, p.channel_id) IN \
                 (SELECT * FROM UNNEST($1::bigint[], $2::bigint[])) ORDER BY p.channel_id, p.due_on, p.number"
            ))
            .bind(&ws)
            .bind(&ids)
            .fetch_all(&mut *c)
            .await?
        });
        let pledges: Vec<PledgeRecord> = pledges.into_iter().map(PledgeRow::into_record).collect::<Result<_, _>>()?;
        reads.pledges = by_channel(pledges.into_iter().map(|p| (p.channel_id, p)));
        Ok(reads)
    }

    /// The events of these channels at or after `since`, oldest first, by channel.
    pub async fn events_of_channels(
        &mut self,
        channels: &[(WorkspaceId, ChannelId)],
        since: DateTime<Utc>,
    ) -> Result<HashMap<ChannelId, Vec<EventRecord>>, StoreError> {
        if channels.is_empty() {
            return Ok(HashMap::new());
        }
        if self.is_sqlite() {
            let mut events = HashMap::new();
            for (ws, channel) in channels {
                events.insert(*channel, self.events_since(*ws, *channel, since).await?);
            }
            return Ok(events);
        }
        let (ws, ids) = pairs(channels);
        let rows: Vec<ChannelEventRow> = on_postgres!(self, |c| {
            sqlx::query_as(
                "SELECT channel_id, kind, subject, actor_id, data, at FROM events WHERE at >= $3 AND \
                 (workspace_id, channel_id) IN (SELECT * FROM UNNEST($1::bigint[], $2::bigint[])) ORDER BY id",
            )
            .bind(&ws)
            .bind(&ids)
            .bind(to_millis(since))
            .fetch_all(&mut *c)
            .await?
        });
        let mut events: HashMap<ChannelId, Vec<EventRecord>> = HashMap::new();
        for (channel, kind, subject, actor, data, at) in rows {
            events.entry(ChannelId(channel)).or_default().push(event_record((kind, subject, actor, data, at))?);
        }
        Ok(events)
    }

    /// Pledges by their row ids, for the reminders a page fires.
    pub async fn pledges_by_ids(
        &mut self,
        pledges: &[(WorkspaceId, PledgeId)],
    ) -> Result<HashMap<PledgeId, PledgeRecord>, StoreError> {
        let mut found = HashMap::new();
        if pledges.is_empty() {
            return Ok(found);
        }
        if self.is_sqlite() {
            for (ws, id) in pledges {
                if let Some(pledge) = self.pledge_by_id(*ws, *id).await? {
                    found.insert(*id, pledge);
                }
            }
            return Ok(found);
        }
        let (ws, ids): (Vec<i64>, Vec<i64>) = pledges.iter().map(|(ws, id)| (ws.0, id.0)).unzip();
        let rows: Vec<PledgeRow> = on_postgres!(self, |c| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                PLEDGE_COLUMNS,
                " WHERE (p.workspace_id, p.id) IN (SELECT * FROM UNNEST($1::bigint[], $2::bigint[]))"
            ))
            .bind(&ws)
            .bind(&ids)
            .fetch_all(&mut *c)
            .await?
        });
        for row in rows {
            let pledge = row.into_record()?;
            found.insert(pledge.id, pledge);
        }
        Ok(found)
    }

    /// Queues many posts at once (see [`Tx::enqueue_message`]); posts queued before under the same
    /// idempotency key are left as they are.
    pub async fn enqueue_messages(&mut self, posts: &[NewPost<'_>], now: DateTime<Utc>) -> Result<(), StoreError> {
        if posts.is_empty() {
            return Ok(());
        }
        if self.is_sqlite() {
            for post in posts {
                self.enqueue_message(
                    post.workspace,
                    post.channel,
                    post.recipient,
                    &post.idempotency_key,
                    post.message,
                    now,
                )
                .await?;
            }
            return Ok(());
        }
        let mut json = Vec::with_capacity(posts.len());
        for post in posts {
            json.push(serde_json::to_string(post.message).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        let ws: Vec<i64> = posts.iter().map(|p| p.workspace.0).collect();
        let channels: Vec<i64> = posts.iter().map(|p| p.channel.0).collect();
        let members: Vec<Option<i64>> = posts
            .iter()
            .map(|p| match p.recipient {
                Recipient::Member(member) => Some(member.0),
                Recipient::Channel(_) => None,
            })
            .collect();
        let recipients: Vec<String> = posts.iter().map(|p| p.recipient.key()).collect();
        let keys: Vec<&str> = posts.iter().map(|p| p.idempotency_key.as_str()).collect();
        on_postgres!(write self, |c| {
            sqlx::query(
                "WITH posts AS (SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
                 $6::text[]) AS t(ws, channel, member, recipient, key, message)), \
                 paced AS (INSERT INTO delivery_pacing (workspace_id, recipient, next_allowed_at) \
                 SELECT DISTINCT ws, recipient, 0 FROM posts ON CONFLICT (workspace_id, recipient) DO NOTHING) \
                 INSERT INTO outbound_messages (workspace_id, platform, channel_id, member_id, recipient, \
                 idempotency_key, message, status, attempts, next_attempt_at, created_at) \
                 SELECT p.ws, w.platform, p.channel, p.member, p.recipient, p.key, p.message, 'pending', 0, $7, $7 \
                 FROM posts p JOIN workspaces w ON w.id = p.ws ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(&ws)
            .bind(&channels)
            .bind(&members)
            .bind(&recipients)
            .bind(&keys)
            .bind(&json)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?;
        });
        self.queued_posts = true;
        Ok(())
    }

    /// Moves many firings to their next instants, and removes those with none.
    pub async fn reschedule_firings(
        &mut self,
        firings: &[(ChannelId, String, Option<DateTime<Utc>>)],
    ) -> Result<(), StoreError> {
        if self.is_sqlite() {
            for (channel, job, next) in firings {
                self.reschedule_firing(*channel, job, *next).await?;
            }
            return Ok(());
        }
        let (moved, gone): (Vec<_>, Vec<_>) = firings.iter().partition(|(_, _, next)| next.is_some());
        if !moved.is_empty() {
            let channels: Vec<i64> = moved.iter().map(|(c, _, _)| c.0).collect();
            let jobs: Vec<&str> = moved.iter().map(|(_, j, _)| j.as_str()).collect();
            let due: Vec<i64> = moved.iter().map(|(_, _, d)| d.map(to_millis).unwrap_or_default()).collect();
            on_postgres!(write self, |c| {
                sqlx::query(
                    "UPDATE next_firings f SET due_at = t.d FROM UNNEST($1::bigint[], $2::text[], $3::bigint[]) \
                     AS t(c, j, d) WHERE f.channel_id = t.c AND f.job = t.j",
                )
                .bind(&channels)
                .bind(&jobs)
                .bind(&due)
                .execute(&mut *c)
                .await?;
            });
        }
        if !gone.is_empty() {
            let channels: Vec<i64> = gone.iter().map(|(c, _, _)| c.0).collect();
            let jobs: Vec<&str> = gone.iter().map(|(_, j, _)| j.as_str()).collect();
            on_postgres!(write self, |c| {
                sqlx::query(
                    "DELETE FROM next_firings WHERE (channel_id, job) IN \
                     (SELECT * FROM UNNEST($1::bigint[], $2::text[]))",
                )
                .bind(&channels)
                .bind(&jobs)
                .execute(&mut *c)
                .await?;
            });
        }
        Ok(())
    }

    /// Records many deliveries at once: each post sent, with the platform's id for it.
    pub async fn messages_delivered(
        &mut self,
        delivered: &[(OutboundId, String)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if delivered.is_empty() {
            return Ok(());
        }
        if self.is_sqlite() {
            for (id, platform_id) in delivered {
                self.message_delivered(*id, platform_id, now).await?;
            }
            return Ok(());
        }
        let ids: Vec<i64> = delivered.iter().map(|(id, _)| id.0).collect();
        let platform_ids: Vec<&str> = delivered.iter().map(|(_, p)| p.as_str()).collect();
        on_postgres!(write self, |c| {
            sqlx::query(
                "UPDATE outbound_messages o SET status = 'sent', platform_message_id = t.p, sent_at = $3, \
                 last_error = NULL FROM UNNEST($1::bigint[], $2::text[]) AS t(id, p) WHERE o.id = t.id",
            )
            .bind(&ids)
            .bind(&platform_ids)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    fn is_sqlite(&self) -> bool {
        matches!(self.conn, TxConn::Sqlite(_))
    }
}
