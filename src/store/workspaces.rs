//! Workspaces, channels and members, installs, event deliveries and OAuth states.

use chrono_tz::Tz;

use super::*;
use crate::domain::firings::ChannelJob;
use crate::domain::schedule::Schedule;

/// How long a platform's delivery is remembered to drop its repeats: far beyond any platform's
/// retries (Slack's come within the hour), and short enough that the table stays small.
const REMEMBER_DELIVERIES: chrono::Duration = chrono::Duration::days(3);

impl Tx {
    // ----- workspaces, channels, members -------------------------------------------------------

    /// The workspace for a platform's team id, created on first sight.
    pub async fn ensure_workspace(
        &mut self,
        platform: &str,
        external_id: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<WorkspaceId, StoreError> {
        // Look first: the common case is a known workspace, and an upsert would write a row each time.
        let found: Option<i64> = on_conn!(self, |c, pg| {
            sqlx::query_scalar("SELECT id FROM workspaces WHERE platform = $1 AND external_id = $2")
                .bind(platform)
                .bind(external_id)
                .fetch_optional(&mut *c)
                .await?
        });
        if let Some(id) = found {
            return Ok(WorkspaceId(id));
        }
        let id: i64 = on_conn!(write self, |c, pg| {
            sqlx::query_scalar(
                "INSERT INTO workspaces (platform, external_id, name, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (platform, external_id) DO UPDATE SET name = excluded.name RETURNING id",
            )
            .bind(platform)
            .bind(external_id)
            .bind(plain(name).as_ref())
            .bind(to_millis(now))
            .fetch_one(&mut *c)
            .await?
        });
        Ok(WorkspaceId(id))
    }

    /// The workspace for a platform's team id, if nudge has seen it.
    pub async fn workspace(&mut self, platform: &str, external_id: &str) -> Result<Option<WorkspaceId>, StoreError> {
        let found: Option<i64> = on_conn!(self, |c, pg| {
            sqlx::query_scalar("SELECT id FROM workspaces WHERE platform = $1 AND external_id = $2")
                .bind(platform)
                .bind(external_id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(found.map(WorkspaceId))
    }

    /// Records an OAuth install: the workspace's sealed bot token replaces any earlier one.
    pub async fn save_installation(
        &mut self,
        ws: WorkspaceId,
        bot_token_sealed: &str,
        bot_user_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE workspaces SET bot_token_sealed = $2, bot_user_id = $3, installed_at = $4 WHERE id = $1",
            )
            .bind(ws.0)
            .bind(bot_token_sealed)
            .bind(bot_user_id)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// The installed workspace for a team id, with its sealed bot token; None when not installed.
    pub async fn installation(
        &mut self,
        platform: &str,
        external_id: &str,
    ) -> Result<Option<Installation>, StoreError> {
        let row: Option<(i64, String)> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT id, bot_token_sealed FROM workspaces \
                 WHERE platform = $1 AND external_id = $2 AND bot_token_sealed IS NOT NULL",
            )
            .bind(platform)
            .bind(external_id)
            .fetch_optional(&mut *c)
            .await?
        });
        Ok(row.map(|(id, bot_token_sealed)| Installation { workspace_id: WorkspaceId(id), bot_token_sealed }))
    }

    /// Remembers an event delivery; false when it was seen before (a retry or a duplicate).
    pub async fn record_event_delivery(
        &mut self,
        platform: &str,
        team_id: &str,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = on_conn!(write self, |c, pg| {
            sqlx::query("DELETE FROM processed_events WHERE received_at < $1")
                .bind(to_millis(now - REMEMBER_DELIVERIES))
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "INSERT INTO processed_events (platform, event_id, team_id, received_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (platform, event_id) DO NOTHING",
            )
            .bind(platform)
            .bind(event_id)
            .bind(team_id)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Records that an install state was used: true only the first time. Expired states are
    /// purged here, so the table holds at most the states used in the last few minutes.
    pub async fn use_oauth_state(
        &mut self,
        platform: &str,
        nonce: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = on_conn!(write self, |c, pg| {
            sqlx::query("DELETE FROM oauth_states WHERE expires_at <= $1").bind(to_millis(now)).execute(&mut *c).await?;
            sqlx::query(
                "INSERT INTO oauth_states (state, platform, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(nonce)
            .bind(platform)
            .bind(to_millis(expires_at))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Install states recorded (used and not yet purged), for tests that prove a link writes nothing.
    pub async fn oauth_state_count(&mut self) -> Result<i64, StoreError> {
        let count: i64 = on_conn!(self, |c, pg| {
            sqlx::query_scalar("SELECT COUNT(*) FROM oauth_states").fetch_one(&mut *c).await?
        });
        Ok(count)
    }

    /// The channel and the member a command comes from, in one round trip: both exist for almost
    /// every command, and each round trip is time the command's group waits.
    pub async fn channel_and_member(
        &mut self,
        ws: WorkspaceId,
        channel_external_id: &str,
        member_external_id: &str,
    ) -> Result<(Option<ChannelRecord>, Option<MemberRecord>), StoreError> {
        let row: ContextRow = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT c.id AS channel_id, c.external_id AS channel_external_id, c.name AS channel_name, c.schedule, \
                 c.time_zone, c.quiet_weekdays, c.holidays, c.paused_until, c.rules, c.escalate_after_days, \
                 m.id AS member_id, m.external_id AS member_external_id, m.display_name, m.time_zone AS member_time_zone \
                 FROM (SELECT 1 AS one) AS here \
                 LEFT JOIN channels c ON c.workspace_id = $1 AND c.external_id = $2 \
                 LEFT JOIN members m ON m.workspace_id = $1 AND m.external_id = $3",
            )
            .bind(ws.0)
            .bind(channel_external_id)
            .bind(member_external_id)
            .fetch_one(&mut *c)
            .await?
        });
        row.into_records(ws)
    }

    /// The channel, created with the defaults on first sight (an existing one is left as it is).
    /// A new channel's jobs are planned in the same transaction, so the scheduler finds it.
    pub async fn ensure_channel(
        &mut self,
        ws: WorkspaceId,
        external_id: &str,
        name: &str,
        defaults: &ChannelDefaults,
        now: DateTime<Utc>,
    ) -> Result<ChannelRecord, StoreError> {
        let inserted = on_conn!(write self, |c, pg| {
            sqlx::query(
                "INSERT INTO channels (workspace_id, external_id, name, schedule, time_zone, escalate_after_days, \
                 created_at, quiet_weekdays) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (workspace_id, external_id) DO NOTHING",
            )
            .bind(ws.0)
            .bind(external_id)
            .bind(plain(name).as_ref())
            .bind(&defaults.schedule)
            .bind(&defaults.time_zone)
            .bind(defaults.escalate_after_days as i32)
            .bind(to_millis(now))
            .bind(&defaults.quiet_weekdays)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        let channel = self
            .channel(ws, external_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("channel {external_id} vanished after insert")))?;
        if inserted == 1 {
            self.plan_channel(&channel, now).await?;
        }
        Ok(channel)
    }

    /// Plans the next firing of each of the channel's jobs from its schedule and time zone.
    pub async fn plan_channel(&mut self, channel: &ChannelRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        let firings: Vec<(ChannelJob, DateTime<Utc>)> = ChannelJob::ALL
            .into_iter()
            .filter_map(|job| Some((job, job.schedule(&channel.schedule).next_after(now, channel.time_zone)?)))
            .collect();
        self.set_channel_firings(channel.workspace_id, channel.id, &firings, now).await
    }

    pub async fn channel(&mut self, ws: WorkspaceId, external_id: &str) -> Result<Option<ChannelRecord>, StoreError> {
        let row: Option<ChannelRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT id, external_id, name, schedule, time_zone, quiet_weekdays, holidays, paused_until, rules, \
                 escalate_after_days FROM channels WHERE workspace_id = $1 AND external_id = $2",
            )
            .bind(ws.0)
            .bind(external_id)
            .fetch_optional(&mut *c)
            .await?
        });
        row.map(|r| r.into_record(ws)).transpose()
    }

    /// A channel by its row id, within its workspace (a dashboard link names it so).
    pub async fn channel_by_id(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
    ) -> Result<Option<ChannelRecord>, StoreError> {
        let row: Option<ChannelRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT id, external_id, name, schedule, time_zone, quiet_weekdays, holidays, paused_until, rules, \
                 escalate_after_days FROM channels WHERE workspace_id = $1 AND id = $2",
            )
            .bind(ws.0)
            .bind(channel.0)
            .fetch_optional(&mut *c)
            .await?
        });
        row.map(|r| r.into_record(ws)).transpose()
    }

    /// The channel an experiment or a pledge belongs to: commands about it are counted there,
    /// wherever they were typed or clicked. `None` when there is no such experiment or pledge.
    pub async fn channel_of(&mut self, ws: WorkspaceId, subject: Subject) -> Result<Option<ChannelRecord>, StoreError> {
        const OF_EXPERIMENT: &str = "SELECT c.id, c.external_id, c.name, c.schedule, c.time_zone, c.quiet_weekdays, \
             c.holidays, c.paused_until, c.rules, c.escalate_after_days FROM channels c \
             JOIN experiments e ON e.channel_id = c.id WHERE e.workspace_id = $1 AND e.number = $2";
        const OF_PLEDGE: &str = "SELECT c.id, c.external_id, c.name, c.schedule, c.time_zone, c.quiet_weekdays, \
             c.holidays, c.paused_until, c.rules, c.escalate_after_days FROM channels c \
             JOIN pledges p ON p.channel_id = c.id WHERE p.workspace_id = $1 AND p.number = $2";
        let (sql, number) = match subject {
            Subject::Experiment(id) => (OF_EXPERIMENT, id.0),
            Subject::Pledge(id) => (OF_PLEDGE, id.0),
        };
        let row: Option<ChannelRow> =
            on_conn!(self, |c, pg| sqlx::query_as(sql).bind(ws.0).bind(number).fetch_optional(&mut *c).await?);
        row.map(|r| r.into_record(ws)).transpose()
    }

    /// The member, created on first sight or given their current display name. Callers that have
    /// the member already (see `channel_and_member`) call this only when something changed.
    pub async fn ensure_member(
        &mut self,
        ws: WorkspaceId,
        external_id: &str,
        display_name: &str,
        now: DateTime<Utc>,
    ) -> Result<MemberRecord, StoreError> {
        let row: MemberRow = on_conn!(write self, |c, pg| {
            sqlx::query_as(
                "INSERT INTO members (workspace_id, external_id, display_name, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (workspace_id, external_id) DO UPDATE SET display_name = excluded.display_name \
                 RETURNING id, external_id, display_name, time_zone",
            )
            .bind(ws.0)
            .bind(external_id)
            .bind(plain(display_name).as_ref())
            .bind(to_millis(now))
            .fetch_one(&mut *c)
            .await?
        });
        Ok(row.into_record())
    }

    /// What the platform says about a member: their display name and time zone. A zone replans
    /// their open pledges' reminders, which come in their morning. False when the member is not
    /// known yet.
    pub async fn set_member_profile(
        &mut self,
        ws: WorkspaceId,
        external_id: &str,
        display_name: &str,
        time_zone: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let member: Option<i64> = on_conn!(write self, |c, pg| {
            sqlx::query_scalar(
                "UPDATE members SET display_name = $3, time_zone = COALESCE($4, time_zone) \
                 WHERE workspace_id = $1 AND external_id = $2 RETURNING id",
            )
            .bind(ws.0)
            .bind(external_id)
            .bind(plain(display_name).as_ref())
            .bind(time_zone)
            .fetch_optional(&mut *c)
            .await?
        });
        let Some(member) = member else { return Ok(false) };
        if let Some(zone) = time_zone.and_then(|tz| crate::domain::schedule::parse_time_zone(tz).ok()) {
            self.replan_reminders_of(ws, MemberId(member), zone, now).await?;
        }
        Ok(true)
    }

    pub async fn set_rules(&mut self, ws: WorkspaceId, channel: ChannelId, rules: &str) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query("UPDATE channels SET rules = $3 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.0)
                .bind(channel.0)
                .bind(rules)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Changes when the channel's check-in comes (and the zone every job follows), and replans them.
    pub async fn set_schedule(
        &mut self,
        channel: &ChannelRecord,
        schedule: &Schedule,
        time_zone: Tz,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query("UPDATE channels SET schedule = $3, time_zone = $4 WHERE workspace_id = $1 AND id = $2")
                .bind(channel.workspace_id.0)
                .bind(channel.id.0)
                .bind(schedule.expression())
                .bind(time_zone.name())
                .execute(&mut *c)
                .await?;
        });
        let updated = ChannelRecord { schedule: schedule.clone(), time_zone, ..channel.clone() };
        self.plan_channel(&updated, now).await
    }

    pub async fn set_quiet_days(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        weekdays: &str,
        holidays: &str,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query("UPDATE channels SET quiet_weekdays = $3, holidays = $4 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.0)
                .bind(channel.0)
                .bind(weekdays)
                .bind(holidays)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn set_paused_until(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        until: Option<NaiveDate>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query("UPDATE channels SET paused_until = $3 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.0)
                .bind(channel.0)
                .bind(until.map(day_text))
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    // ----- platform records ---------------------------------------------------------------------

    /// Keeps something a platform knows about one of the workspace's channels or members (by
    /// `kind` and `key`), replacing what it kept before.
    pub async fn save_platform_record(
        &mut self,
        ws: WorkspaceId,
        platform: &str,
        kind: &str,
        key: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query(
                "INSERT INTO platform_records (workspace_id, platform, kind, key, value, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, platform, kind, key) \
                 DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(ws.0)
            .bind(platform)
            .bind(kind)
            .bind(key)
            .bind(value)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// What a platform kept under `kind` and `key` in the workspace, if anything.
    pub async fn platform_record(
        &mut self,
        ws: WorkspaceId,
        platform: &str,
        kind: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let found: Option<String> = on_conn!(self, |c, pg| {
            sqlx::query_scalar(
                "SELECT value FROM platform_records WHERE workspace_id = $1 AND platform = $2 AND kind = $3 AND key = $4",
            )
            .bind(ws.0)
            .bind(platform)
            .bind(kind)
            .bind(key)
            .fetch_optional(&mut *c)
            .await?
        });
        Ok(found)
    }
}
