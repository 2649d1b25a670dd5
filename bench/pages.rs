//! The dashboard's page and an export for a busy channel: 30 experiments with 20 readings each, 100
//! pledges and 20 learnings on SQLite (a temporary file), made through the slash-command path, then
//! 200 sequential requests of each against the app in-process. Prints p50/p99 and sizes beside the
//! budget. Run with `cargo bench --bench pages`; needs nothing else.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use chrono::{TimeZone, Utc};
use tokio_util::sync::CancellationToken;

use nudge::clock::{Clock, ManualClock};
use nudge::config::Config;
use nudge::platforms::slack::verify::sign;
use nudge::startup::Application;

const SECRET: &str = "bench-secret";
const REQUESTS: usize = 200;
/// The budget on this project's 2-core machines.
const BUDGET_P99_MS: f64 = 50.0;
const CSS: &str = include_str!("../src/web/dashboard.css");

/// A stand-in for Slack's Web API that accepts every call (celebrations, private answers).
async fn slack_stand_in() -> anyhow::Result<String> {
    let ok = || async { axum::Json(serde_json::json!({"ok": true, "channel": "C01", "ts": "1764000000.000100"})) };
    let app = Router::new()
        .route("/api/chat.postMessage", post(ok))
        .route("/api/chat.postEphemeral", post(ok))
        .route("/api/chat.update", post(ok))
        .fallback(ok);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/api", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

struct Bench {
    base: String,
    http: reqwest::Client,
    clock: std::sync::Arc<ManualClock>,
    sent: u64,
}

impl Bench {
    /// A slash command in #growth, signed as Slack signs it; returns the answer's body.
    async fn slash(&mut self, command: &str, text: &str, user: &str) -> anyhow::Result<String> {
        self.sent += 1;
        let body = serde_urlencoded::to_string([
            ("team_id", "T01"),
            ("team_domain", "acme"),
            ("channel_id", "C01"),
            ("channel_name", "growth"),
            ("user_id", user),
            ("user_name", &user.to_lowercase()),
            ("command", command),
            ("text", text),
            ("api_app_id", "A01"),
            ("response_url", "http://127.0.0.1:9/unused"),
            ("trigger_id", &format!("13345224609.738474920.{:031x}", self.sent)),
        ])?;
        let now = self.clock.now().timestamp();
        let answer = self
            .http
            .post(format!("{}/slack/commands", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", now.to_string())
            .header("x-slack-signature", sign(SECRET, now, body.as_bytes()))
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(answer.status().is_success(), "{command} {text}: {}", answer.status());
        Ok(answer.text().await?)
    }

    /// `REQUESTS` sequential GETs of one path: (p50 ms, p99 ms, bytes of the last answer).
    async fn measure(&self, path: &str) -> anyhow::Result<(f64, f64, usize)> {
        let mut times = Vec::with_capacity(REQUESTS);
        let mut size = 0;
        for _ in 0..REQUESTS {
            let started = Instant::now();
            let answer = self.http.get(format!("{}{path}", self.base)).send().await?;
            anyhow::ensure!(answer.status() == 200, "{path}: {}", answer.status());
            size = answer.bytes().await?.len();
            times.push(started.elapsed());
        }
        times.sort_unstable();
        let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).min(times.len()) - 1];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Ok((ms(at(0.50)), ms(at(0.99)), size))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config_file = dir.path().join("nudge.toml");
    std::fs::write(&config_file, "")?;
    let env: HashMap<String, String> = [
        ("NUDGE_LISTEN", "127.0.0.1:0".to_string()),
        ("DATABASE_URL", format!("sqlite://{}", dir.path().join("nudge.db").display())),
        ("NUDGE_CONFIG", config_file.display().to_string()),
        ("NUDGE_SLACK_SIGNING_SECRET", SECRET.to_string()),
        ("NUDGE_SLACK_BOT_TOKEN", "xoxb-bench".to_string()),
        ("NUDGE_SLACK_API_URL", slack_stand_in().await?),
        ("NUDGE_PUBLIC_URL", "https://nudge.example.com".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = Config::load(&env).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Monday 23 November 2026, 10:00 UTC, as in the tests.
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap());
    let app = Application::build(config, clock.clone()).await?;
    let base = format!("http://{}", app.address());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let mut bench = Bench { base, http: reqwest::Client::new(), clock: clock.clone(), sent: 0 };

    let made = Instant::now();
    let people = ["U01", "U02", "U03", "U04", "U05"];
    for n in 1..=30 {
        let who = people[n % people.len()];
        bench
            .slash("/experiment", &format!("propose Idea {n} | Change {n} moves the metric | signups 100 -> 200"), who)
            .await?;
        bench.slash("/experiment", &format!("start E-{n}"), who).await?;
        for reading in 1..=20 {
            bench.slash("/experiment", &format!("update E-{n} {}", 100 + reading * 4 + n % 3), who).await?;
        }
        if n <= 20 {
            let outcome = ["won", "lost", "inconclusive"][n % 3];
            let learning = format!("Learning {n}: the change moved signups by {} in two weeks", n * 4);
            bench.slash("/experiment", &format!("close E-{n} {outcome} {learning}"), who).await?;
        }
    }
    // A team holds at most 3 open pledges a person, so 25 people make four each: one kept, one
    // released, one due tomorrow (overdue below) and one due next Friday.
    for n in 1..=100 {
        let who = format!("U{:02}", 10 + (n - 1) / 4);
        let when = ["fri", "fri", "tomorrow", "next fri"][(n - 1) % 4];
        bench.slash("/pledge", &format!("pledge number {n} for the team by {when}"), &who).await?;
        match (n - 1) % 4 {
            0 => drop(bench.slash("/pledge", &format!("done P-{n}"), &who).await?),
            1 => drop(bench.slash("/pledge", &format!("release P-{n} no longer needed"), &who).await?),
            _ => {}
        }
    }
    // Some open pledges are now overdue.
    clock.advance(chrono::Duration::days(3));
    let answer = bench.slash("/nudge", "dashboard", "U01").await?;
    let start =
        answer.find("https://nudge.example.com/dashboard/").ok_or_else(|| anyhow::anyhow!("no link: {answer}"))?;
    let link: String = answer[start..]
        .trim_start_matches("https://nudge.example.com")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'))
        .collect();
    println!("channel made through {} slash commands in {:.1} s", bench.sent, made.elapsed().as_secs_f64());

    let page = bench.http.get(format!("{}{link}", bench.base)).send().await?.text().await?;
    for shown in ["Idea 30", "Learning 1:", "(overdue)", "class=\"celebrated\""] {
        anyhow::ensure!(page.contains(shown), "the page shows {shown:?}");
    }
    for (export, rows) in [("readings", 600), ("pledges", 100), ("learnings", 20), ("experiments", 30)] {
        let path = format!("{}{link}/export/{export}.json", bench.base);
        let made: serde_json::Value = bench.http.get(path).send().await?.json().await?;
        let count = made.as_array().map_or(0, Vec::len);
        anyhow::ensure!(count == rows, "{rows} {export} were made, the export has {count}");
    }
    let mut over_budget = false;
    for (what, path) in
        [("dashboard page", link.clone()), ("readings.csv export", format!("{link}/export/readings.csv"))]
    {
        let (p50, p99, size) = bench.measure(&path).await?;
        over_budget |= p99 > BUDGET_P99_MS;
        println!(
            "{what:22} {REQUESTS} sequential requests: p50 {p50:.2} ms, p99 {p99:.2} ms (budget p99 <= {BUDGET_P99_MS} ms), {:.1} KB",
            size as f64 / 1024.0
        );
    }
    println!("embedded CSS:          {} bytes ({:.1} KB)", CSS.len(), CSS.len() as f64 / 1024.0);
    println!("{}", if over_budget { "OVER BUDGET" } else { "within budget" });

    shutdown.cancel();
    server.await??;
    Ok(())
}
