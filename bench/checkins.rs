//! Check-ins for 10,000 channels due in the same minute, handed to a local stand-in for Slack's API
//! with no rate limit: how long until every check-in is handed over, and the CPU per post.
//! Run with `cargo bench --bench checkins` (Postgres on 127.0.0.1:5432, trust auth; it makes a
//! fresh `nudge_bench_checkins` database). Set CHANNELS to change the count.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::routing::post;
use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use sqlx::Connection;

use nudge::clock::ManualClock;
use nudge::config::Config;
use nudge::outbox::{Deliveries, Delivery, Sender, SenderSettings};
use nudge::platforms::slack::delivery::SlackDelivery;
use nudge::platforms::slack::{self, Slack};
use nudge::scheduler::{Scheduler, SchedulerSettings};
use nudge::store::{ChannelDefaults, Store};

/// This process's CPU time so far (user + system), in seconds, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// A stand-in for chat.postMessage that accepts everything at once, as fast as it can.
async fn stand_in() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let posted = Arc::new(AtomicU64::new(0));
    let counter = posted.clone();
    let app =
        Router::new().route(
            "/api/chat.postMessage",
            post(move || {
                let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                async move {
                    axum::Json(serde_json::json!({"ok": true, "channel": "C", "ts": format!("1764000000.{n:06}")}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/api", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, posted))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let channels: usize = std::env::var("CHANNELS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let admin = "postgres://postgres@127.0.0.1:5432/postgres";
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::query("DROP DATABASE IF EXISTS nudge_bench_checkins WITH (FORCE)").execute(&mut conn).await?;
    sqlx::query("CREATE DATABASE nudge_bench_checkins").execute(&mut conn).await?;
    conn.close().await?;
    let store =
        Store::connect(&SecretString::from("postgres://postgres@127.0.0.1:5432/nudge_bench_checkins"), 10).await?;
    store.migrate().await?;
    let (api_url, posted) = stand_in().await?;

    // Monday 23 November 2026: channels made at 09:00, every one with the default Monday 09:30.
    let made = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
    let mut tx = store.begin().await?;
    let ws = tx.ensure_workspace("slack", "T01", "Acme", made).await?;
    let defaults = ChannelDefaults {
        schedule: "30 9 * * 1".into(),
        time_zone: "UTC".into(),
        escalate_after_days: 3,
        quiet_weekdays: String::new(),
    };
    for n in 0..channels {
        tx.ensure_channel(ws, &format!("C{n:05}"), &format!("team-{n}"), &defaults, made).await?;
    }
    tx.commit().await?;

    // Run from the crate root, so ./config/nudge.toml (all defaults) is read, then these.
    let env: HashMap<String, String> = [
        ("NUDGE_SLACK_SIGNING_SECRET", "bench".to_string()),
        ("NUDGE_SLACK_BOT_TOKEN", "xoxb-bench".to_string()),
        ("NUDGE_SLACK_API_URL", api_url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = Config::load(&env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 5).unwrap());
    let scheduler = Scheduler::new(store.clone(), clock.clone(), SchedulerSettings::default());
    let slack = Arc::new(Slack::new(slack::configured(&config).expect("slack is configured"), &config));
    let delivery: Arc<dyn Delivery> = Arc::new(SlackDelivery::new(slack, store.clone()));
    let deliveries = Deliveries::from([("slack", delivery)]);
    let sender = Sender::new(
        store.clone(),
        deliveries,
        clock.clone(),
        SenderSettings { batch: 500, ..SenderSettings::default() },
    );

    let (started, cpu_before) = (Instant::now(), cpu_seconds());
    let tick = scheduler.tick().await?;
    let queued_in = started.elapsed();
    let mut delivered = 0;
    while delivered < tick.fired {
        let round = sender.run_once().await?;
        delivered += round.delivered;
        if round.claimed == 0 {
            anyhow::bail!("the sender stopped with {delivered} of {} delivered", tick.fired);
        }
    }
    let (total, cpu) = (started.elapsed(), cpu_seconds() - cpu_before);
    println!("channels with a check-in due:   {channels}");
    println!("check-ins queued by one tick:   {} in {:.2} s", tick.fired, queued_in.as_secs_f64());
    println!("all handed over to the API in:  {:.2} s (target <= 5 s)", total.as_secs_f64());
    println!("posts the stand-in received:    {}", posted.load(Ordering::Relaxed));
    println!("posts per second:               {:.0}", delivered as f64 / total.as_secs_f64());
    println!(
        "CPU per post:                   {:.3} ms (this process, stand-in API included; Postgres not)",
        cpu * 1000.0 / delivered as f64
    );
    Ok(())
}
