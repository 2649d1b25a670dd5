//! What the scheduler reads and records: channels to tick and the occurrences it claims.

use chrono_tz::Tz;

use super::*;
use crate::domain::firings::ChannelJob;

/// The next-firing job of a pledge: one row per open pledge.
fn pledge_job(pledge: PledgeId) -> String {
    format!("pledge:{}", pledge.0)
}

impl Tx {
    // ----- next firings ------------------------------------------------------------------------

    /// Sets the next firing of each of a channel's jobs. A firing already due is kept as it is, so a
    /// setting changed just as a job came due does not lose it.
    pub async fn set_channel_firings(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        firings: &[(ChannelJob, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for (job, due_at) in firings {
            on_conn!(write self, |c, pg| {
                sqlx::query(
                    "INSERT INTO next_firings (channel_id, job, workspace_id, due_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (channel_id, job) DO UPDATE SET due_at = excluded.due_at \
                     WHERE next_firings.due_at > $5",
                )
                .bind(channel.0)
                .bind(job.name())
                .bind(ws.0)
                .bind(to_millis(*due_at))
                .bind(to_millis(now))
                .execute(&mut *c)
                .await?;
            });
        }
        Ok(())
    }

    /// Sets when an open pledge's next reminder stage comes due; `None` removes it (the pledge was
    /// kept, released or told to the channel, or it is a year past its date).
    pub async fn set_pledge_firing(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        pledge: PledgeId,
        due_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let job = pledge_job(pledge);
        on_conn!(write self, |c, pg| {
            match due_at {
                Some(at) => sqlx::query(
                    "INSERT INTO next_firings (channel_id, job, workspace_id, pledge_id, due_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel_id, job) DO UPDATE SET due_at = excluded.due_at",
                )
                .bind(channel.0)
                .bind(&job)
                .bind(ws.0)
                .bind(pledge.0)
                .bind(to_millis(at))
                .execute(&mut *c)
                .await?,
                None => sqlx::query("DELETE FROM next_firings WHERE workspace_id = $1 AND channel_id = $2 AND job = $3")
                    .bind(ws.0)
                    .bind(channel.0)
                    .bind(&job)
                    .execute(&mut *c)
                    .await?,
            };
        });
        Ok(())
    }

    /// Sets when an experiment's owner hears that its review date has come; `None` removes it (the
    /// experiment closed, or has no review date any more).
    pub async fn set_review_firing(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        experiment: ExperimentId,
        due_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let job = format!("review:{}", experiment.0);
        on_conn!(write self, |c, pg| {
            match due_at {
                Some(at) => sqlx::query(
                    "INSERT INTO next_firings (channel_id, job, workspace_id, experiment_id, due_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel_id, job) DO UPDATE SET due_at = excluded.due_at",
                )
                .bind(channel.0)
                .bind(&job)
                .bind(ws.0)
                .bind(experiment.0)
                .bind(to_millis(at))
                .execute(&mut *c)
                .await?,
                None => sqlx::query("DELETE FROM next_firings WHERE workspace_id = $1 AND experiment_id = $2")
                    .bind(ws.0)
                    .bind(experiment.0)
                    .execute(&mut *c)
                    .await?,
            };
        });
        Ok(())
    }

    /// The instant through which the channel's wins have been celebrated: a batch celebrates only
    /// what happened after it, so no change of schedule or zone celebrates a win twice.
    pub async fn celebrated_through(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
    ) -> Result<DateTime<Utc>, StoreError> {
        let through: Option<i64> = on_conn!(self, |c, pg| {
            sqlx::query_scalar("SELECT celebrated_through FROM channels WHERE workspace_id = $1 AND id = $2")
                .bind(ws.0)
                .bind(channel.0)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(from_millis(through.unwrap_or_default()))
    }

    /// Records that the channel's wins up to `through` were celebrated; the mark never moves back.
    pub async fn mark_celebrated(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        through: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE channels SET celebrated_through = $3 \
                 WHERE workspace_id = $1 AND id = $2 AND celebrated_through < $3",
            )
            .bind(ws.0)
            .bind(channel.0)
            .bind(to_millis(through))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Forgets a pledge's reminders: it was kept, released or told to the channel.
    pub async fn clear_pledge_firing(&mut self, ws: WorkspaceId, pledge: PledgeId) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query("DELETE FROM next_firings WHERE workspace_id = $1 AND pledge_id = $2")
                .bind(ws.0)
                .bind(pledge.0)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// When the next firing of any job comes due: the idle tick's one index lookup.
    pub async fn next_firing_at(&mut self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = on_conn!(self, |c, pg| {
            sqlx::query_scalar("SELECT MIN(due_at) FROM next_firings").fetch_one(&mut *c).await?
        });
        Ok(at.map(from_millis))
    }

    /// Takes up to `limit` firings due at `now`, with their channels, oldest first. On Postgres the
    /// rows are locked with SKIP LOCKED, so replicas (and concurrent workers) take different ones.
    pub async fn claim_due_firings(&mut self, now: DateTime<Utc>, limit: i64) -> Result<Vec<DueFiring>, StoreError> {
        const SELECT: &str = "SELECT f.job, f.pledge_id, f.experiment_id, f.due_at, c.id, c.workspace_id, c.external_id, c.name, \
             c.schedule, c.time_zone, c.quiet_weekdays, c.holidays, c.paused_until, c.rules, c.escalate_after_days \
             FROM next_firings f JOIN channels c ON c.id = f.channel_id WHERE f.due_at <= $1 \
             ORDER BY f.due_at, f.channel_id, f.job LIMIT $2";
        let rows: Vec<DueFiringRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(if pg {
                cached_sql!(SELECT, " FOR UPDATE OF f SKIP LOCKED")
            } else {
                sqlx::AssertSqlSafe(SELECT)
            })
            .bind(to_millis(now))
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(DueFiringRow::into_record).collect()
    }

    /// Moves a firing to its next instant, or removes it when there is none.
    pub async fn reschedule_firing(
        &mut self,
        channel: ChannelId,
        job: &str,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            match next {
                Some(at) => sqlx::query("UPDATE next_firings SET due_at = $3 WHERE channel_id = $1 AND job = $2")
                    .bind(channel.0)
                    .bind(job)
                    .bind(to_millis(at))
                    .execute(&mut *c)
                    .await?,
                None => sqlx::query("DELETE FROM next_firings WHERE channel_id = $1 AND job = $2")
                    .bind(channel.0)
                    .bind(job)
                    .execute(&mut *c)
                    .await?,
            };
        });
        Ok(())
    }

    /// Channels missing the next firing of a job (made before the table existed): the scheduler
    /// plans them at start.
    pub async fn channels_without_firings(&mut self, limit: i64) -> Result<Vec<ChannelRecord>, StoreError> {
        let rows: Vec<ScheduledChannelRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT id, workspace_id, external_id, name, schedule, time_zone, quiet_weekdays, holidays, \
                 paused_until, rules, escalate_after_days, created_at FROM channels c WHERE \
                 c.kind = 'team' AND (SELECT COUNT(*) FROM next_firings f WHERE f.channel_id = c.id AND f.job IN \
                 ('checkin', 'digest', 'celebrations')) < 3 \
                 ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(|row| row.into_record().map(|scheduled| scheduled.channel)).collect()
    }

    /// Open pledges without a next reminder (made before the table existed), with their channels'
    /// escalation settings: the scheduler plans them at start.
    pub async fn open_pledges_without_firings(
        &mut self,
        limit: i64,
    ) -> Result<Vec<(WorkspaceId, PledgeRecord, Tz, u32)>, StoreError> {
        let rows: Vec<(i64, i64, String, i32)> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT p.workspace_id, p.number, c.time_zone, c.escalate_after_days FROM pledges p \
                 JOIN channels c ON c.id = p.channel_id WHERE p.status = 'open' AND NOT EXISTS \
                 (SELECT 1 FROM next_firings f WHERE f.pledge_id = p.id) ORDER BY p.id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        let mut found = Vec::with_capacity(rows.len());
        for (ws, number, zone, escalate) in rows {
            let zone =
                crate::domain::schedule::parse_time_zone(&zone).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let Some(pledge) = self.pledge(WorkspaceId(ws), PledgeRef(number)).await? {
                found.push((WorkspaceId(ws), pledge, zone, escalate.max(0) as u32));
            }
        }
        Ok(found)
    }

    /// Experiments still to be reviewed (proposed or running, review date today or later) that
    /// have no review firing and whose review was never told: those whose firing an earlier nudge
    /// dropped. With the zone their owner's morning is in, and the review date.
    pub async fn reviews_without_firings(
        &mut self,
        today: NaiveDate,
        limit: i64,
    ) -> Result<Vec<(WorkspaceId, ChannelId, ExperimentId, Tz, NaiveDate)>, StoreError> {
        let rows: Vec<(i64, i64, i64, String, String)> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT e.workspace_id, e.channel_id, e.id, COALESCE(m.time_zone, c.time_zone), e.review_on \
                 FROM experiments e JOIN channels c ON c.id = e.channel_id JOIN members m ON m.id = e.owner_id \
                 WHERE e.status IN ('proposed', 'running') AND e.review_on IS NOT NULL AND e.review_on >= $1 \
                 AND NOT EXISTS (SELECT 1 FROM next_firings f WHERE f.experiment_id = e.id) \
                 AND NOT EXISTS (SELECT 1 FROM occurrences o WHERE o.channel_id = e.channel_id \
                 AND o.job = 'review:E-' || e.number) ORDER BY e.id LIMIT $2",
            )
            .bind(day_text(today))
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        let mut found = Vec::with_capacity(rows.len());
        for (ws, channel, experiment, zone, review_on) in rows {
            let zone =
                crate::domain::schedule::parse_time_zone(&zone).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let Ok(day) = NaiveDate::parse_from_str(&review_on, "%Y-%m-%d") else { continue };
            found.push((WorkspaceId(ws), ChannelId(channel), ExperimentId(experiment), zone, day));
        }
        Ok(found)
    }

    /// The pledge behind a pledge firing, by its row id.
    pub async fn pledge_by_id(
        &mut self,
        ws: WorkspaceId,
        pledge: PledgeId,
    ) -> Result<Option<PledgeRecord>, StoreError> {
        let row: Option<PledgeRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!("SELECT ", PLEDGE_COLUMNS, " WHERE p.workspace_id = $1 AND p.id = $2"))
                .bind(ws.0)
                .bind(pledge.0)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(PledgeRow::into_record).transpose()
    }

    /// The experiment behind a review firing, by its row id.
    pub async fn experiment_by_id(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
    ) -> Result<Option<ExperimentRecord>, StoreError> {
        let row: Option<ExperimentRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!("SELECT ", EXPERIMENT_COLUMNS, " WHERE e.workspace_id = $1 AND e.id = $2"))
                .bind(ws.0)
                .bind(experiment.0)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(ExperimentRow::into_record).transpose()
    }

    // ----- occurrences --------------------------------------------------------------------------

    /// Claims one firing of a job for a channel; false when it was claimed before (by this or any
    /// other replica). The outcome says what happened: fired, suppressed (with why) or skipped.
    pub async fn record_occurrence(
        &mut self,
        ws: WorkspaceId,
        occurrence: &NewOccurrence<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let NewOccurrence { channel, job, due_at, outcome, reason } = *occurrence;
        let inserted = on_conn!(write self, |c, pg| {
            sqlx::query(
                "INSERT INTO occurrences (workspace_id, channel_id, job, due_at, outcome, reason, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (channel_id, job, due_at) DO NOTHING",
            )
            .bind(ws.0)
            .bind(channel.0)
            .bind(job)
            .bind(to_millis(due_at))
            .bind(outcome)
            .bind(reason)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    pub async fn set_occurrence_outcome(
        &mut self,
        channel: ChannelId,
        job: &str,
        due_at: DateTime<Utc>,
        outcome: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE occurrences SET outcome = $4, reason = $5 WHERE channel_id = $1 AND job = $2 AND due_at = $3",
            )
            .bind(channel.0)
            .bind(job)
            .bind(to_millis(due_at))
            .bind(outcome)
            .bind(reason)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// A channel's occurrences in order of their instant: what fired, what was quiet, what was missed.
    pub async fn occurrences(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
    ) -> Result<Vec<OccurrenceRecord>, StoreError> {
        let rows: Vec<(String, i64, String, Option<String>)> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT job, due_at, outcome, reason FROM occurrences WHERE workspace_id = $1 AND channel_id = $2 \
                 ORDER BY due_at, id",
            )
            .bind(ws.0)
            .bind(channel.0)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(job, due_at, outcome, reason)| OccurrenceRecord {
                job,
                due_at: from_millis(due_at),
                outcome,
                reason,
            })
            .collect())
    }

    /// The channel's proposed experiments with the most votes first: the top of the backlog.
    pub async fn backlog(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        limit: i64,
    ) -> Result<Vec<ExperimentRecord>, StoreError> {
        let rows: Vec<ExperimentRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                EXPERIMENT_COLUMNS,
                " WHERE e.workspace_id = $1 AND e.channel_id = $2 AND e.status = 'proposed' \
                 ORDER BY votes DESC, e.number LIMIT $3"
            ))
            .bind(ws.0)
            .bind(channel.0)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(ExperimentRow::into_record).collect()
    }

    /// Records that the channel was told of an overdue pledge: it is broken from now on (until it is
    /// kept, extended or released). Returns whether it changed.
    pub async fn mark_pledge_broken(&mut self, ws: WorkspaceId, pledge: PledgeId) -> Result<bool, StoreError> {
        let changed = on_conn!(write self, |c, pg| {
            sqlx::query("UPDATE pledges SET status = 'broken' WHERE workspace_id = $1 AND id = $2 AND status = 'open'")
                .bind(ws.0)
                .bind(pledge.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }
}
