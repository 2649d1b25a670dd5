//! The outbox and its sender against a stand-in for Slack's Web API, with the clock driven by hand:
//! each post delivered once, 429s holding back only their channel, one post per second per
//! channel, retries with backoff over an hour, dead posts reported and retried by an operator,
//! channels nudge is not in waiting while someone is asked once to invite it, and no double post
//! after a crash.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use nudge::clock::{Clock, ManualClock};
use nudge::config::Config;
use nudge::message::Message;
use nudge::outbox::{Deliveries, Delivery, Sender, SenderSettings};
use nudge::platforms::slack::delivery::SlackDelivery;
use nudge::platforms::slack::{self, Slack};
use nudge::store::{
    ChannelDefaults, DeadPosts, EventKind, NewEvent, OutboundId, OutboundMessage, Recipient, Store, WorkspaceId,
};

use crate::helpers::{Backend, TestDb, empty_config_file, monday_morning};

struct OutboxTest {
    _db: TestDb,
    store: Store,
    slack: MockServer,
    clock: Arc<ManualClock>,
    sender: Sender,
    delivery: Arc<SlackDelivery>,
    ws: WorkspaceId,
}

impl OutboxTest {
    async fn start(backend: Backend, settings: SenderSettings) -> OutboxTest {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let slack = MockServer::start().await;
        let api_url = format!("{}/api", slack.uri());
        let env: HashMap<String, String> = [
            ("NUDGE_CONFIG", empty_config_file()),
            ("NUDGE_SLACK_SIGNING_SECRET", "secret".to_string()),
            ("NUDGE_SLACK_BOT_TOKEN", "xoxb-outbox-test".to_string()),
            ("NUDGE_SLACK_API_URL", api_url),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let config = Config::load(&env).unwrap();
        let slack_state = Arc::new(Slack::new(slack::configured(&config).unwrap(), &config));
        let clock = ManualClock::new(monday_morning());
        let delivery = Arc::new(SlackDelivery::new(slack_state, store.clone()));
        let sender = Sender::new(store.clone(), deliveries(&delivery), clock.clone(), settings);
        let mut tx = store.begin().await.unwrap();
        let ws = tx.ensure_workspace("slack", "T01", "Acme", monday_morning()).await.unwrap();
        tx.commit().await.unwrap();
        OutboxTest { _db: db, store, slack, clock, sender, delivery, ws }
    }

    /// chat.postMessage answers `ok` with a fresh ts for every channel not mocked otherwise.
    async fn slack_accepts_posts(&self) {
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"ok": true, "channel": "C01", "ts": "1764000000.000100", "message": {"text": "…"}}),
            ))
            .mount(&self.slack)
            .await;
    }

    /// conversations.history finds none of nudge's posts: a post whose answer was lost (a 5xx, a
    /// timeout) did not land, and is posted again.
    async fn slack_history_is_empty(&self) {
        Mock::given(method("POST"))
            .and(path("/api/conversations.history"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"ok": true, "messages": [], "has_more": false})),
            )
            .mount(&self.slack)
            .await;
    }

    /// Queues a post to a channel (known to nudge from then on) by its Slack id.
    async fn queue(&self, channel: &str, key: &str, text: &str) -> bool {
        let mut tx = self.store.begin().await.unwrap();
        let defaults = ChannelDefaults {
            schedule: "30 9 * * 1".into(),
            time_zone: "UTC".into(),
            escalate_after_days: 3,
            quiet_weekdays: String::new(),
        };
        let channel = tx.ensure_channel(self.ws, channel, "growth", &defaults, self.clock.now()).await.unwrap();
        let message = Message::channel(text);
        let queued = tx
            .enqueue_message(self.ws, channel.id, Recipient::Channel(channel.id), key, &message, self.clock.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        queued
    }

    /// The bodies of chat.postMessage calls to one channel, in order.
    async fn posts_to(&self, channel: &str) -> Vec<Value> {
        self.slack
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.url.path() == "/api/chat.postMessage")
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .filter(|body| body["channel"] == channel)
            .collect()
    }

    async fn report(&self) -> nudge::store::OutboxReport {
        let mut tx = self.store.begin().await.unwrap();
        tx.outbox_report(10).await.unwrap()
    }

    /// The workspace's posts, in the order they were owed.
    async fn posts(&self) -> Vec<OutboundMessage> {
        let mut tx = self.store.read().await.unwrap();
        tx.outbox_messages(self.ws).await.unwrap()
    }

    /// When the sender next has a post to try.
    async fn next_delivery_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let mut tx = self.store.read().await.unwrap();
        tx.next_delivery_at().await.unwrap()
    }

    /// Slack answers every chat.postMessage to `channel` with `status`.
    async fn slack_fails_posts_to(&self, channel: &str, status: u16) {
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .and(body_partial_json(json!({"channel": channel})))
            .respond_with(ResponseTemplate::new(status))
            .with_priority(1)
            .mount(&self.slack)
            .await;
    }

    /// Slack refuses every chat.postMessage to `channel` with the error `name` (HTTP 200, ok:false).
    async fn slack_refuses_posts_to(&self, channel: &str, name: &str) {
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .and(body_partial_json(json!({"channel": channel})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": name})))
            .with_priority(1)
            .mount(&self.slack)
            .await;
    }

    /// A member makes a pledge in a channel at `at`: they used a command there.
    async fn member_uses_nudge_in(&self, channel: &str, member: &str, at: chrono::DateTime<chrono::Utc>) {
        let mut tx = self.store.begin().await.unwrap();
        let channel = crate::helpers::channel_in(&mut tx, self.ws, channel).await;
        let member = tx.ensure_member(self.ws, member, member, at).await.unwrap();
        let data = json!({});
        let event = NewEvent {
            channel: Some(channel),
            actor: Some(member.id),
            kind: EventKind::PledgeMade,
            subject: None,
            data: &data,
        };
        tx.append_event(self.ws, &event, at).await.unwrap();
        tx.commit().await.unwrap();
    }
}

fn deliveries(delivery: &Arc<SlackDelivery>) -> Deliveries {
    Deliveries::from([("slack", delivery.clone() as Arc<dyn Delivery>)])
}

/// Three attempts, and no hour to wait before giving up.
fn quick_retries() -> SenderSettings {
    SenderSettings {
        max_attempts: 3,
        give_up_after: Duration::ZERO,
        first_retry: Duration::from_secs(2),
        ..SenderSettings::default()
    }
}

async fn queued_posts_are_delivered_once_carrying_their_outbox_id(backend: Backend) {
    let t = OutboxTest::start(backend, SenderSettings::default()).await;
    t.slack_accepts_posts().await;
    assert!(t.queue("C01", "checkin:C01:2026-11-23", "Weekly check-in").await);
    assert!(!t.queue("C01", "checkin:C01:2026-11-23", "Weekly check-in").await, "the same key is owed once");
    assert!(t.queue("C02", "checkin:C02:2026-11-23", "Weekly check-in").await);

    let round = t.sender.run_once().await.unwrap();
    assert_eq!((round.claimed, round.delivered), (2, 2));
    let posted = t.posts_to("C01").await;
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0]["text"], "Weekly check-in");
    assert_eq!(posted[0]["metadata"]["event_type"], "nudge_outbox");
    assert!(posted[0]["metadata"]["event_payload"]["outbox_id"].is_i64());

    let again = t.sender.run_once().await.unwrap();
    assert_eq!(again.claimed, 0, "a delivered post is not sent again");
    let report = t.report().await;
    assert_eq!((report.pending, report.sending, report.sent, report.dead), (0, 0, 2, 0));
}

#[tokio::test]
async fn postgres_queued_posts_are_delivered_once_carrying_their_outbox_id() {
    queued_posts_are_delivered_once_carrying_their_outbox_id(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_queued_posts_are_delivered_once_carrying_their_outbox_id() {
    queued_posts_are_delivered_once_carrying_their_outbox_id(Backend::Sqlite).await;
}

async fn a_429_on_one_channel_holds_back_only_that_channel(backend: Backend) {
    let t = OutboxTest::start(backend, SenderSettings::default()).await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(body_partial_json(json!({"channel": "CBUSY"})))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&t.slack)
        .await;
    t.slack_accepts_posts().await;
    t.queue("CBUSY", "busy-1", "first").await;
    t.queue("CBUSY", "busy-2", "second").await;
    t.queue("CCALM", "calm-1", "first").await;

    let round = t.sender.run_once().await.unwrap();
    assert_eq!((round.delivered, round.retrying), (1, 1));
    assert_eq!(t.posts_to("CCALM").await.len(), 1);

    // Five seconds on, the calm channel takes another post; the busy one is still held.
    t.clock.advance(Span::seconds(5));
    t.queue("CCALM", "calm-2", "second").await;
    t.sender.run_once().await.unwrap();
    assert_eq!(t.posts_to("CCALM").await.len(), 2);
    assert_eq!(t.posts_to("CBUSY").await.len(), 1, "nothing more goes to a channel inside its Retry-After");

    t.clock.advance(Span::seconds(26));
    t.sender.run_once().await.unwrap();
    let busy = t.posts_to("CBUSY").await;
    assert_eq!(busy.len(), 2);
    assert_eq!(busy[1]["text"], "first", "the post that met the 429 goes first");
    t.clock.advance(Span::seconds(1));
    t.sender.run_once().await.unwrap();
    assert_eq!(t.posts_to("CBUSY").await.len(), 3);
    assert_eq!(t.report().await.sent, 4);
}

#[tokio::test]
async fn postgres_a_429_on_one_channel_holds_back_only_that_channel() {
    a_429_on_one_channel_holds_back_only_that_channel(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_429_on_one_channel_holds_back_only_that_channel() {
    a_429_on_one_channel_holds_back_only_that_channel(Backend::Sqlite).await;
}

#[tokio::test]
async fn one_channel_gets_at_most_one_post_a_second() {
    let t = OutboxTest::start(Backend::Sqlite, SenderSettings::default()).await;
    t.slack_accepts_posts().await;
    for n in 0..3 {
        t.queue("C01", &format!("post-{n}"), &format!("post {n}")).await;
    }
    assert_eq!(t.sender.run_once().await.unwrap().delivered, 1);
    assert_eq!(t.sender.run_once().await.unwrap().delivered, 0, "the same second: the channel waits");
    t.clock.advance(Span::milliseconds(1000));
    assert_eq!(t.sender.run_once().await.unwrap().delivered, 1);
    t.clock.advance(Span::milliseconds(1000));
    assert_eq!(t.sender.run_once().await.unwrap().delivered, 1);
    let texts: Vec<Value> = t.posts_to("C01").await.into_iter().map(|p| p["text"].clone()).collect();
    assert_eq!(texts, vec![json!("post 0"), json!("post 1"), json!("post 2")], "in the order they were owed");
}

async fn failures_are_retried_and_a_post_that_keeps_failing_is_dead_and_reported(backend: Backend) {
    let t = OutboxTest::start(backend, quick_retries()).await;
    t.slack_history_is_empty().await;
    // C500 always fails; CFLAKY fails once, then works.
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(body_partial_json(json!({"channel": "C500"})))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(1)
        .mount(&t.slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(body_partial_json(json!({"channel": "CFLAKY"})))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&t.slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(body_partial_json(json!({"channel": "CGONE"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "channel_not_found"})))
        .with_priority(1)
        .mount(&t.slack)
        .await;
    t.slack_accepts_posts().await;
    t.queue("C500", "a", "never arrives").await;
    t.queue("CFLAKY", "b", "arrives late").await;
    t.queue("CGONE", "c", "nowhere to go").await;

    let first = t.sender.run_once().await.unwrap();
    assert_eq!((first.retrying, first.dead), (2, 1), "a missing channel is not retried");
    // Backoff: the retry waits at least half of first_retry (2 s) and at most all of it.
    t.clock.advance(Span::milliseconds(900));
    assert_eq!(t.sender.run_once().await.unwrap().claimed, 0, "no retry before the backoff");
    t.clock.advance(Span::milliseconds(1200));
    let second = t.sender.run_once().await.unwrap();
    assert_eq!((second.delivered, second.retrying), (1, 1));
    assert_eq!(t.posts_to("CFLAKY").await.len(), 2);
    t.clock.advance(Span::seconds(5));
    let third = t.sender.run_once().await.unwrap();
    assert_eq!(third.dead, 1, "the third failure is the last");
    assert_eq!(t.posts_to("C500").await.len(), 3);

    let report = t.report().await;
    assert_eq!((report.sent, report.dead), (1, 2));
    let reasons: Vec<&str> = report.dead_posts.iter().map(|d| d.last_error.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("500")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("channel_not_found")), "{reasons:?}");
    assert!(report.dead_posts.iter().any(|d| d.address == "C500" && d.attempts == 3));
}

#[tokio::test]
async fn postgres_failures_are_retried_and_a_post_that_keeps_failing_is_dead_and_reported() {
    failures_are_retried_and_a_post_that_keeps_failing_is_dead_and_reported(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_failures_are_retried_and_a_post_that_keeps_failing_is_dead_and_reported() {
    failures_are_retried_and_a_post_that_keeps_failing_is_dead_and_reported(Backend::Sqlite).await;
}

async fn a_post_left_sending_by_a_crash_is_looked_up_before_it_is_sent_again(backend: Backend) {
    let t = OutboxTest::start(backend, SenderSettings::default()).await;
    t.slack_accepts_posts().await;
    t.queue("CPOSTED", "posted-before-crash", "made it").await;
    t.queue("CLOST", "lost-in-crash", "did not make it").await;
    // A sender claims both and dies: one post reached Slack, the other never left.
    let claimed: Vec<OutboundId> = {
        let mut tx = t.store.begin().await.unwrap();
        let claimed = tx.claim_due_messages(t.clock.now(), Span::seconds(1), 10).await.unwrap();
        tx.commit().await.unwrap();
        claimed.into_iter().map(|m| m.id).collect()
    };
    assert_eq!(claimed.len(), 2);
    let posted_id = claimed[0].0;
    Mock::given(method("POST"))
        .and(path("/api/conversations.history"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true,
            "messages": [
                {"type": "message", "user": "UBOT", "text": "made it", "ts": "1764000000.000200",
                 "metadata": {"event_type": "nudge_outbox", "event_payload": {"outbox_id": posted_id}}},
                {"type": "message", "user": "U01", "text": "someone else", "ts": "1764000000.000100"}
            ],
            "has_more": false
        })))
        .mount(&t.slack)
        .await;

    // Not yet: a post is only looked up after it has been "sending" for a while.
    assert_eq!(t.sender.run_once().await.unwrap(), Default::default());
    t.clock.advance(Span::minutes(3));
    let round = t.sender.run_once().await.unwrap();
    assert_eq!((round.reconciled, round.requeued, round.delivered), (1, 1, 1));
    assert_eq!(t.posts_to("CPOSTED").await.len(), 0, "found on Slack, so not posted twice");
    assert_eq!(t.posts_to("CLOST").await.len(), 1, "not found, so posted once");
    assert_eq!(t.report().await.sent, 2);
}

#[tokio::test]
async fn postgres_a_post_left_sending_by_a_crash_is_looked_up_before_it_is_sent_again() {
    a_post_left_sending_by_a_crash_is_looked_up_before_it_is_sent_again(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_post_left_sending_by_a_crash_is_looked_up_before_it_is_sent_again() {
    a_post_left_sending_by_a_crash_is_looked_up_before_it_is_sent_again(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_sender_loop_stops_when_the_shared_token_is_cancelled() {
    let t = OutboxTest::start(Backend::Sqlite, quick_retries()).await;
    t.slack_accepts_posts().await;
    t.queue("C01", "loop-1", "through the loop").await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let sender = Sender::new(t.store.clone(), deliveries(&t.delivery), t.clock.clone(), quick_retries());
    let running = tokio::spawn(sender.run(shutdown.clone()));
    for _ in 0..100 {
        if !t.posts_to("C01").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(t.posts_to("C01").await.len(), 1);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), running).await.expect("stops promptly").unwrap();
}

async fn a_post_failing_with_5xx_is_retried_with_growing_jittered_waits_for_an_hour_before_it_is_dead(
    backend: Backend,
) {
    let settings = SenderSettings::default();
    let t = OutboxTest::start(backend, settings.clone()).await;
    t.slack_fails_posts_to("CDOWN", 503).await;
    t.slack_history_is_empty().await;
    t.queue("CDOWN", "checkin:CDOWN", "Weekly check-in").await;
    let first_attempt = t.clock.now();

    // Each round tries the post once; the clock jumps to the retry the sender asked for.
    let mut waits = Vec::new();
    loop {
        let round = t.sender.run_once().await.unwrap();
        assert_eq!(round.claimed, 1, "the post is tried at every retry it asked for");
        if round.dead == 1 {
            break;
        }
        assert_eq!(round.retrying, 1);
        assert!(waits.len() < 100, "the post is retried forever");
        let next = t.next_delivery_at().await.expect("a retry is due");
        waits.push(next - t.clock.now());
        t.clock.set(next);
    }

    let dead_after = t.clock.now() - first_attempt;
    assert!(dead_after >= Span::hours(1), "dead {dead_after} after the first attempt");
    assert!(dead_after < Span::hours(1) + Span::minutes(15), "given up within one longest wait of the hour");
    let attempts = t.posts_to("CDOWN").await.len();
    assert!(attempts as u32 >= settings.max_attempts, "{attempts} attempts");
    // Exponential: the n-th wait is 2 s × 2^n up to 15 minutes, times a factor in [0.5, 1).
    for (n, wait) in waits.iter().enumerate() {
        let full = Span::from_std(settings.first_retry * 2u32.pow(n.min(20) as u32))
            .unwrap()
            .min(Span::from_std(settings.longest_retry).unwrap());
        assert!(*wait >= full / 2 - Span::milliseconds(1) && *wait <= full, "wait {n} was {wait}, full {full}");
    }
    let longest: std::collections::HashSet<Span> =
        waits.iter().copied().filter(|w| *w > Span::from_std(settings.longest_retry).unwrap() / 2).collect();
    assert!(longest.len() > 1, "waits at the cap are jittered, not all alike: {waits:?}");
    let report = t.report().await;
    assert_eq!(report.dead, 1);
    assert_eq!(report.dead_posts[0].attempts as usize, attempts);
    assert!(report.dead_posts[0].last_error.contains("503"), "{:?}", report.dead_posts[0]);
}

#[tokio::test]
async fn postgres_a_post_failing_with_5xx_is_retried_with_growing_jittered_waits_for_an_hour_before_it_is_dead() {
    a_post_failing_with_5xx_is_retried_with_growing_jittered_waits_for_an_hour_before_it_is_dead(Backend::Postgres)
        .await;
}

#[tokio::test]
async fn sqlite_a_post_failing_with_5xx_is_retried_with_growing_jittered_waits_for_an_hour_before_it_is_dead() {
    a_post_failing_with_5xx_is_retried_with_growing_jittered_waits_for_an_hour_before_it_is_dead(Backend::Sqlite).await;
}

async fn dead_posts_retried_by_an_operator_go_out_again_and_a_sent_post_is_never_resent(backend: Backend) {
    let t = OutboxTest::start(backend, quick_retries()).await;
    t.slack_refuses_posts_to("CGONE", "channel_not_found").await;
    t.slack_refuses_posts_to("CLOST", "channel_not_found").await;
    t.slack_accepts_posts().await;
    t.queue("CGONE", "gone", "first dead").await;
    t.queue("CLOST", "lost", "second dead").await;
    t.queue("C01", "sent", "went out").await;
    let round = t.sender.run_once().await.unwrap();
    assert_eq!((round.delivered, round.dead), (1, 2));
    let id_of = |posts: &[OutboundMessage], key: &str| posts.iter().find(|p| p.idempotency_key == key).unwrap().id;
    let posts = t.posts().await;
    let (gone, sent) = (id_of(&posts, "gone"), id_of(&posts, "sent"));

    let mut tx = t.store.begin().await.unwrap();
    assert_eq!(tx.retry_dead_messages(DeadPosts::One(sent), t.clock.now()).await.unwrap(), 0);
    assert_eq!(tx.retry_dead_messages(DeadPosts::One(gone), t.clock.now()).await.unwrap(), 1);
    tx.commit().await.unwrap();
    let report = t.report().await;
    assert_eq!((report.pending, report.sent, report.dead), (1, 1, 1), "only the one asked for");
    let mut tx = t.store.begin().await.unwrap();
    assert_eq!(tx.retry_dead_messages(DeadPosts::All, t.clock.now()).await.unwrap(), 1, "the other dead one");
    assert_eq!(tx.retry_dead_messages(DeadPosts::All, t.clock.now()).await.unwrap(), 0, "none left");
    tx.commit().await.unwrap();

    // Slack takes them now; they are due as soon as their channels' pace allows (a second after
    // the failed attempt), with their attempts counted afresh.
    t.slack.reset().await;
    t.slack_accepts_posts().await;
    t.clock.advance(Span::seconds(1));
    let round = t.sender.run_once().await.unwrap();
    assert_eq!(round.delivered, 2);
    assert_eq!(t.posts_to("CGONE").await.len(), 1);
    assert_eq!(t.posts_to("CLOST").await.len(), 1);
    assert_eq!(t.posts_to("C01").await.len(), 0, "the post that went out is not sent again");
    let report = t.report().await;
    assert_eq!((report.pending, report.sent, report.dead), (0, 3, 0));
    assert!(t.posts().await.iter().all(|p| p.attempts == 1), "{:?}", t.posts().await);
}

#[tokio::test]
async fn postgres_dead_posts_retried_by_an_operator_go_out_again_and_a_sent_post_is_never_resent() {
    dead_posts_retried_by_an_operator_go_out_again_and_a_sent_post_is_never_resent(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_dead_posts_retried_by_an_operator_go_out_again_and_a_sent_post_is_never_resent() {
    dead_posts_retried_by_an_operator_go_out_again_and_a_sent_post_is_never_resent(Backend::Sqlite).await;
}

async fn posts_to_a_channel_nudge_is_not_in_wait_and_the_last_commander_is_asked_once_to_invite_it(backend: Backend) {
    let settings = SenderSettings::default();
    let t = OutboxTest::start(backend, settings.clone()).await;
    t.slack_refuses_posts_to("CNOTIN", "not_in_channel").await;
    t.slack_accepts_posts().await;
    for n in 0..3 {
        t.queue("CNOTIN", &format!("notin-{n}"), &format!("post {n}")).await;
    }
    let an_hour_ago = t.clock.now() - Span::hours(1);
    t.member_uses_nudge_in("CNOTIN", "UEARLY", an_hour_ago).await;
    t.member_uses_nudge_in("CNOTIN", "ULAST", an_hour_ago + Span::minutes(5)).await;
    t.member_uses_nudge_in("COTHER", "UELSEWHERE", an_hour_ago + Span::minutes(10)).await;

    let refused = t.sender.run_once().await.unwrap();
    assert_eq!((refused.claimed, refused.waiting, refused.dead), (1, 1, 0));
    let told = t.sender.run_once().await.unwrap();
    assert_eq!(told.delivered, 1, "the notice goes out; the channel's posts are held");
    let notices = t.posts_to("ULAST").await;
    assert_eq!(notices.len(), 1);
    let text = notices[0]["text"].as_str().unwrap();
    assert!(text.contains("Invite @nudge to #growth"), "{text}");

    // Hour after hour nudge tries again, through a restarted sender or another replica too, and
    // nothing dies or is said twice: the mark is in the database.
    let replica = Sender::new(t.store.clone(), deliveries(&t.delivery), t.clock.clone(), settings.clone());
    for hour in 0..10 {
        t.clock.advance(Span::from_std(settings.unreachable_hold).unwrap());
        let sender = if hour % 2 == 0 { &replica } else { &t.sender };
        let round = sender.run_once().await.unwrap();
        assert_eq!((round.claimed, round.waiting, round.dead), (1, 1, 0), "hour {hour}");
    }
    assert_eq!(t.posts_to("CNOTIN").await.len(), 11, "one try an hour, not one per post per round");
    assert_eq!(t.posts_to("ULAST").await.len(), 1, "told once");
    assert!(t.posts_to("UEARLY").await.is_empty() && t.posts_to("UELSEWHERE").await.is_empty());
    let report = t.report().await;
    assert_eq!((report.pending, report.sent, report.dead), (3, 1, 0));

    // Someone invites nudge: within the hour the waiting posts go out, one a second, in order.
    t.slack.reset().await;
    t.slack_accepts_posts().await;
    t.clock.advance(Span::from_std(settings.unreachable_hold).unwrap());
    for _ in 0..3 {
        assert_eq!(t.sender.run_once().await.unwrap().delivered, 1);
        t.clock.advance(Span::seconds(1));
    }
    let texts: Vec<Value> = t.posts_to("CNOTIN").await.into_iter().map(|p| p["text"].clone()).collect();
    assert_eq!(texts, vec![json!("post 0"), json!("post 1"), json!("post 2")]);
    assert_eq!(t.report().await.sent, 4);

    // Delivered again, the channel is reachable: if nudge is removed later, someone hears again.
    t.slack_refuses_posts_to("CNOTIN", "not_in_channel").await;
    t.queue("CNOTIN", "notin-later", "later").await;
    assert_eq!(t.sender.run_once().await.unwrap().waiting, 1);
    t.sender.run_once().await.unwrap();
    // The stand-in forgot what it received when it was reset: this is the second notice.
    assert_eq!(t.posts_to("ULAST").await.len(), 1, "told again, the second time nudge was removed");
}

#[tokio::test]
async fn postgres_posts_to_a_channel_nudge_is_not_in_wait_and_the_last_commander_is_asked_once_to_invite_it() {
    posts_to_a_channel_nudge_is_not_in_wait_and_the_last_commander_is_asked_once_to_invite_it(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_posts_to_a_channel_nudge_is_not_in_wait_and_the_last_commander_is_asked_once_to_invite_it() {
    posts_to_a_channel_nudge_is_not_in_wait_and_the_last_commander_is_asked_once_to_invite_it(Backend::Sqlite).await;
}

async fn a_post_whose_outcome_cannot_be_looked_up_yet_is_looked_up_again_only_once_stale_again(backend: Backend) {
    let settings = SenderSettings::default();
    let t = OutboxTest::start(backend, settings.clone()).await;
    t.queue("CLEFT", "left-before-lookup", "did it go out?").await;
    // A sender claims the post and dies; then nudge is removed from the channel, so its history
    // cannot be read.
    let mut tx = t.store.begin().await.unwrap();
    tx.claim_due_messages(t.clock.now(), Span::seconds(1), 10).await.unwrap();
    tx.commit().await.unwrap();
    Mock::given(method("POST"))
        .and(path("/api/conversations.history"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "not_in_channel"})))
        .mount(&t.slack)
        .await;
    let lookups = || async {
        let requests = t.slack.received_requests().await.unwrap();
        requests.iter().filter(|r| r.url.path() == "/api/conversations.history").count()
    };

    let stale = Span::from_std(settings.reconcile_after).unwrap() + Span::seconds(1);
    t.clock.advance(stale);
    let round = t.sender.run_once().await.unwrap();
    assert_eq!((round.reconciled, round.requeued, round.dead), (0, 0, 0), "it waits, neither dead nor posted");
    assert_eq!(lookups().await, 1);
    t.sender.run_once().await.unwrap();
    assert_eq!(lookups().await, 1, "not looked up again in every round");
    t.clock.advance(stale);
    t.sender.run_once().await.unwrap();
    assert_eq!(lookups().await, 2, "looked up again once stale again");
    assert_eq!(t.posts_to("CLEFT").await.len(), 0, "never posted blindly");
    assert_eq!(t.report().await.sending, 1);
}

#[tokio::test]
async fn postgres_a_post_whose_outcome_cannot_be_looked_up_yet_is_looked_up_again_only_once_stale_again() {
    a_post_whose_outcome_cannot_be_looked_up_yet_is_looked_up_again_only_once_stale_again(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_post_whose_outcome_cannot_be_looked_up_yet_is_looked_up_again_only_once_stale_again() {
    a_post_whose_outcome_cannot_be_looked_up_yet_is_looked_up_again_only_once_stale_again(Backend::Sqlite).await;
}

/// Slack's chat.postMessage that posts (the message lands in the channel) and then loses its
/// answer: a 502, or an answer slower than nudge waits for.
struct LandsThenFails {
    channel: Arc<std::sync::Mutex<Vec<Value>>>,
    answer: fn() -> ResponseTemplate,
}

impl wiremock::Respond for LandsThenFails {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let mut body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let mut channel = self.channel.lock().unwrap();
        body["ts"] = json!(format!("1764000000.{:06}", channel.len() + 1));
        channel.push(body);
        (self.answer)()
    }
}

/// conversations.history over what landed: each message with its metadata, newest first, a page
/// of `limit` at a time with Slack's cursor.
struct History {
    channel: Arc<std::sync::Mutex<Vec<Value>>>,
}

impl wiremock::Respond for History {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let form: HashMap<String, String> = serde_urlencoded::from_bytes(&request.body).unwrap_or_default();
        let limit: usize = form.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
        let start: usize = form.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
        let landed: Vec<Value> = self.channel.lock().unwrap().iter().rev().cloned().collect();
        let page: Vec<Value> = landed
            .iter()
            .skip(start)
            .take(limit)
            .map(|m| json!({"type": "message", "ts": m["ts"], "text": m["text"], "metadata": m["metadata"]}))
            .collect();
        let more = start + limit < landed.len();
        ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "messages": page, "has_more": more,
            "response_metadata": {"next_cursor": if more { (start + limit).to_string() } else { String::new() }}
        }))
    }
}

impl OutboxTest {
    /// Posts to `channel` land and then fail with `answer`; history shows what landed.
    async fn posts_land_then_fail(&self, channel: &str, answer: fn() -> ResponseTemplate) {
        let landed = Arc::new(std::sync::Mutex::new(Vec::new()));
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .and(body_partial_json(json!({"channel": channel})))
            .respond_with(LandsThenFails { channel: landed.clone(), answer })
            .with_priority(1)
            .mount(&self.slack)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/conversations.history"))
            .respond_with(History { channel: landed.clone() })
            .mount(&self.slack)
            .await;
    }
}

/// A post whose answer is lost after it landed (a 502, a timeout) used to be posted again: 120 rows
/// became 141 posts. Now the next attempt looks it up first, in the history around the attempt, and
/// finds it there.
async fn a_post_whose_answer_is_lost_is_looked_up_and_not_posted_again(
    backend: Backend,
    answer: fn() -> ResponseTemplate,
) {
    let t = OutboxTest::start(backend, SenderSettings::default()).await;
    t.posts_land_then_fail("CLOST", answer).await;
    t.slack_accepts_posts().await;
    t.queue("CLOST", "checkin:CLOST", "Weekly check-in").await;

    let first = t.sender.run_once().await.unwrap();
    assert_eq!((first.delivered, first.retrying), (0, 1), "the answer was lost: not known as delivered");
    let next = t.next_delivery_at().await.expect("looked up again later");
    t.clock.set(next);
    let second = t.sender.run_once().await.unwrap();
    assert_eq!(second.reconciled, 1, "found on Slack by the id it carries");
    assert_eq!(t.posts_to("CLOST").await.len(), 1, "posted once");
    let report = t.report().await;
    assert_eq!((report.sent, report.pending, report.dead), (1, 0, 0));

    let history = t.slack.received_requests().await.unwrap();
    let lookup = history.iter().find(|r| r.url.path() == "/api/conversations.history").expect("a look-up");
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&lookup.body).unwrap();
    let oldest: f64 = form["oldest"].parse().unwrap();
    let latest: f64 = form["latest"].parse().unwrap();
    assert!(latest - oldest <= 60.0, "a window of seconds around the attempt, not the channel's newest: {form:?}");
}

#[tokio::test]
async fn postgres_a_post_answered_502_after_it_landed_is_not_posted_again() {
    a_post_whose_answer_is_lost_is_looked_up_and_not_posted_again(Backend::Postgres, || ResponseTemplate::new(502))
        .await;
}

#[tokio::test]
async fn sqlite_a_post_answered_502_after_it_landed_is_not_posted_again() {
    a_post_whose_answer_is_lost_is_looked_up_and_not_posted_again(Backend::Sqlite, || ResponseTemplate::new(502)).await;
}

#[tokio::test]
async fn sqlite_a_post_whose_answer_timed_out_after_it_landed_is_not_posted_again() {
    // Slower than the 10 s nudge waits for Slack's answer.
    a_post_whose_answer_is_lost_is_looked_up_and_not_posted_again(Backend::Sqlite, || {
        ResponseTemplate::new(200).set_delay(Duration::from_secs(11))
    })
    .await;
}

/// The look-up reads the seconds around the attempt page by page, so a post is found however many
/// newer messages the channel has (the newest 200 used to be all it read).
async fn a_lost_post_is_found_behind_many_newer_messages(backend: Backend) {
    let t = OutboxTest::start(backend, SenderSettings::default()).await;
    let landed = Arc::new(std::sync::Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(body_partial_json(json!({"channel": "CBUSY"})))
        .respond_with(LandsThenFails { channel: landed.clone(), answer: || ResponseTemplate::new(503) })
        .with_priority(1)
        .mount(&t.slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/conversations.history"))
        .respond_with(History { channel: landed.clone() })
        .mount(&t.slack)
        .await;
    t.queue("CBUSY", "checkin:CBUSY", "Weekly check-in").await;
    t.sender.run_once().await.unwrap();
    // The team talks: 250 newer messages within the same minute.
    for n in 0..250 {
        landed.lock().unwrap().push(json!({"ts": format!("1764000001.{n:06}"), "text": format!("chat {n}")}));
    }
    t.clock.set(t.next_delivery_at().await.unwrap());
    let round = t.sender.run_once().await.unwrap();
    assert_eq!(round.reconciled, 1, "found behind 250 newer messages");
    let posts = t.posts_to("CBUSY").await;
    assert_eq!(posts.len(), 1, "posted once");
    let pages = t.slack.received_requests().await.unwrap();
    let pages: Vec<_> = pages.iter().filter(|r| r.url.path() == "/api/conversations.history").collect();
    assert!(pages.len() > 1, "read page by page");
    assert!(pages.iter().all(|r| String::from_utf8_lossy(&r.body).contains("limit=15")), "15 a page");
}

#[tokio::test]
async fn postgres_a_lost_post_is_found_behind_many_newer_messages() {
    a_lost_post_is_found_behind_many_newer_messages(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_lost_post_is_found_behind_many_newer_messages() {
    a_lost_post_is_found_behind_many_newer_messages(Backend::Sqlite).await;
}

/// 429s used to count as failed attempts, so a few of them killed a post. Now they delay it (and
/// its channel) by Retry-After, however many there are, and it goes out when the limit lifts.
async fn rate_limits_delay_a_post_but_never_kill_it(backend: Backend) {
    let t = OutboxTest::start(backend, quick_retries()).await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(body_partial_json(json!({"channel": "CLIMITED"})))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "2"))
        .up_to_n_times(10)
        .with_priority(1)
        .mount(&t.slack)
        .await;
    t.slack_accepts_posts().await;
    t.queue("CLIMITED", "target_hit:E-1", "E-1 hit its target").await;
    for n in 0..10 {
        let round = t.sender.run_once().await.unwrap();
        assert_eq!((round.retrying, round.dead), (1, 0), "429 number {}", n + 1);
        let next = t.next_delivery_at().await.expect("still queued");
        assert!(next - t.clock.now() >= Span::seconds(2), "held for Retry-After");
        t.clock.set(next);
    }
    assert_eq!(t.sender.run_once().await.unwrap().delivered, 1);
    assert_eq!(t.report().await.dead, 0);
}

#[tokio::test]
async fn postgres_rate_limits_delay_a_post_but_never_kill_it() {
    rate_limits_delay_a_post_but_never_kill_it(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_rate_limits_delay_a_post_but_never_kill_it() {
    rate_limits_delay_a_post_but_never_kill_it(Backend::Sqlite).await;
}

/// With one channel hanging, the others' posts used to wait for it (a round waited for all its
/// deliveries). Now each outcome is recorded as it comes; and a stop while the slow answer is
/// pending waits for it, so the post is recorded as sent, not retried.
async fn one_hanging_channel_holds_up_nobody_else(backend: Backend) {
    let t = OutboxTest::start(backend, SenderSettings::default()).await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(body_partial_json(json!({"channel": "CSLOW"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "channel": "CSLOW", "ts": "1764000000.000900", "message": {}}))
                .set_delay(Duration::from_secs(6)),
        )
        .with_priority(1)
        .mount(&t.slack)
        .await;
    t.slack_accepts_posts().await;
    t.queue("CSLOW", "slow", "to the slow channel").await;
    t.queue("CSLOW", "slow-2", "to the slow channel again").await;
    for n in 0..10 {
        t.queue(&format!("C{n:02}"), &format!("healthy-{n}"), "to a healthy channel").await;
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let sender = Sender::new(t.store.clone(), deliveries(&t.delivery), t.clock.clone(), SenderSettings::default());
    let running = tokio::spawn(sender.run(shutdown.clone()));
    let healthy_sent = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let report = t.report().await;
            if report.sent >= 10 {
                return report;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the healthy channels' posts are recorded while the slow one hangs");
    assert_eq!(healthy_sent.sent, 10);
    assert_eq!(healthy_sent.sending, 1, "the slow channel's post is still on its way");

    // The slow channel's second post is due (its pace has passed) but waits for the first: the
    // sender sleeps meanwhile instead of spinning on a post it may not claim.
    t.clock.advance(Span::seconds(2));
    let before = t.store.writes_begun();
    let first_slow_done = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut tx = t.store.read().await.unwrap();
            if tx.outbox_report(10).await.unwrap().sent >= 11 {
                return;
            }
            drop(tx);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(first_slow_done.is_ok(), "the slow post is recorded once its answer comes");
    let writes = t.store.writes_begun() - before;
    assert!(writes < 50, "the sender waited quietly while the slow post hung: {writes} write transactions");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), running).await.expect("the sender stops").unwrap();
    let report = t.report().await;
    assert_eq!((report.sent, report.sending), (12, 0), "the pending answers were waited for");
    assert_eq!(t.posts_to("CSLOW").await.len(), 2, "each of the slow channel's posts once");
}

#[tokio::test]
async fn postgres_one_hanging_channel_holds_up_nobody_else() {
    one_hanging_channel_holds_up_nobody_else(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_one_hanging_channel_holds_up_nobody_else() {
    one_hanging_channel_holds_up_nobody_else(Backend::Sqlite).await;
}
