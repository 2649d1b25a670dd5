//! Pledges: made, kept, extended, released, broken.

use chrono_tz::Tz;

use super::*;

impl Tx {
    // ----- pledges ------------------------------------------------------------------------------

    /// Inserts an open pledge under the workspace's next `P-n` (allocated like experiment numbers),
    /// with its first reminder planned.
    pub async fn insert_pledge(
        &mut self,
        ws: WorkspaceId,
        new: &NewPledge<'_>,
        now: DateTime<Utc>,
    ) -> Result<PledgeRecord, StoreError> {
        let number: i64 = on_conn!(write self, |c, pg| {
            sqlx::query_scalar(
                "UPDATE workspaces SET next_pledge_no = next_pledge_no + 1 WHERE id = $1 RETURNING next_pledge_no - 1",
            )
            .bind(ws.0)
            .fetch_one(&mut *c)
            .await?
        });
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "INSERT INTO pledges (workspace_id, number, channel_id, owner_id, text, due_on, experiment_id, status, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8)",
            )
            .bind(ws.0)
            .bind(number)
            .bind(new.channel.0)
            .bind(new.owner.0)
            .bind(new.text)
            .bind(day_text(new.due_on))
            .bind(new.experiment.map(|e| e.0))
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?;
        });
        let pledge = self
            .pledge(ws, PledgeRef(number))
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("P-{number} vanished after insert")))?;
        self.set_pledge_firing(ws, pledge.channel_id, pledge.id, new.reminders.next(new.due_on, now)).await?;
        Ok(pledge)
    }

    pub async fn pledge(&mut self, ws: WorkspaceId, id: PledgeRef) -> Result<Option<PledgeRecord>, StoreError> {
        let row: Option<PledgeRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!("SELECT ", PLEDGE_COLUMNS, " WHERE p.workspace_id = $1 AND p.number = $2"))
                .bind(ws.0)
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(PledgeRow::into_record).transpose()
    }

    /// A member's pledges that still count against their capacity (open or broken), soonest due first.
    pub async fn open_pledges_of(&mut self, ws: WorkspaceId, owner: MemberId) -> Result<Vec<PledgeRecord>, StoreError> {
        let rows: Vec<PledgeRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                PLEDGE_COLUMNS,
                " WHERE p.workspace_id = $1 AND p.owner_id = $2 AND p.status IN ('open', 'broken') \
                 ORDER BY p.due_on, p.number"
            ))
            .bind(ws.0)
            .bind(owner.0)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(PledgeRow::into_record).collect()
    }

    /// The channel's open (and broken, not yet resolved) pledges, soonest due first.
    pub async fn open_pledges_in_channel(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        limit: i64,
    ) -> Result<Vec<PledgeRecord>, StoreError> {
        let rows: Vec<PledgeRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                PLEDGE_COLUMNS,
                " WHERE p.workspace_id = $1 AND p.channel_id = $2 AND p.status IN ('open', 'broken') \
                 ORDER BY p.due_on, p.number LIMIT $3"
            ))
            .bind(ws.0)
            .bind(channel.0)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(PledgeRow::into_record).collect()
    }

    /// How many pledges [`Tx::open_pledges_in_channel`] would list without its limit.
    pub async fn count_open_pledges_in_channel(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
    ) -> Result<i64, StoreError> {
        let count: i64 = on_conn!(self, |c, pg| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM pledges p WHERE p.workspace_id = $1 AND p.channel_id = $2 \
                 AND p.status IN ('open', 'broken')",
            )
            .bind(ws.0)
            .bind(channel.0)
            .fetch_one(&mut *c)
            .await?
        });
        Ok(count)
    }

    /// Marks a pledge kept or released, only if it is still open or broken. Returns whether it changed.
    pub async fn resolve_pledge(
        &mut self,
        ws: WorkspaceId,
        pledge: PledgeId,
        to: PledgeStatus,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE pledges SET status = $3, note = $4, resolved_at = $5 \
                 WHERE workspace_id = $1 AND id = $2 AND status IN ('open', 'broken')",
            )
            .bind(ws.0)
            .bind(pledge.0)
            .bind(to.as_str())
            .bind(note)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 1 {
            self.clear_pledge_firing(ws, pledge).await?;
        }
        Ok(changed == 1)
    }

    /// Moves an open or broken pledge's due date, and its reminders with it; a broken one is open
    /// again. Returns whether it changed.
    pub async fn extend_pledge(
        &mut self,
        ws: WorkspaceId,
        pledge: &PledgeRecord,
        due_on: NaiveDate,
        reminders: Reminders,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE pledges SET due_on = $3, status = 'open' \
                 WHERE workspace_id = $1 AND id = $2 AND status IN ('open', 'broken')",
            )
            .bind(ws.0)
            .bind(pledge.id.0)
            .bind(day_text(due_on))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 1 {
            self.set_pledge_firing(ws, pledge.channel_id, pledge.id, reminders.next(due_on, now)).await?;
        }
        Ok(changed == 1)
    }

    /// Replans the reminders of a member's open pledges, after their time zone became known.
    pub async fn replan_reminders_of(
        &mut self,
        ws: WorkspaceId,
        owner: MemberId,
        zone: Tz,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let open: Vec<(i64, i64, String, i32)> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT p.id, p.channel_id, p.due_on, c.escalate_after_days FROM pledges p \
                 JOIN channels c ON c.id = p.channel_id WHERE p.workspace_id = $1 AND p.owner_id = $2 AND p.status = 'open'",
            )
            .bind(ws.0)
            .bind(owner.0)
            .fetch_all(&mut *c)
            .await?
        });
        for (pledge, channel, due_on, escalate) in open {
            let reminders = Reminders { zone, escalate_after_days: escalate.max(0) as u32 };
            let next = reminders.next(parse_day(&due_on)?, now);
            self.set_pledge_firing(ws, ChannelId(channel), PledgeId(pledge), next).await?;
        }
        Ok(())
    }
}
