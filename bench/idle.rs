//! An idle minute: the real `nudge` binary serving 20,000 channels on Postgres with nothing due,
//! and what it costs: CPU seconds of the nudge process and database transactions (from
//! `pg_stat_database`). Run with `cargo bench --bench idle` (Postgres on 127.0.0.1:5432, trust auth;
//! it makes a fresh `nudge_bench_idle` database). CHANNELS and SECONDS change the count and the
//! length of the idle stretch.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use sqlx::Connection;

use nudge::store::{ChannelDefaults, Store};

const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DATABASE: &str = "postgres://postgres@127.0.0.1:5432/nudge_bench_idle";

/// A process's CPU time so far (user + system), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Transactions committed and rolled back in the bench database so far, read from another one.
async fn transactions() -> anyhow::Result<i64> {
    let mut conn = sqlx::PgConnection::connect(ADMIN).await?;
    let count: i64 = sqlx::query_scalar(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'nudge_bench_idle'",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(count)
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let channels: usize = std::env::var("CHANNELS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let seconds: u64 = std::env::var("SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let mut admin = sqlx::PgConnection::connect(ADMIN).await?;
    sqlx::query("DROP DATABASE IF EXISTS nudge_bench_idle WITH (FORCE)").execute(&mut admin).await?;
    sqlx::query("CREATE DATABASE nudge_bench_idle").execute(&mut admin).await?;
    admin.close().await?;

    let store = Store::connect(&SecretString::from(DATABASE), 4).await?;
    store.migrate().await?;
    let now = Utc::now();
    let mut tx = store.begin().await?;
    let ws = tx.ensure_workspace("slack", "T01", "Acme", now).await?;
    let defaults = ChannelDefaults {
        schedule: "30 9 * * 1".into(),
        time_zone: "UTC".into(),
        escalate_after_days: 3,
        quiet_weekdays: String::new(),
    };
    for n in 0..channels {
        tx.ensure_channel(ws, &format!("C{n:05}"), &format!("team-{n}"), &defaults, now).await?;
    }
    tx.commit().await?;
    store.close().await;
    // Whatever the time of day, nothing comes due during the measured stretch.
    let mut conn = sqlx::PgConnection::connect(DATABASE).await?;
    let later = (now + chrono::Duration::seconds(seconds as i64 + 600)).timestamp_millis();
    sqlx::query("UPDATE next_firings SET due_at = GREATEST(due_at, $1)").bind(later).execute(&mut conn).await?;
    conn.close().await?;

    let dir = tempfile::tempdir()?;
    let child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .env("NUDGE_LISTEN", "127.0.0.1:0")
        .env("DATABASE_URL", DATABASE)
        .env("NUDGE_SLACK_SIGNING_SECRET", "bench")
        .env("NUDGE_SLACK_BOT_TOKEN", "xoxb-bench")
        .env("NUDGE_SLACK_API_URL", "http://127.0.0.1:9/api")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let running = Running(child);
    let pid = running.0.id();
    // Start-up (migrations, planning what has no next firing) is not part of the idle minute.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let (cpu_before, transactions_before) = (cpu_seconds(pid), transactions().await?);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu, transactions) = (cpu_seconds(pid) - cpu_before, transactions().await? - transactions_before);
    drop(running);
    println!("channels, nothing due:          {channels}");
    println!("idle stretch:                   {seconds} s");
    println!("nudge CPU in it:                {cpu:.2} s (target <= 0.15 s per minute)");
    println!("database transactions in it:    {transactions} (target <= 150 per minute)");
    println!("(pg_stat_database counts with a delay of up to ten seconds at either end)");
    Ok(())
}
