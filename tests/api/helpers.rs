//! Test scaffolding: fresh databases on both backends, and the app started in-process on port 0.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use secrecy::SecretString;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use nudge::clock::ManualClock;
use nudge::config::Config;
use nudge::startup::Application;
use nudge::store::Store;

/// Where the tests find Postgres: `NUDGE_TEST_POSTGRES_URL`, else the local server of this
/// project's machines (trust auth). The URL names the maintenance database used to create and drop
/// one database per test.
pub fn postgres_admin_url() -> String {
    std::env::var("NUDGE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A fresh, empty database for one test, removed when the test ends.
pub struct TestDb {
    pub url: String,
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Postgres => TestDb::postgres().await,
            Backend::Sqlite => TestDb::sqlite(),
        }
    }

    /// A new database on the test Postgres server. A server that cannot be reached fails the test
    /// with instructions: the Postgres half of the suite is never skipped.
    pub async fn postgres() -> TestDb {
        let admin = postgres_admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "Postgres is not reachable at {admin}: {e}\nThe tests need it (they never skip a backend). Start it \
                 with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or point \
                 NUDGE_TEST_POSTGRES_URL at another server."
            )
        });
        let name = format!(
            "nudge_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_micros() % 1_000_000_000
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
        conn.close().await.ok();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base).to_string();
        TestDb { url: format!("{base}/{name}"), postgres_name: Some(name), _dir: None }
    }

    /// A new SQLite file in its own temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("nudge.db").display());
        TestDb { url, postgres_name: None, _dir: Some(dir) }
    }

    /// Another way to reach a database a test owns (through a relay, say); dropping it removes nothing.
    pub fn at_url(url: String) -> TestDb {
        TestDb { url, postgres_name: None, _dir: None }
    }

    /// An SQLite file in a directory the test owns (a small filesystem, say), left where it is.
    pub fn sqlite_in(dir: &std::path::Path) -> TestDb {
        let url = format!("sqlite://{}", dir.join("nudge.db").display());
        TestDb { url, postgres_name: None, _dir: None }
    }

    /// A connected, migrated store on this database.
    pub async fn store(&self) -> Store {
        let store =
            Store::connect(&SecretString::from(self.url.clone()), 5).await.expect("connect to the test database");
        store.migrate().await.expect("migrate the test database");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else { return };
        // Drop runs outside any runtime we may block, so the clean-up gets a thread of its own.
        let admin = postgres_admin_url();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// A channel nudge knows (made with the defaults on first sight), by its platform id.
pub async fn channel_in(
    tx: &mut nudge::store::Tx,
    ws: nudge::store::WorkspaceId,
    external_id: &str,
) -> nudge::store::ChannelId {
    let defaults = nudge::store::ChannelDefaults {
        schedule: "30 9 * * 1".into(),
        time_zone: "UTC".into(),
        escalate_after_days: 3,
        quiet_weekdays: String::new(),
    };
    tx.ensure_channel(ws, external_id, external_id, &defaults, monday_morning())
        .await
        .expect("the channel is stored")
        .id
}

/// Monday 23 November 2026, 10:00 UTC: tests start at a known instant.
pub fn monday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

/// The app, started in-process on port 0 against a fresh database.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub store: Store,
    /// The work the app does after answering (platform calls): what [`TestApp::settle`] waits for.
    tasks: tokio_util::task::TaskTracker,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _db: TestDb,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, &[]).await
    }

    /// Starts the app with extra settings, e.g. Slack's secrets and its API stand-in's URL.
    pub async fn spawn_with(backend: Backend, settings: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_on(TestDb::new(backend).await, settings).await
    }

    /// Starts the app on a database the test made.
    pub async fn spawn_on(db: TestDb, settings: &[(&str, &str)]) -> TestApp {
        let mut env = HashMap::new();
        env.insert("NUDGE_LISTEN".to_string(), "127.0.0.1:0".to_string());
        env.insert("DATABASE_URL".to_string(), db.url.clone());
        env.insert("NUDGE_CONFIG".to_string(), empty_config_file());
        for (key, value) in settings {
            env.insert(key.to_string(), value.to_string());
        }
        let config = Config::load(&env).expect("test configuration is valid");
        let clock = ManualClock::new(monday_morning());
        let app = Application::build(config, clock.clone()).await.expect("the app builds");
        let address = app.address();
        let store = app.store().clone();
        let tasks = app.tasks();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        TestApp { address, client: reqwest::Client::new(), clock, store, tasks, shutdown, server, _db: db }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request reaches the app")
    }

    /// Waits until everything the app started after its answers has finished (it calls no platform
    /// any more), so a test can assert that nothing more happened.
    pub async fn settle(&self) {
        self.tasks.close();
        tokio::time::timeout(std::time::Duration::from_secs(10), self.tasks.wait())
            .await
            .expect("the app's work after its answers finishes within 10 s");
        self.tasks.reopen();
    }

    /// Stops the server through its cancellation token and waits for it to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await.expect("the server task does not panic")
    }
}

/// An empty configuration file, so a developer's ./config/nudge.toml cannot change what tests see.
pub fn empty_config_file() -> String {
    let path = std::env::temp_dir().join("nudge-test-empty.toml");
    if !path.exists() {
        std::fs::write(&path, "").unwrap();
    }
    path.display().to_string()
}

/// Declares each test twice, once per backend: `mod postgres { … }` and `mod sqlite { … }`, so the
/// runner's output counts them per backend. The body gets a connected, migrated `Store`.
macro_rules! on_both_backends {
    ($(async fn $name:ident($store:ident: Store) $body:block)*) => {
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::helpers::TestDb::new($crate::helpers::Backend::Postgres).await;
                    let $store = db.store().await;
                    $body
                }
            )*
        }
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::helpers::TestDb::new($crate::helpers::Backend::Sqlite).await;
                    let $store = db.store().await;
                    $body
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
