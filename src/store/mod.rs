//! Storage: one interface, two backends. Postgres is the production store shared by any number of
//! replicas; SQLite is the embedded default for one node. The `DATABASE_URL` scheme picks one.
//!
//! Every operation lives on [`Tx`], a write transaction, and takes the workspace id first: writes that
//! belong together share one transaction, and a command that fails is rolled back by dropping it.
//! The SQL is written once; [`on_conn!`] compiles each body for both drivers, so the two backends
//! cannot drift apart query by query.

mod records;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::commands::reply::Reply;
use crate::domain::experiment::ExperimentStatus;
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::pledge::PledgeStatus;

pub use records::*;

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a stored value is not valid: {0}")]
    Corrupt(String),
    #[error("the shared commit of several commands failed: {0}")]
    SharedCommit(String),
    #[error("the command queue has stopped")]
    QueueClosed,
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// The handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password, so only the backend is shown.
        f.debug_struct("Store").field("backend", &self.backend()).finish()
    }
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls everything back.
pub struct Tx {
    conn: TxConn,
}

enum TxConn {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// Runs `$body` with `$c` bound to the transaction's connection, once per backend. The body is
/// type-checked against both drivers; `$pg` is true on Postgres for the few dialect differences.
macro_rules! on_conn {
    ($tx:expr, |$c:ident, $pg:ident| $body:expr) => {
        match &mut $tx.conn {
            TxConn::Postgres(t) => {
                let $c: &mut sqlx::PgConnection = &mut *t;
                #[allow(unused_variables)]
                let $pg = true;
                $body
            }
            TxConn::Sqlite(t) => {
                let $c: &mut sqlx::SqliteConnection = &mut *t;
                #[allow(unused_variables)]
                let $pg = false;
                $body
            }
        }
    };
}

impl Store {
    /// Connects to the database named by `url` (`postgres://…` or `sqlite://…`), creating an SQLite
    /// file if it is missing. Does not migrate; call [`Store::migrate`].
    pub async fn connect(url: &SecretString, max_connections: u32) -> Result<Store, StoreError> {
        let url = url.expose_secret();
        let pool = match backend_of(url) {
            Some(Backend::Postgres) => {
                let options = PgConnectOptions::from_str(url)?;
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(Duration::from_secs(5))
                        .connect_with(options)
                        .await?,
                )
            }
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                // An in-memory database exists once per connection, so it must have exactly one.
                let max = if url.contains(":memory:") { 1 } else { max_connections.clamp(1, 4) };
                Pool::Sqlite(SqlitePoolOptions::new().max_connections(max).connect_with(options).await?)
            }
            None => {
                return Err(StoreError::Database(sqlx::Error::Configuration(
                    "DATABASE_URL must start with postgres:// or sqlite://".into(),
                )));
            }
        };
        Ok(Store { pool })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the backend's migrations; safe to run on every start and from several replicas.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// One round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
            Pool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
        }
        Ok(())
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`),
    /// so two writers queue instead of failing when a read turns into a write.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let conn = match &self.pool {
            Pool::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
            Pool::Sqlite(pool) => TxConn::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        };
        Ok(Tx { conn })
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Postgres(pool) => pool.close().await,
            Pool::Sqlite(pool) => pool.close().await,
        }
    }
}

/// The backend a database URL names, by its scheme.
pub fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else {
        None
    }
}

pub(crate) fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

const EXPERIMENT_COLUMNS: &str = "e.id, e.number, e.channel_id, e.owner_id, m.external_id AS owner_external_id, \
     m.display_name AS owner_name, e.title, e.hypothesis, e.metric_name, e.metric_unit, e.baseline, e.target, \
     e.status, e.review_on, e.learning, e.created_at, e.started_at, e.closed_at, \
     (SELECT COUNT(*) FROM votes v WHERE v.experiment_id = e.id) AS votes, \
     (SELECT r.value FROM readings r WHERE r.experiment_id = e.id ORDER BY r.id DESC LIMIT 1) AS latest \
     FROM experiments e JOIN members m ON m.id = e.owner_id";

const PLEDGE_COLUMNS: &str = "p.id, p.number, p.channel_id, p.owner_id, m.external_id AS owner_external_id, \
     m.display_name AS owner_name, m.time_zone AS owner_time_zone, p.text, p.due_on, p.experiment_id, p.status, p.note, p.created_at, p.resolved_at \
     FROM pledges p JOIN members m ON m.id = p.owner_id";

/// Builds a query string once per process from constant parts (the column lists above).
macro_rules! cached_sql {
    ($($part:expr),+ $(,)?) => {{
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        sqlx::AssertSqlSafe(SQL.get_or_init(|| [$($part),+].concat()).as_str())
    }};
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.conn {
            TxConn::Postgres(t) => t.commit().await?,
            TxConn::Sqlite(t) => t.commit().await?,
        }
        Ok(())
    }

    // Savepoints let several commands share one transaction: each runs under its own, and one
    // that fails is rolled back alone. They go as plain SQL (no parameters to prepare).

    pub async fn savepoint(&mut self) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
            sqlx::raw_sql("SAVEPOINT command").execute(&mut *c).await?;
        });
        Ok(())
    }

    pub async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
            sqlx::raw_sql("RELEASE SAVEPOINT command").execute(&mut *c).await?;
        });
        Ok(())
    }

    /// Undoes everything since the savepoint and drops it.
    pub async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT command; RELEASE SAVEPOINT command").execute(&mut *c).await?;
        });
        Ok(())
    }

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
        let id: i64 = on_conn!(self, |c, pg| {
            sqlx::query_scalar(
                "INSERT INTO workspaces (platform, external_id, name, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (platform, external_id) DO UPDATE SET name = excluded.name RETURNING id",
            )
            .bind(platform)
            .bind(external_id)
            .bind(name)
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
        on_conn!(self, |c, pg| {
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
        let inserted = on_conn!(self, |c, pg| {
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

    pub async fn create_oauth_state(
        &mut self,
        platform: &str,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
            sqlx::query("INSERT INTO oauth_states (state, platform, expires_at) VALUES ($1, $2, $3)")
                .bind(state)
                .bind(platform)
                .bind(to_millis(expires_at))
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Uses up an OAuth state: true only the first time, and only before it expires.
    pub async fn consume_oauth_state(
        &mut self,
        platform: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let expires: Option<i64> = on_conn!(self, |c, pg| {
            sqlx::query_scalar("DELETE FROM oauth_states WHERE state = $1 AND platform = $2 RETURNING expires_at")
                .bind(state)
                .bind(platform)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(expires.is_some_and(|at| at > to_millis(now)))
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
    pub async fn ensure_channel(
        &mut self,
        ws: WorkspaceId,
        external_id: &str,
        name: &str,
        defaults: &ChannelDefaults,
        now: DateTime<Utc>,
    ) -> Result<ChannelRecord, StoreError> {
        on_conn!(self, |c, pg| {
            sqlx::query(
                "INSERT INTO channels (workspace_id, external_id, name, schedule, time_zone, escalate_after_days, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workspace_id, external_id) DO NOTHING",
            )
            .bind(ws.0)
            .bind(external_id)
            .bind(name)
            .bind(&defaults.schedule)
            .bind(&defaults.time_zone)
            .bind(defaults.escalate_after_days as i32)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?;
        });
        self.channel(ws, external_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("channel {external_id} vanished after insert")))
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

    /// The member, created on first sight or given their current display name. Callers that have
    /// the member already (see `channel_and_member`) call this only when something changed.
    pub async fn ensure_member(
        &mut self,
        ws: WorkspaceId,
        external_id: &str,
        display_name: &str,
        now: DateTime<Utc>,
    ) -> Result<MemberRecord, StoreError> {
        let row: MemberRow = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "INSERT INTO members (workspace_id, external_id, display_name, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (workspace_id, external_id) DO UPDATE SET display_name = excluded.display_name \
                 RETURNING id, external_id, display_name, time_zone",
            )
            .bind(ws.0)
            .bind(external_id)
            .bind(display_name)
            .bind(to_millis(now))
            .fetch_one(&mut *c)
            .await?
        });
        Ok(row.into_record())
    }

    /// What the platform says about a member: their display name and time zone. False when the
    /// member is not known yet.
    pub async fn set_member_profile(
        &mut self,
        ws: WorkspaceId,
        external_id: &str,
        display_name: &str,
        time_zone: Option<&str>,
    ) -> Result<bool, StoreError> {
        let changed = on_conn!(self, |c, pg| {
            sqlx::query(
                "UPDATE members SET display_name = $3, time_zone = COALESCE($4, time_zone) \
                 WHERE workspace_id = $1 AND external_id = $2",
            )
            .bind(ws.0)
            .bind(external_id)
            .bind(display_name)
            .bind(time_zone)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    pub async fn set_rules(&mut self, ws: WorkspaceId, channel: ChannelId, rules: &str) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
            sqlx::query("UPDATE channels SET rules = $3 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.0)
                .bind(channel.0)
                .bind(rules)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn set_schedule(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        schedule: &str,
        time_zone: &str,
    ) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
            sqlx::query("UPDATE channels SET schedule = $3, time_zone = $4 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.0)
                .bind(channel.0)
                .bind(schedule)
                .bind(time_zone)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn set_quiet_days(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        weekdays: &str,
        holidays: &str,
    ) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
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
        on_conn!(self, |c, pg| {
            sqlx::query("UPDATE channels SET paused_until = $3 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.0)
                .bind(channel.0)
                .bind(until.map(day_text))
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    // ----- experiments --------------------------------------------------------------------------

    /// Inserts a proposed experiment under the workspace's next `E-n`, allocated in this transaction
    /// so a rolled-back proposal leaves no gap and a committed number is never handed out again.
    pub async fn insert_experiment(
        &mut self,
        ws: WorkspaceId,
        new: &NewExperiment<'_>,
        now: DateTime<Utc>,
    ) -> Result<ExperimentRecord, StoreError> {
        // On Postgres the counter and the row go in one statement: the counter row stays locked
        // until commit, so every round trip saved here is time other proposals do not wait.
        const PG_INSERT: &str = "WITH allocated AS (UPDATE workspaces SET next_experiment_no = next_experiment_no + 1 \
             WHERE id = $1 RETURNING next_experiment_no - 1 AS number) \
             INSERT INTO experiments (workspace_id, number, channel_id, owner_id, title, hypothesis, metric_name, \
             metric_unit, baseline, target, status, review_on, created_at) \
             SELECT $1, number, $2, $3, $4, $5, $6, $7, $8, $9, 'proposed', $10, $11 FROM allocated RETURNING id, number";
        const SQLITE_ALLOCATE: &str = "UPDATE workspaces SET next_experiment_no = next_experiment_no + 1 WHERE id = $1 \
             RETURNING next_experiment_no - 1";
        const SQLITE_INSERT: &str = "INSERT INTO experiments (workspace_id, number, channel_id, owner_id, title, \
             hypothesis, metric_name, metric_unit, baseline, target, status, review_on, created_at) \
             VALUES ($1, $12, $2, $3, $4, $5, $6, $7, $8, $9, 'proposed', $10, $11) RETURNING id, number";
        let (id, number): (i64, i64) = on_conn!(self, |c, pg| {
            let (sql, number) = if pg {
                (PG_INSERT, None)
            } else {
                let number: i64 = sqlx::query_scalar(SQLITE_ALLOCATE).bind(ws.0).fetch_one(&mut *c).await?;
                (SQLITE_INSERT, Some(number))
            };
            let query = sqlx::query_as(sql)
                .bind(ws.0)
                .bind(new.channel.0)
                .bind(new.owner.id.0)
                .bind(new.title)
                .bind(new.hypothesis)
                .bind(&new.metric.name)
                .bind(new.metric.unit.as_deref())
                .bind(new.metric.baseline)
                .bind(new.metric.target)
                .bind(new.review_on.map(day_text))
                .bind(to_millis(now));
            let query = match number {
                Some(number) => query.bind(number),
                None => query,
            };
            query.fetch_one(&mut *c).await?
        });
        Ok(ExperimentRecord {
            id: ExperimentId(id),
            number: ExperimentRef(number),
            channel_id: new.channel,
            owner_id: new.owner.id,
            owner_external_id: new.owner.external_id.clone(),
            owner_name: new.owner.display_name.clone(),
            title: new.title.to_string(),
            hypothesis: new.hypothesis.to_string(),
            metric: new.metric.clone(),
            status: ExperimentStatus::Proposed,
            review_on: new.review_on,
            learning: None,
            created_at: from_millis(to_millis(now)),
            started_at: None,
            closed_at: None,
            votes: 0,
            latest: None,
        })
    }

    pub async fn experiment(
        &mut self,
        ws: WorkspaceId,
        id: ExperimentRef,
    ) -> Result<Option<ExperimentRecord>, StoreError> {
        let row: Option<ExperimentRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!("SELECT ", EXPERIMENT_COLUMNS, " WHERE e.workspace_id = $1 AND e.number = $2"))
                .bind(ws.0)
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(ExperimentRow::into_record).transpose()
    }

    /// The channel's experiments with the given statuses, newest first; `limit` keeps replies short.
    pub async fn experiments_in_channel(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        statuses: &[ExperimentStatus],
        limit: i64,
    ) -> Result<Vec<ExperimentRecord>, StoreError> {
        let words: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let list = words.join(",");
        // Status words are matched inside a comma list, so one prepared statement serves any filter.
        let rows: Vec<ExperimentRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                EXPERIMENT_COLUMNS,
                " WHERE e.workspace_id = $1 AND e.channel_id = $2 AND (',' || $3 || ',') LIKE ('%,' || e.status || ',%') \
                 ORDER BY e.number DESC LIMIT $4"
            ))
            .bind(ws.0)
            .bind(channel.0)
            .bind(&list)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(ExperimentRow::into_record).collect()
    }

    /// Moves an experiment from `from` to `to` only if it is still in `from`, so two people racing to
    /// start or close it cannot both succeed. Returns whether it moved.
    pub async fn transition_experiment(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
        from: ExperimentStatus,
        to: ExperimentStatus,
        learning: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let started_at = (to == ExperimentStatus::Running).then_some(to_millis(now));
        let closed_at = to.is_closed().then_some(to_millis(now));
        let result = on_conn!(self, |c, pg| {
            sqlx::query(
                "UPDATE experiments SET status = $4, started_at = COALESCE($5, started_at), \
                 closed_at = COALESCE($6, closed_at), learning = COALESCE($7, learning) \
                 WHERE workspace_id = $1 AND id = $2 AND status = $3",
            )
            .bind(ws.0)
            .bind(experiment.0)
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(started_at)
            .bind(closed_at)
            .bind(learning)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(result == 1)
    }

    pub async fn insert_reading(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
        value: f64,
        note: Option<&str>,
        recorded_by: Option<MemberId>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let source = if recorded_by.is_some() { "member" } else { "api" };
        on_conn!(self, |c, pg| {
            sqlx::query(
                "INSERT INTO readings (workspace_id, experiment_id, value, note, recorded_by, source, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(ws.0)
            .bind(experiment.0)
            .bind(value)
            .bind(note)
            .bind(recorded_by.map(|m| m.0))
            .bind(source)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// An experiment's readings, oldest first.
    pub async fn readings(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
    ) -> Result<Vec<ReadingRecord>, StoreError> {
        let rows: Vec<(f64, Option<String>, i64)> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT value, note, recorded_at FROM readings WHERE workspace_id = $1 AND experiment_id = $2 \
                 ORDER BY id",
            )
            .bind(ws.0)
            .bind(experiment.0)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(value, note, at)| ReadingRecord { value, note, recorded_at: from_millis(at) })
            .collect())
    }

    /// Records a member's vote; false when they had already voted for it.
    pub async fn add_vote(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
        member: MemberId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = on_conn!(self, |c, pg| {
            sqlx::query(
                "INSERT INTO votes (workspace_id, experiment_id, member_id, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (experiment_id, member_id) DO NOTHING",
            )
            .bind(ws.0)
            .bind(experiment.0)
            .bind(member.0)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Closed experiments with a learning, newest first, optionally containing `words`
    /// (case-insensitive, in the title, hypothesis or learning).
    pub async fn learnings(
        &mut self,
        ws: WorkspaceId,
        words: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ExperimentRecord>, StoreError> {
        let pattern = words.map(|w| format!("%{}%", escape_like(&w.to_lowercase())));
        let rows: Vec<ExperimentRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                EXPERIMENT_COLUMNS,
                " WHERE e.workspace_id = $1 AND e.learning IS NOT NULL AND ($2 IS NULL \
                 OR LOWER(e.learning || ' ' || e.title || ' ' || e.hypothesis) LIKE $2 ESCAPE '\\') \
                 ORDER BY e.closed_at DESC, e.number DESC LIMIT $3"
            ))
            .bind(ws.0)
            .bind(pattern.as_deref())
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(ExperimentRow::into_record).collect()
    }

    // ----- pledges ------------------------------------------------------------------------------

    /// Inserts an open pledge under the workspace's next `P-n` (allocated like experiment numbers).
    pub async fn insert_pledge(
        &mut self,
        ws: WorkspaceId,
        new: &NewPledge<'_>,
        now: DateTime<Utc>,
    ) -> Result<PledgeRecord, StoreError> {
        let number: i64 = on_conn!(self, |c, pg| {
            sqlx::query_scalar(
                "UPDATE workspaces SET next_pledge_no = next_pledge_no + 1 WHERE id = $1 RETURNING next_pledge_no - 1",
            )
            .bind(ws.0)
            .fetch_one(&mut *c)
            .await?
        });
        on_conn!(self, |c, pg| {
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
        self.pledge(ws, PledgeRef(number))
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("P-{number} vanished after insert")))
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

    /// Marks a pledge kept or released, only if it is still open or broken. Returns whether it changed.
    pub async fn resolve_pledge(
        &mut self,
        ws: WorkspaceId,
        pledge: PledgeId,
        to: PledgeStatus,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = on_conn!(self, |c, pg| {
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
        Ok(changed == 1)
    }

    /// Moves an open or broken pledge's due date; a broken one is open again. Returns whether it changed.
    pub async fn extend_pledge(
        &mut self,
        ws: WorkspaceId,
        pledge: PledgeId,
        due_on: NaiveDate,
    ) -> Result<bool, StoreError> {
        let changed = on_conn!(self, |c, pg| {
            sqlx::query(
                "UPDATE pledges SET due_on = $3, status = 'open' \
                 WHERE workspace_id = $1 AND id = $2 AND status IN ('open', 'broken')",
            )
            .bind(ws.0)
            .bind(pledge.0)
            .bind(day_text(due_on))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    // ----- event log ----------------------------------------------------------------------------

    /// Appends to the event log; every change a command makes writes one.
    pub async fn append_event(
        &mut self,
        ws: WorkspaceId,
        event: &NewEvent<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
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
        rows.into_iter()
            .map(|(kind, subject, actor, data, at)| {
                Ok(EventRecord {
                    kind: EventKind::from_stored(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown event kind {kind:?}")))?,
                    subject,
                    actor: actor.map(MemberId),
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                    at: from_millis(at),
                })
            })
            .collect()
    }

    // ----- scheduler ----------------------------------------------------------------------------

    /// Channels in id order after `after`, across workspaces: the scheduler serves every workspace.
    pub async fn channels_after(&mut self, after: ChannelId, limit: i64) -> Result<Vec<ScheduledChannel>, StoreError> {
        let rows: Vec<ScheduledChannelRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT id, workspace_id, external_id, name, schedule, time_zone, quiet_weekdays, holidays, paused_until, \
                 rules, escalate_after_days, created_at FROM channels WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after.0)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(ScheduledChannelRow::into_record).collect()
    }

    /// Open pledges (not yet broken, kept or released) of the channels with ids in (`after`, `last`],
    /// across workspaces: one query for a page of channels the scheduler is ticking.
    pub async fn open_pledges_in_channels(
        &mut self,
        after: ChannelId,
        last: ChannelId,
    ) -> Result<Vec<PledgeRecord>, StoreError> {
        let rows: Vec<PledgeRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                PLEDGE_COLUMNS,
                " WHERE p.channel_id > $1 AND p.channel_id <= $2 AND p.status = 'open' ORDER BY p.due_on, p.number"
            ))
            .bind(after.0)
            .bind(last.0)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(PledgeRow::into_record).collect()
    }

    /// Claims one firing of a job for a channel; false when it was claimed before (by this or any
    /// other replica). The outcome says what happened: fired, suppressed (with why) or skipped.
    pub async fn record_occurrence(
        &mut self,
        ws: WorkspaceId,
        occurrence: &NewOccurrence<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let NewOccurrence { channel, job, due_at, outcome, reason } = *occurrence;
        let inserted = on_conn!(self, |c, pg| {
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
        on_conn!(self, |c, pg| {
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
        let changed = on_conn!(self, |c, pg| {
            sqlx::query("UPDATE pledges SET status = 'broken' WHERE workspace_id = $1 AND id = $2 AND status = 'open'")
                .bind(ws.0)
                .bind(pledge.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    // ----- outbox -------------------------------------------------------------------------------

    /// Queues a post the bot owes; false when a post with this idempotency key was queued before
    /// (a job that runs twice owes it once).
    pub async fn enqueue_message(
        &mut self,
        ws: WorkspaceId,
        channel: Option<ChannelId>,
        recipient: &str,
        idempotency_key: &str,
        message: &Reply,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let inserted = on_conn!(self, |c, pg| {
            sqlx::query(
                "INSERT INTO outbound_messages (workspace_id, channel_id, recipient, idempotency_key, message, status, \
                 attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) \
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(ws.0)
            .bind(channel.map(|c| c.0))
            .bind(recipient)
            .bind(idempotency_key)
            .bind(&json)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        // Every recipient has a pacing row, so claiming can lock it (see claim_due_messages).
        on_conn!(self, |c, pg| {
            sqlx::query(
                "INSERT INTO delivery_pacing (workspace_id, recipient, next_allowed_at) VALUES ($1, $2, 0) \
                 ON CONFLICT (workspace_id, recipient) DO NOTHING",
            )
            .bind(ws.0)
            .bind(recipient)
            .execute(&mut *c)
            .await?;
        });
        Ok(inserted == 1)
    }

    /// Claims due posts, at most one per recipient and only for recipients whose pace allows a
    /// post now, marks them sending, and moves each recipient's next slot `pace` later. On Postgres
    /// the rows and pacing slots are locked with SKIP LOCKED, so replicas never claim the same post
    /// or post twice to one channel within the pace.
    pub async fn claim_due_messages(
        &mut self,
        now: DateTime<Utc>,
        pace: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<OutboundMessage>, StoreError> {
        const CANDIDATES: &str = "SELECT o.id, o.workspace_id, o.recipient FROM outbound_messages o \
             JOIN delivery_pacing p ON p.workspace_id = o.workspace_id AND p.recipient = o.recipient \
             WHERE o.status = 'pending' AND o.next_attempt_at <= $1 AND p.next_allowed_at <= $1 \
             ORDER BY o.id LIMIT $2";
        const PG_CANDIDATES: &str = "SELECT o.id, o.workspace_id, o.recipient FROM outbound_messages o \
             JOIN delivery_pacing p ON p.workspace_id = o.workspace_id AND p.recipient = o.recipient \
             WHERE o.status = 'pending' AND o.next_attempt_at <= $1 AND p.next_allowed_at <= $1 \
             ORDER BY o.id LIMIT $2 FOR UPDATE OF o, p SKIP LOCKED";
        let candidates: Vec<(i64, i64, String)> = on_conn!(self, |c, pg| {
            sqlx::query_as(if pg { PG_CANDIDATES } else { CANDIDATES })
                .bind(to_millis(now))
                .bind(limit)
                .fetch_all(&mut *c)
                .await?
        });
        let mut seen = std::collections::HashSet::new();
        let mut claimed = Vec::new();
        for (id, ws, recipient) in candidates {
            if !seen.insert((ws, recipient.clone())) {
                continue;
            }
            let row: Option<OutboxRow> = on_conn!(self, |c, pg| {
                sqlx::query_as(
                    "UPDATE outbound_messages SET status = 'sending', attempts = attempts + 1, claimed_at = $2 \
                     WHERE id = $1 AND status = 'pending' RETURNING id, workspace_id, channel_id, recipient, \
                     idempotency_key, message, attempts, created_at",
                )
                .bind(id)
                .bind(to_millis(now))
                .fetch_optional(&mut *c)
                .await?
            });
            on_conn!(self, |c, pg| {
                sqlx::query(
                    "UPDATE delivery_pacing SET next_allowed_at = $3 WHERE workspace_id = $1 AND recipient = $2",
                )
                .bind(ws)
                .bind(&recipient)
                .bind(to_millis(now + pace))
                .execute(&mut *c)
                .await?;
            });
            if let Some(row) = row {
                claimed.push(row.into_record()?);
            }
        }
        Ok(claimed)
    }

    pub async fn message_delivered(
        &mut self,
        id: OutboundId,
        platform_message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
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
        on_conn!(self, |c, pg| {
            sqlx::query(
                "UPDATE outbound_messages SET status = $2, last_error = $3, \
                 next_attempt_at = COALESCE($4, next_attempt_at) WHERE id = $1",
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

    /// Holds every post to one recipient until `until` (a 429's Retry-After), others unaffected.
    pub async fn delay_recipient(
        &mut self,
        ws: WorkspaceId,
        recipient: &str,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
            sqlx::query(
                "UPDATE delivery_pacing SET next_allowed_at = $3 \
                 WHERE workspace_id = $1 AND recipient = $2 AND next_allowed_at < $3",
            )
            .bind(ws.0)
            .bind(recipient)
            .bind(to_millis(until))
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Posts left "sending" since before `claimed_before`: their outcome is unknown (a crash, a
    /// timeout), so they are reconciled with the platform before any retry.
    pub async fn stale_sending_messages(
        &mut self,
        claimed_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboundMessage>, StoreError> {
        let rows: Vec<OutboxRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT id, workspace_id, channel_id, recipient, idempotency_key, message, attempts, created_at \
                 FROM outbound_messages WHERE status = 'sending' AND claimed_at < $1 ORDER BY id LIMIT $2",
            )
            .bind(to_millis(claimed_before))
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(OutboxRow::into_record).collect()
    }

    /// Puts an unknown-outcome post back in the queue (it was not found on the platform).
    pub async fn requeue_message(&mut self, id: OutboundId, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_conn!(self, |c, pg| {
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

    /// The platform's team id for a workspace, to find its token when delivering.
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
            sqlx::query_as(
                "SELECT id, workspace_id, channel_id, recipient, idempotency_key, message, attempts, created_at \
                 FROM outbound_messages WHERE workspace_id = $1 ORDER BY id",
            )
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
        let dead: Vec<(i64, i64, String, i32, Option<String>)> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT id, workspace_id, recipient, attempts, last_error FROM outbound_messages \
                 WHERE status = 'dead' ORDER BY id DESC LIMIT $1",
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
                .map(|(id, ws, recipient, attempts, error)| DeadPost {
                    id: OutboundId(id),
                    workspace_id: WorkspaceId(ws),
                    recipient,
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

/// kind, subject, actor, data, at
type EventRow = (String, Option<String>, Option<i64>, String, i64);

/// Escapes `%`, `_` and the escape character itself, so a search word matches literally.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}
