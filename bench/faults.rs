//! The faults nudge must survive, in one run, with figures: posts lost, posts doubled, posts sent
//! to a channel inside its Retry-After, the healthy channels' latency while one channel hangs, and
//! how long nudge takes to work again after an SQLite disk-full and a Postgres outage.
//!
//! Run with `cargo bench --bench faults` as root (it mounts a small tmpfs to fill a disk), with
//! Postgres on 127.0.0.1:5432 (trust auth; it makes a fresh `nudge_bench_faults` database). The
//! outbox part runs on the wall clock, so retries take their real time: about a minute in all.
//! `POSTS` changes the number of posts (default 240 over 24 channels).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command as Process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use nudge::clock::SystemClock;
use nudge::commands::{Commands, Invocation, parse};
use nudge::config::Config;
use nudge::message::Message;
use nudge::outbox::{Deliveries, Delivery, Sender, SenderSettings};
use nudge::platforms::slack::delivery::SlackDelivery;
use nudge::platforms::slack::{self, Slack};
use nudge::store::{ChannelDefaults, Recipient, Store, WorkspaceId};

/// The channel that hangs for longer than nudge waits for an answer.
const HANGING: &str = "CHANG";

/// What the stand-in for Slack saw and did.
#[derive(Default)]
struct Seen {
    /// Posts that landed, by channel, in order: (outbox id, ts).
    landed: HashMap<String, Vec<(i64, String)>>,
    /// Per channel, the instant before which Slack asked not to be called again (after a 429).
    not_before: HashMap<String, Instant>,
    early: u64,
    /// When each outbox id first landed.
    landed_at: HashMap<i64, Instant>,
    calls: u64,
}

struct StandIn {
    seen: Mutex<Seen>,
    next_ts: AtomicU64,
    /// Whether the 429s, 502s and 503s are served (off: only the hanging channel misbehaves).
    faults: bool,
}

/// chat.postMessage with faults: every fifth call answers 429 (Retry-After 1) without posting,
/// every seventh posts and then answers 502, every eleventh answers 503 without posting, and the
/// hanging channel posts and answers only after 12 s (nudge gives up waiting at 10 s).
async fn post_message(State(standin): State<Arc<StandIn>>, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    let channel = body["channel"].as_str().unwrap_or_default().to_string();
    let outbox_id = body["metadata"]["event_payload"]["outbox_id"].as_i64().unwrap_or(-1);
    let n;
    {
        let mut seen = standin.seen.lock().unwrap();
        seen.calls += 1;
        n = seen.calls;
        if let Some(until) = seen.not_before.get(&channel)
            && Instant::now() < *until
        {
            seen.early += 1;
        }
    }
    let land = |standin: &StandIn| {
        let ts = format!("1764000000.{:06}", standin.next_ts.fetch_add(1, Ordering::Relaxed));
        let mut seen = standin.seen.lock().unwrap();
        seen.landed.entry(channel.clone()).or_default().push((outbox_id, ts.clone()));
        seen.landed_at.entry(outbox_id).or_insert_with(Instant::now);
        ts
    };
    if channel == HANGING {
        land(&standin);
        tokio::time::sleep(Duration::from_secs(12)).await;
        return StatusCode::OK.into_response();
    }
    if !standin.faults {
        let ts = land(&standin);
        return axum::Json(json!({"ok": true, "channel": channel, "ts": ts, "message": {}})).into_response();
    }
    if n % 5 == 0 {
        standin.seen.lock().unwrap().not_before.insert(channel, Instant::now() + Duration::from_secs(1));
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
    }
    if n % 7 == 0 {
        land(&standin);
        return StatusCode::BAD_GATEWAY.into_response();
    }
    if n % 11 == 0 {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let ts = land(&standin);
    axum::Json(json!({"ok": true, "channel": channel, "ts": ts, "message": {}})).into_response()
}

/// conversations.history over what landed in the channel, newest first, with metadata.
async fn history(State(standin): State<Arc<StandIn>>, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let channel = form.get("channel").cloned().unwrap_or_default();
    let limit: usize = form.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let start: usize = form.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let seen = standin.seen.lock().unwrap();
    let landed: Vec<&(i64, String)> = seen.landed.get(&channel).map(|l| l.iter().rev().collect()).unwrap_or_default();
    let page: Vec<Value> = landed
        .iter()
        .skip(start)
        .take(limit)
        .map(|(id, ts)| {
            json!({"type": "message", "ts": ts, "metadata": {"event_type": "nudge_outbox", "event_payload": {"outbox_id": id}}})
        })
        .collect();
    let more = start + limit < landed.len();
    let cursor = if more { (start + limit).to_string() } else { String::new() };
    axum::Json(json!({"ok": true, "messages": page, "has_more": more, "response_metadata": {"next_cursor": cursor}}))
        .into_response()
}

async fn fresh_postgres(name: &str) -> anyhow::Result<String> {
    let mut conn = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut conn).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
    conn.close().await?;
    Ok(format!("postgres://postgres@127.0.0.1:5432/{name}"))
}

fn config(api_url: &str) -> Config {
    // An empty settings file, so a developer's ./config/nudge.toml cannot change the figures.
    let empty = std::env::temp_dir().join("nudge-bench-faults.toml");
    std::fs::write(&empty, "").expect("a temporary settings file");
    let env: HashMap<String, String> = [
        ("NUDGE_CONFIG", empty.display().to_string()),
        ("NUDGE_SLACK_SIGNING_SECRET", "bench-secret".to_string()),
        ("NUDGE_SLACK_BOT_TOKEN", "xoxb-bench-faults".to_string()),
        ("NUDGE_SLACK_API_URL", api_url.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Config::load(&env).expect("the bench's configuration is valid")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Part one: posts through a faulty Slack (lost, doubled, early); with `faults` off, one post to
/// each of `channels` healthy channels beside the hanging one (their latency).
async fn outbox_under_faults(posts: usize, channel_count: usize, faults: bool) -> anyhow::Result<()> {
    let standin = Arc::new(StandIn { seen: Mutex::default(), next_ts: AtomicU64::new(1), faults });
    let app = Router::new()
        .route("/api/chat.postMessage", post(post_message))
        .route("/api/conversations.history", post(history))
        .with_state(standin.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api_url = format!("http://{}/api", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let store = Store::connect(&SecretString::from(fresh_postgres("nudge_bench_faults").await?), 10).await?;
    store.migrate().await?;
    let config = config(&api_url);
    let slack_state = Arc::new(Slack::new(slack::configured(&config).expect("Slack is configured"), &config));
    let delivery = Arc::new(SlackDelivery::new(slack_state, store.clone()));
    let deliveries = Deliveries::from([("slack", delivery as Arc<dyn Delivery>)]);

    let now = Utc::now();
    let mut tx = store.begin().await?;
    let ws = tx.ensure_workspace("slack", "T01", "Acme", now).await?;
    let defaults = ChannelDefaults {
        schedule: "30 9 * * 1".into(),
        time_zone: "UTC".into(),
        escalate_after_days: 3,
        quiet_weekdays: String::new(),
    };
    let channels: Vec<String> = (0..channel_count).map(|n| format!("C{n:02}")).chain([HANGING.to_string()]).collect();
    let mut queued_at = HashMap::new();
    let mut ids = Vec::new();
    for n in 0..posts {
        let channel = &channels[n % (channels.len() - 1)];
        let record = tx.ensure_channel(ws, channel, channel, &defaults, now).await?;
        let key = format!("bench:{n}");
        tx.enqueue_message(
            ws,
            record.id,
            Recipient::Channel(record.id),
            &key,
            &Message::channel(format!("post {n}")),
            now,
        )
        .await?;
        ids.push((channel.clone(), key));
    }
    let hanging = tx.ensure_channel(ws, HANGING, HANGING, &defaults, now).await?;
    tx.enqueue_message(ws, hanging.id, Recipient::Channel(hanging.id), "bench:hang", &Message::channel("slow"), now)
        .await?;
    tx.commit().await?;
    let started = Instant::now();
    for (_, key) in &ids {
        queued_at.insert(key.clone(), started);
    }

    let settings = SenderSettings { reconcile_after: Duration::from_secs(20), ..SenderSettings::default() };
    let sender = Sender::new(store.clone(), deliveries, Arc::new(SystemClock), settings);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(sender.run(shutdown.clone()));

    // Until every post is sent or dead, or three minutes.
    let deadline = Instant::now() + Duration::from_secs(180);
    let report = loop {
        let report = store.begin().await?.outbox_report(10).await?;
        if report.pending + report.sending == 0 || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    shutdown.cancel();
    let _ = running.await;
    let took = started.elapsed();

    let rows = store.read().await?.outbox_messages(ws).await?;
    store.close().await;
    let seen = standin.seen.lock().unwrap();
    let mut landed_count: HashMap<i64, u64> = HashMap::new();
    for posts in seen.landed.values() {
        for (id, _) in posts {
            *landed_count.entry(*id).or_default() += 1;
        }
    }
    let lost = rows.iter().filter(|m| !landed_count.contains_key(&m.id.0)).count();
    let doubled: u64 = landed_count.values().filter(|n| **n > 1).map(|n| n - 1).sum();
    let healthy: Vec<i64> = rows.iter().filter(|m| m.address != HANGING).map(|m| m.id.0).collect();
    let mut latencies: Vec<Duration> =
        healthy.iter().filter_map(|id| seen.landed_at.get(id)).map(|at| at.duration_since(started)).collect();
    latencies.sort();
    if faults {
        println!(
            "outbox under faults: {posts} posts to {channel_count} channels + 1 post to a channel that hangs 12 s"
        );
        println!(
            "  Slack calls: {}; every 5th a 429 (Retry-After 1), every 7th lands then 502, every 11th a 503",
            seen.calls
        );
        println!(
            "  finished in {:.1} s: sent {}, dead {}, still queued {}",
            took.as_secs_f64(),
            report.sent,
            report.dead,
            report.pending + report.sending
        );
        println!("  posts lost      {lost:>6}   (target 0)");
        println!("  posts doubled   {doubled:>6}   (target 0)");
        println!("  early retries   {:>6}   (posts inside a channel's Retry-After; target 0)", seen.early);
    } else {
        println!("one channel hangs 12 s beside {channel_count} healthy channels with one post each:");
        println!(
            "  healthy posts landed after p50 {:.3} s, p99 {:.3} s (before the fix: 10.1 s p50; target about 0.15 s)",
            percentile(&latencies, 0.5).as_secs_f64(),
            percentile(&latencies, 0.99).as_secs_f64()
        );
        println!("  lost {lost}, doubled {doubled}");
    }
    Ok(())
}

/// A typed command through the real command path, as Ada in #growth.
async fn command(commands: &Commands, ws: WorkspaceId, text: &str) -> bool {
    let invocation = Invocation {
        workspace: ws,
        channel_id: "C01".into(),
        channel_name: "growth".into(),
        member_id: "U01".into(),
        member_name: "Ada".into(),
        now: Utc::now(),
        direct: false,
    };
    let Ok(parsed) = parse("/experiment", text) else { return false };
    matches!(tokio::time::timeout(Duration::from_secs(3), commands.execute(invocation, parsed)).await, Ok(Ok(_)))
}

/// Tries a command every 10 ms from `since` until one succeeds: how long nudge took to work again.
async fn recovery(commands: &Commands, ws: WorkspaceId, since: Instant) -> Duration {
    let mut n = 0;
    loop {
        n += 1;
        if command(commands, ws, &format!("propose Recovered {n} | It works again | clicks 1 -> 2")).await {
            return since.elapsed();
        }
        if since.elapsed() > Duration::from_secs(120) {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn workspace(store: &Store) -> anyhow::Result<WorkspaceId> {
    let mut tx = store.begin().await?;
    let ws = tx.ensure_workspace("slack", "T01", "Acme", Utc::now()).await?;
    tx.commit().await?;
    Ok(ws)
}

/// Part two: SQLite on a disk that fills up, then has space again.
async fn sqlite_disk_full() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mounted = Process::new("mount").args(["-t", "tmpfs", "-o", "size=8192k", "tmpfs"]).arg(dir.path()).status()?;
    anyhow::ensure!(mounted.success(), "mounting a tmpfs needs root; run the bench as root");
    let url = format!("sqlite://{}", dir.path().join("nudge.db").display());
    let store = Store::connect(&SecretString::from(url), 5).await?;
    store.migrate().await?;
    let ws = workspace(&store).await?;
    let commands = Commands::new(store.clone(), config("http://127.0.0.1:9/api").defaults);
    command(&commands, ws, "propose Before | It works | clicks 1 -> 2").await;
    let filler = dir.path().join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler)?;
        let block = vec![0u8; 4096];
        while file.write_all(&block).and_then(|_| file.flush()).is_ok() {}
        while file.write_all(&block[..1]).is_ok() {}
    }
    let mut refused = 0;
    for n in 0..5 {
        if !command(&commands, ws, &format!("propose Full {n} | It fails | clicks 1 -> 2")).await {
            refused += 1;
        }
    }
    std::fs::remove_file(&filler)?;
    let freed = Instant::now();
    let took = recovery(&commands, ws, freed).await;
    println!("SQLite disk full: {refused} of 5 commands refused while full");
    println!("  recovery after space is freed: {:.3} s (target: the next command)", took.as_secs_f64());
    store.close().await;
    let _ = Process::new("umount").arg("-l").arg(dir.path()).status();
    Ok(())
}

/// A relay to Postgres that can be cut (every connection dropped, new ones refused), as a stopped
/// or restarting database looks to nudge, and restored.
struct Relay {
    address: SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    async fn start() -> anyhow::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (up, watch) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*watch.borrow() {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect("127.0.0.1:5432").await else { continue };
                let watch = watch.clone();
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let mut down = watch.clone();
                    let forward = async {
                        let mut a = vec![0u8; 16384];
                        let mut b = vec![0u8; 16384];
                        loop {
                            tokio::select! {
                                n = client_read.read(&mut a) => match n { Ok(n) if n > 0 => { if server_write.write_all(&a[..n]).await.is_err() { return } } _ => return },
                                n = server_read.read(&mut b) => match n { Ok(n) if n > 0 => { if client_write.write_all(&b[..n]).await.is_err() { return } } _ => return },
                            }
                        }
                    };
                    tokio::select! {
                        () = forward => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Ok(Relay { address, up })
    }
}

/// Part three: Postgres goes away for five seconds, then comes back.
async fn postgres_outage() -> anyhow::Result<()> {
    let direct = fresh_postgres("nudge_bench_faults_outage").await?;
    let relay = Relay::start().await?;
    let url = direct.replace("127.0.0.1:5432", &relay.address.to_string());
    let store = Store::connect(&SecretString::from(url), 5).await?;
    store.migrate().await?;
    let ws = workspace(&store).await?;
    let commands = Commands::new(store.clone(), config("http://127.0.0.1:9/api").defaults);
    command(&commands, ws, "propose Before | It works | clicks 1 -> 2").await;
    relay.up.send_replace(false);
    let mut refused = 0;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(5) {
        if !command(&commands, ws, "propose During | It waits | clicks 1 -> 2").await {
            refused += 1;
        }
    }
    relay.up.send_replace(true);
    let back = Instant::now();
    let took = recovery(&commands, ws, back).await;
    println!("Postgres stopped for 5 s: {refused} commands refused meanwhile");
    println!("  recovery after it is back: {:.3} s (target: the next command)", took.as_secs_f64());
    store.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let posts: usize = std::env::var("POSTS").ok().and_then(|v| v.parse().ok()).unwrap_or(240);
    outbox_under_faults(posts, 24, true).await?;
    outbox_under_faults(39, 39, false).await?;
    sqlite_disk_full().await?;
    postgres_outage().await?;
    Ok(())
}
