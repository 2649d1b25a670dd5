//! A crash in the middle of deliveries: the real binary is killed with SIGKILL while posts are on
//! their way to a stand-in Slack, then started again. Every post arrives, and none twice.

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use nudge::message::Message;
use nudge::store::Recipient;

use crate::binary::nudge_in;
use crate::helpers::TestDb;

/// Slack's chat.postMessage: the post counts as made when the request arrives; the answer comes
/// 250 ms later, so a process killed in between never learns that it posted.
struct SlowPosts {
    posted: Arc<Mutex<Vec<Value>>>,
    next_ts: AtomicU64,
}

impl Respond for SlowPosts {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let ts = format!("1764000000.{:06}", self.next_ts.fetch_add(1, Ordering::Relaxed));
        body["ts"] = json!(ts);
        let channel = body["channel"].clone();
        self.posted.lock().unwrap().push(body);
        ResponseTemplate::new(200)
            .set_body_json(json!({"ok": true, "channel": channel, "ts": ts, "message": {}}))
            .set_delay(Duration::from_millis(250))
    }
}

/// conversations.history: what was posted to the channel, with its metadata.
struct History {
    posted: Arc<Mutex<Vec<Value>>>,
}

impl Respond for History {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&request.body).into_owned().collect::<HashMap<_, _>>();
        let channel = form.get("channel").cloned().unwrap_or_default();
        let messages: Vec<Value> = self
            .posted
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p["channel"] == channel.as_str())
            .rev()
            .map(|p| json!({"type": "message", "text": p["text"], "ts": p["ts"], "metadata": p["metadata"]}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"ok": true, "messages": messages, "has_more": false}))
    }
}

fn start(dir: &std::path::Path, database_url: &str, api_url: &str) -> Child {
    nudge_in(dir)
        .env("NUDGE_LISTEN", "127.0.0.1:0")
        .env("DATABASE_URL", database_url)
        .env("NUDGE_SLACK_SIGNING_SECRET", "crash-secret")
        .env("NUDGE_SLACK_BOT_TOKEN", "xoxb-crash-test")
        .env("NUDGE_SLACK_API_URL", api_url)
        .env("NUDGE_OUTBOX_RECONCILE_AFTER_SECS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the nudge binary starts")
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_crash_while_posting_loses_no_post_and_doubles_none() {
    const CHANNELS: usize = 10;
    const POSTS: usize = 30;
    let db = TestDb::sqlite();
    let store = db.store().await;
    let mut tx = store.begin().await.unwrap();
    // The binary runs on the wall clock, so the posts are owed as of now.
    let now = chrono::Utc::now();
    let ws = tx.ensure_workspace("slack", "T01", "Acme", now).await.unwrap();
    for n in 0..POSTS {
        let channel = crate::helpers::channel_in(&mut tx, ws, &format!("C{:02}", n % CHANNELS)).await;
        let reply = Message::channel(format!("post {n}"));
        tx.enqueue_message(ws, channel, Recipient::Channel(channel), &format!("crash-{n}"), &reply, now).await.unwrap();
    }
    tx.commit().await.unwrap();

    let slack = MockServer::start().await;
    let posted = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(SlowPosts { posted: posted.clone(), next_ts: AtomicU64::new(1) })
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/conversations.history"))
        .respond_with(History { posted: posted.clone() })
        .mount(&slack)
        .await;
    let api_url = format!("{}/api", slack.uri());
    let dir = tempfile::tempdir().unwrap();

    let mut first = start(dir.path(), &db.url, &api_url);
    let seen = posted.clone();
    wait_for("the first posts", Duration::from_secs(15), async || seen.lock().unwrap().len() >= CHANNELS).await;
    // Posts are on their way (Slack answers 250 ms after it got them): kill now.
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let report = {
        let mut tx = store.begin().await.unwrap();
        tx.outbox_report(10).await.unwrap()
    };
    assert!(report.sending > 0, "the crash happened mid-delivery: {report:?}");
    let at_crash = posted.lock().unwrap().len();
    assert!(at_crash < POSTS, "the crash came before everything was posted");

    let mut second = start(dir.path(), &db.url, &api_url);
    let check = store.clone();
    wait_for("every post to be delivered", Duration::from_secs(30), async || {
        let mut tx = check.begin().await.unwrap();
        tx.outbox_report(10).await.unwrap().sent == POSTS as i64
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();

    let posted = posted.lock().unwrap();
    let mut per_post: HashMap<i64, usize> = HashMap::new();
    for post in posted.iter() {
        let id = post["metadata"]["event_payload"]["outbox_id"].as_i64().expect("every post carries its outbox id");
        *per_post.entry(id).or_default() += 1;
    }
    assert_eq!(per_post.len(), POSTS, "no post lost");
    assert!(per_post.values().all(|n| *n == 1), "no post doubled: {per_post:?}");
    assert_eq!(posted.len(), POSTS);
}
