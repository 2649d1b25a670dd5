//! Storage: one interface, two backends. Postgres is the production store shared by any number of
//! replicas; SQLite is the embedded default for one node. The `DATABASE_URL` scheme picks one.
//!
//! Every operation lives on [`Tx`] and takes the workspace id first. A `Tx` is one of three things:
//! a write transaction ([`Store::begin`]; dropping it without [`Tx::commit`] rolls it back), a
//! read-only transaction ([`Store::read`], which never waits for writers), or a connection where each
//! statement commits on its own ([`Store::autocommit`], for writes that are one statement). The SQL
//! is written once; [`on_conn!`] compiles each body for both drivers, so the two backends cannot
//! drift apart query by query.
//!
//! SQLite allows one writer at a time, so it gets two pools: one connection for writes, a few for
//! reads (WAL mode lets them read while the writer writes). On Postgres, writes may hold at most
//! [`write_slots`] of the pool's connections, so reads always find one.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Database, PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::domain::experiment::ExperimentStatus;
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::pledge::PledgeStatus;
use crate::message::Message;

pub use pages::{CheckInReads, NewPost};
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
    /// [`Store::connect_existing`] found no database nudge has set up: what is missing.
    #[error("{0}")]
    NotSetUp(String),
}

impl StoreError {
    /// A conflict with another transaction that running the same work again resolves: a deadlock
    /// or a serialization failure on Postgres, a busy database file on SQLite.
    pub fn is_conflict(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(error)) = self else { return false };
        match error.code().as_deref() {
            Some("40P01" | "40001") => true,
            // SQLITE_BUSY and its extended codes (5, 261, 517): another writer held the file too long.
            Some(code) => matches!(code, "5" | "261" | "517"),
            None => false,
        }
    }
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
enum Pools {
    Postgres(PgPool),
    Sqlite { read: SqlitePool, write: SqlitePool },
}

/// What every clone of a [`Store`] shares.
struct Shared {
    /// Woken when a committed transaction queued posts, so the sender does not poll.
    outbox_queued: Notify,
    /// Postgres only: the connections writes may hold at once.
    write_slots: Option<Arc<Semaphore>>,
    /// Write transactions and autocommit connections begun, for tests that prove work did nothing.
    writes_begun: AtomicU64,
}

/// The handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pools: Pools,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password, so only the backend is shown.
        f.debug_struct("Store").field("backend", &self.backend()).finish()
    }
}

/// A transaction, or a connection in autocommit (see the module docs).
pub struct Tx {
    conn: TxConn,
    /// Write statements run so far: a command that changed something cannot be refused silently.
    writes: u32,
    /// Posts were queued: the sender is woken when this commits.
    queued_posts: bool,
    shared: Arc<Shared>,
    _slot: Option<OwnedSemaphorePermit>,
}

enum TxConn {
    Postgres(Held<Postgres>),
    Sqlite(Held<Sqlite>),
}

enum Held<DB: Database> {
    Transaction(Transaction<'static, DB>),
    Autocommit(PoolConnection<DB>),
}

impl<DB: Database> Held<DB> {
    fn conn(&mut self) -> &mut DB::Connection {
        match self {
            Held::Transaction(t) => t,
            Held::Autocommit(c) => c,
        }
    }
}

/// Runs `$body` with `$c` bound to the transaction's connection, once per backend. The body is
/// type-checked against both drivers; `$pg` is true on Postgres for the few dialect differences.
/// `on_conn!(write self, …)` also counts a write statement.
macro_rules! on_conn {
    (write $tx:expr, |$c:ident, $pg:ident| $body:expr) => {{
        $tx.writes += 1;
        on_conn!($tx, |$c, $pg| $body)
    }};
    ($tx:expr, |$c:ident, $pg:ident| $body:expr) => {
        match &mut $tx.conn {
            TxConn::Postgres(held) => {
                let $c: &mut sqlx::PgConnection = held.conn();
                #[allow(unused_variables)]
                let $pg = true;
                $body
            }
            TxConn::Sqlite(held) => {
                let $c: &mut sqlx::SqliteConnection = held.conn();
                #[allow(unused_variables)]
                let $pg = false;
                $body
            }
        }
    };
}

/// Runs `$body` on a Postgres connection: for statements only Postgres has (arrays, `UNNEST`),
/// which the caller runs only after checking the backend.
macro_rules! on_postgres {
    (write $tx:expr, |$c:ident| $body:expr) => {{
        $tx.writes += 1;
        on_postgres!($tx, |$c| $body)
    }};
    ($tx:expr, |$c:ident| $body:expr) => {
        match &mut $tx.conn {
            TxConn::Postgres(held) => {
                let $c: &mut sqlx::PgConnection = held.conn();
                $body
            }
            TxConn::Sqlite(_) => return Err(StoreError::Corrupt("a Postgres statement was sent to SQLite".into())),
        }
    };
}

/// Of `max_connections`, how many writes may hold at once: the rest stay free for reads.
pub fn write_slots(max_connections: u32) -> usize {
    let max = max_connections.max(1) as usize;
    (max - (max / 4).max(1)).max(1)
}

impl Store {
    /// Connects to the database named by `url` (`postgres://…` or `sqlite://…`), creating an SQLite
    /// file if it is missing. Does not migrate; call [`Store::migrate`].
    pub async fn connect(url: &SecretString, max_connections: u32) -> Result<Store, StoreError> {
        Store::open(url.expose_secret(), max_connections, true).await
    }

    /// Connects to a database nudge has already set up, for commands that inspect it: never creates
    /// an SQLite file and never migrates, so a mistyped or missing `DATABASE_URL` is reported instead
    /// of answered from a new, empty database. Fails with [`StoreError::NotSetUp`] when the SQLite
    /// file does not exist or the database lacks this version's migrations.
    pub async fn connect_existing(url: &SecretString, max_connections: u32) -> Result<Store, StoreError> {
        let url = url.expose_secret();
        if backend_of(url) == Some(Backend::Sqlite) && !url.contains(":memory:") {
            let file = SqliteConnectOptions::from_str(url)?.get_filename().to_path_buf();
            if !file.is_file() {
                return Err(StoreError::NotSetUp(format!("there is no database file {}", file.display())));
            }
        }
        let store = Store::open(url, max_connections, false).await?;
        if let Some(missing) = store.missing_migration().await? {
            store.close().await;
            return Err(StoreError::NotSetUp(format!("its schema lacks this nudge's migration {missing}")));
        }
        Ok(store)
    }

    /// The first of this binary's migrations the database has not applied, if any.
    async fn missing_migration(&self) -> Result<Option<String>, StoreError> {
        let mut tx = self.read_once().await?;
        let applied: Vec<i64> = on_conn!(tx, |c, pg| {
            let table = if pg {
                "SELECT to_regclass('_sqlx_migrations') IS NOT NULL"
            } else {
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            };
            if sqlx::query_scalar(table).fetch_one(&mut *c).await? {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(&mut *c).await?
            } else {
                Vec::new()
            }
        });
        let migrator = match self.backend() {
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        };
        Ok(migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .find(|m| !applied.contains(&m.version))
            .map(|m| format!("{:04} ({})", m.version, m.description)))
    }

    /// `create`: make a missing SQLite file and put it in WAL mode (which the file keeps); without
    /// it, an SQLite file is opened as it is.
    async fn open(url: &str, max_connections: u32, create: bool) -> Result<Store, StoreError> {
        let (pools, write_slots) = match backend_of(url) {
            Some(Backend::Postgres) => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?;
                (Pools::Postgres(pool), Some(Arc::new(Semaphore::new(write_slots(max_connections.max(2))))))
            }
            Some(Backend::Sqlite) => {
                let mut options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(create)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                if create {
                    options = options.journal_mode(SqliteJournalMode::Wal);
                }
                let pool = |max: u32| {
                    SqlitePoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(Duration::from_secs(10))
                        .before_acquire(|conn, _| Box::pin(outside_any_transaction(conn)))
                        .connect_with(options.clone())
                };
                let write = pool(1).await?;
                // An in-memory database exists once per connection, so reads must share the writer's.
                let read =
                    if url.contains(":memory:") { write.clone() } else { pool(max_connections.clamp(1, 4)).await? };
                (Pools::Sqlite { read, write }, None)
            }
            None => {
                return Err(StoreError::Database(sqlx::Error::Configuration(
                    "DATABASE_URL must start with postgres:// or sqlite://".into(),
                )));
            }
        };
        let shared = Shared { outbox_queued: Notify::new(), write_slots, writes_begun: AtomicU64::new(0) };
        Ok(Store { pools, shared: Arc::new(shared) })
    }

    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Postgres(_) => Backend::Postgres,
            Pools::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// Applies the backend's migrations; safe to run on every start and from several replicas.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pools {
            Pools::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
            Pools::Sqlite { write, .. } => SQLITE_MIGRATIONS.run(write).await?,
        }
        Ok(())
    }

    /// For `/readyz`: one small write, committed. `SELECT 1` answers on a full disk, a read-only
    /// file or a read-only replica, where every command and every scheduled post would fail.
    pub async fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.autocommit().await?;
        on_conn!(write tx, |c, pg| {
            sqlx::query("UPDATE readiness_probe SET checked_at = $1 WHERE id = 1")
                .bind(to_millis(now))
                .execute(&mut *c)
                .await
                .map(drop)?
        });
        tx.commit().await
    }

    async fn write_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.shared.writes_begun.fetch_add(1, Ordering::Relaxed);
        let slots = self.shared.write_slots.clone()?;
        // The semaphore is never closed, so acquiring only fails if it were; then go without.
        slots.acquire_owned().await.ok()
    }

    fn tx(&self, conn: TxConn, slot: Option<OwnedSemaphorePermit>) -> Tx {
        Tx { conn, writes: 0, queued_posts: false, shared: self.shared.clone(), _slot: slot }
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`),
    /// so two writers queue instead of failing when a read turns into a write.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let slot = self.write_slot().await;
        let conn = match &self.pools {
            Pools::Postgres(pool) => TxConn::Postgres(Held::Transaction(pool.begin().await?)),
            Pools::Sqlite { write, .. } => {
                TxConn::Sqlite(Held::Transaction(write.begin_with("BEGIN IMMEDIATE").await?))
            }
        };
        Ok(self.tx(conn, slot))
    }

    /// Starts a read-only transaction: one consistent view, and it never waits for a writer.
    pub async fn read(&self) -> Result<Tx, StoreError> {
        let conn = match &self.pools {
            Pools::Postgres(pool) => TxConn::Postgres(Held::Transaction(pool.begin_with("BEGIN READ ONLY").await?)),
            Pools::Sqlite { read, .. } => TxConn::Sqlite(Held::Transaction(read.begin().await?)),
        };
        Ok(self.tx(conn, None))
    }

    /// For a write that Postgres does in one statement (atomic by itself): a connection where each
    /// statement commits on its own, one round trip instead of three. SQLite does such writes in
    /// several statements, so there it is a write transaction (local, and as cheap). Either way
    /// [`Tx::commit`] ends it.
    pub async fn autocommit(&self) -> Result<Tx, StoreError> {
        match &self.pools {
            Pools::Postgres(pool) => {
                let slot = self.write_slot().await;
                Ok(self.tx(TxConn::Postgres(Held::Autocommit(pool.acquire().await?)), slot))
            }
            Pools::Sqlite { .. } => self.begin().await,
        }
    }

    /// A read connection without a transaction, for one statement (the scheduler's idle probe).
    pub async fn read_once(&self) -> Result<Tx, StoreError> {
        let conn = match &self.pools {
            Pools::Postgres(pool) => TxConn::Postgres(Held::Autocommit(pool.acquire().await?)),
            Pools::Sqlite { read, .. } => TxConn::Sqlite(Held::Autocommit(read.acquire().await?)),
        };
        Ok(self.tx(conn, None))
    }

    /// Resolves when a committed transaction has queued posts since the last wake-up.
    pub async fn posts_queued(&self) {
        self.shared.outbox_queued.notified().await;
    }

    /// Write transactions and autocommit connections begun by this process (all clones).
    pub fn writes_begun(&self) -> u64 {
        self.shared.writes_begun.load(Ordering::Relaxed)
    }

    /// The Postgres pool, for `LISTEN`; `None` on SQLite.
    pub(crate) fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.pools {
            Pools::Postgres(pool) => Some(pool),
            Pools::Sqlite { .. } => None,
        }
    }

    pub async fn close(&self) {
        match &self.pools {
            Pools::Postgres(pool) => pool.close().await,
            Pools::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
        }
    }
}

/// Whether a pooled SQLite connection may be handed out: not when it is still inside a
/// transaction. A COMMIT that fails on a full disk or a read-only file can leave SQLite's
/// transaction rolled back while sqlx still counts it open (its own ROLLBACK then fails too); such a
/// connection would refuse every later BEGIN until the pool recycled it, half an hour later.
/// Discarding it makes the next acquire open a fresh one, so nudge recovers as soon as the file is
/// writable. The ping is queued behind any rollback a dropped transaction left, so the count it
/// reads is settled.
async fn outside_any_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    conn.ping().await?;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("discarding an SQLite connection left inside a failed transaction");
    }
    Ok(clean)
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

/// A name from a platform (a team, channel or member name) with control characters taken out:
/// Postgres refuses a NUL that SQLite would keep, and a name is never meant to hold one.
pub(crate) fn plain(name: &str) -> std::borrow::Cow<'_, str> {
    if name.chars().any(char::is_control) {
        std::borrow::Cow::Owned(name.chars().filter(|c| !c.is_control()).collect())
    } else {
        std::borrow::Cow::Borrowed(name)
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

// The queries, one file per area; after the macros above, which they use.
mod dashboard;
mod events;
mod experiments;
mod outbox;
mod pages;
mod pledges;
mod records;
mod scheduling;
mod workspaces;

/// The channel Postgres notifies when posts are queued, so every replica's sender wakes.
pub const OUTBOX_CHANNEL: &str = "nudge_outbox";

impl Tx {
    /// Commits (a no-op in autocommit, where every statement already has), then wakes the sender
    /// if posts were queued.
    pub async fn commit(self) -> Result<(), StoreError> {
        let Tx { conn, queued_posts, shared, .. } = self;
        match conn {
            TxConn::Postgres(Held::Transaction(t)) => t.commit().await?,
            TxConn::Sqlite(Held::Transaction(t)) => t.commit().await?,
            TxConn::Postgres(Held::Autocommit(_)) | TxConn::Sqlite(Held::Autocommit(_)) => {}
        }
        if queued_posts {
            shared.outbox_queued.notify_one();
        }
        Ok(())
    }

    /// Write statements this transaction has run.
    pub fn writes(&self) -> u32 {
        self.writes
    }
}
