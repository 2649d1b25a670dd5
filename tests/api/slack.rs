//! Slack end to end: requests shaped and signed exactly as Slack documents them, the app on port 0,
//! and a wiremock stand-in for Slack's Web API and response URLs.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use nudge::clock::Clock;
use nudge::platforms::slack::verify::sign;

use crate::helpers::{Backend, TestApp};

pub const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const TOKEN: &str = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";

/// nudge with Slack in one-workspace mode, its API pointed at a stand-in that answers `ok`.
pub struct SlackTest {
    pub app: TestApp,
    pub slack: MockServer,
}

impl SlackTest {
    pub async fn start(backend: Backend) -> SlackTest {
        SlackTest::start_with(backend, &[("NUDGE_SLACK_BOT_TOKEN", TOKEN)]).await
    }

    /// With a bot token, on a database the test made.
    pub async fn start_on_db(db: crate::helpers::TestDb) -> SlackTest {
        SlackTest::start_on(db, &[("NUDGE_SLACK_BOT_TOKEN", TOKEN)]).await
    }

    pub async fn start_with(backend: Backend, settings: &[(&str, &str)]) -> SlackTest {
        SlackTest::start_on(crate::helpers::TestDb::new(backend).await, settings).await
    }

    /// On a database the test made (an SQLite file on a small filesystem, say).
    pub async fn start_on(db: crate::helpers::TestDb, settings: &[(&str, &str)]) -> SlackTest {
        let slack = MockServer::start().await;
        for (api_method, response) in [
            ("chat.postMessage", json!({"ok": true, "channel": "C01", "ts": "1764000000.000100", "message": {}})),
            ("chat.postEphemeral", json!({"ok": true, "message_ts": "1764000000.000200"})),
            ("views.open", json!({"ok": true, "view": {"id": "V01"}})),
        ] {
            Mock::given(method("POST"))
                .and(path(format!("/api/{api_method}")))
                .respond_with(ResponseTemplate::new(200).set_body_json(response))
                .mount(&slack)
                .await;
        }
        Mock::given(method("POST"))
            .and(path("/commands/T01/1/response"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&slack)
            .await;
        let api_url = format!("{}/api", slack.uri());
        let mut all: Vec<(&str, &str)> = vec![
            ("NUDGE_SLACK_SIGNING_SECRET", SECRET),
            ("NUDGE_SLACK_API_URL", &api_url),
            ("NUDGE_PUBLIC_URL", "https://nudge.example.com"),
        ];
        all.extend_from_slice(settings);
        let app = TestApp::spawn_on(db, &all).await;
        SlackTest { app, slack }
    }

    pub fn response_url(&self) -> String {
        format!("{}/commands/T01/1/response", self.slack.uri())
    }

    /// The form body of a slash command, field for field as Slack sends it.
    pub fn slash_body(&self, command: &str, text: &str, team: &str, user: (&str, &str)) -> String {
        serde_urlencoded::to_string([
            ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
            ("team_id", team),
            ("team_domain", "acme"),
            ("channel_id", "C01"),
            ("channel_name", "growth"),
            ("user_id", user.0),
            ("user_name", user.1),
            ("command", command),
            ("text", text),
            ("api_app_id", "A01"),
            ("is_enterprise_install", "false"),
            ("response_url", &self.response_url()),
            ("trigger_id", &trigger_id()),
        ])
        .unwrap()
    }

    /// POSTs a body signed with `secret` at the app clock's current time.
    pub async fn signed(&self, route: &str, content_type: &str, body: String, secret: &str) -> reqwest::Response {
        let now = self.app.clock.now().timestamp();
        self.app
            .client
            .post(self.app.url(route))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", now.to_string())
            .header("x-slack-signature", sign(secret, now, body.as_bytes()))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Types a slash command as Ada in #growth of team T01 and returns Slack's view of the answer.
    pub async fn slash(&self, command: &str, text: &str) -> Value {
        self.slash_as(command, text, "T01", ("U01", "ada")).await
    }

    pub async fn slash_as(&self, command: &str, text: &str, team: &str, user: (&str, &str)) -> Value {
        let body = self.slash_body(command, text, team, user);
        let response = self.signed("/slack/commands", "application/x-www-form-urlencoded", body, SECRET).await;
        assert_eq!(response.status(), 200, "{command} {text}");
        let body = response.text().await.unwrap();
        if body.is_empty() { Value::Null } else { serde_json::from_str(&body).unwrap() }
    }

    pub async fn interaction(&self, payload: Value) -> reqwest::Response {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        self.signed("/slack/interactions", "application/x-www-form-urlencoded", body, SECRET).await
    }

    pub async fn event(&self, payload: Value, retry: Option<u32>) -> reqwest::Response {
        let body = payload.to_string();
        let now = self.app.clock.now().timestamp();
        let mut request = self
            .app
            .client
            .post(self.app.url("/slack/events"))
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", now.to_string())
            .header("x-slack-signature", sign(SECRET, now, body.as_bytes()));
        if let Some(n) = retry {
            request = request.header("x-slack-retry-num", n.to_string()).header("x-slack-retry-reason", "http_timeout");
        }
        request.body(body).send().await.unwrap()
    }

    /// Waits for the app's calls to one path of the stand-in (they happen after the ack).
    pub async fn calls_to(&self, route: &str, at_least: usize) -> Vec<Request> {
        for _ in 0..150 {
            let calls: Vec<Request> =
                self.slack.received_requests().await.unwrap().into_iter().filter(|r| r.url.path() == route).collect();
            if calls.len() >= at_least {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {at_least} call(s) to {route}");
    }

    pub async fn calls_now(&self, route: &str) -> usize {
        self.slack.received_requests().await.unwrap().iter().filter(|r| r.url.path() == route).count()
    }

    /// A block_actions payload as Slack sends it when Ada clicks a button in #growth.
    pub fn click(&self, action_id: &str, value: &str) -> Value {
        json!({
            "type": "block_actions",
            "user": {"id": "U01", "username": "ada", "name": "ada", "team_id": "T01"},
            "api_app_id": "A01",
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "container": {"type": "message", "message_ts": "1764000000.000100", "channel_id": "C01", "is_ephemeral": false},
            "trigger_id": trigger_id(),
            "team": {"id": "T01", "domain": "acme"},
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": {"id": "C01", "name": "growth"},
            "message": {"type": "message", "text": "…", "ts": "1764000000.000100"},
            "response_url": self.response_url(),
            "actions": [{
                "action_id": action_id, "block_id": "b1", "text": {"type": "plain_text", "text": "button"},
                "value": value, "type": "button", "action_ts": "1764000001.000000"
            }],
            "state": {"values": {}}
        })
    }
}

/// A fresh trigger id, as Slack gives every command and click one: two requests are never the same.
pub fn trigger_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("13345224609.738474920.{n:031x}")
}

/// The buttons in a Block Kit message: (action_id, value, label).
pub fn buttons(message: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for block in message["blocks"].as_array().into_iter().flatten() {
        for element in block["elements"].as_array().into_iter().flatten() {
            if element["type"] == "button" {
                found.push((
                    element["action_id"].as_str().unwrap_or_default().to_string(),
                    element["value"].as_str().unwrap_or_default().to_string(),
                    element["text"]["text"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    found
}

/// The button with this label whose value is `value`.
pub fn button(message: &Value, label: &str, value: &str) -> (String, String) {
    buttons(message)
        .into_iter()
        .find(|(_, v, l)| l == label && v == value)
        .map(|(a, v, _)| (a, v))
        .unwrap_or_else(|| panic!("no {label} button for {value} in {message}"))
}

/// Everything a person would read in a Block Kit message.
pub fn visible_text(message: &Value) -> String {
    fn walk(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(text)) = map.get("text") {
                    out.push_str(text);
                    out.push('\n');
                }
                for (key, inner) in map {
                    if key != "text" || !inner.is_string() {
                        walk(inner, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(message, &mut out);
    out
}

/// Fills a modal the way Slack reports a submission: `view.state.values[block_id][action_id]`,
/// choosing each input by words in its label.
pub fn fill_form(view: &Value, answers: &[(&str, &str)]) -> Value {
    let mut values = serde_json::Map::new();
    for block in view["blocks"].as_array().expect("a modal has blocks") {
        if block["type"] != "input" {
            continue;
        }
        let label = block["label"]["text"].as_str().unwrap_or_default().to_lowercase();
        let element = &block["element"];
        let action_id = element["action_id"].as_str().expect("inputs have action ids");
        let answer = answers.iter().find(|(words, _)| label.contains(&words.to_lowercase())).map(|(_, a)| *a);
        let state = match element["type"].as_str().unwrap_or_default() {
            "datepicker" => json!({"type": "datepicker", "selected_date": answer}),
            kind @ ("static_select" | "radio_buttons") => {
                let option = answer.map(|a| json!({"text": {"type": "plain_text", "text": a}, "value": a}));
                json!({"type": kind, "selected_option": option})
            }
            kind => json!({"type": kind, "value": answer}),
        };
        let block_id = block["block_id"].as_str().expect("inputs have block ids").to_string();
        values.insert(block_id, json!({ action_id: state }));
    }
    Value::Object(values)
}

pub fn submission(view: &Value, values: Value) -> Value {
    json!({
        "type": "view_submission",
        "team": {"id": "T01", "domain": "acme"},
        "user": {"id": "U01", "username": "ada", "name": "ada", "team_id": "T01"},
        "api_app_id": "A01",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "trigger_id": trigger_id(),
        "view": {
            "id": "V01", "team_id": "T01", "type": "modal", "blocks": view["blocks"],
            "private_metadata": view["private_metadata"], "callback_id": view["callback_id"],
            "state": {"values": values}, "hash": "156772938.1827394", "title": view["title"],
            "clear_on_close": false, "notify_on_close": false, "close": null, "submit": null,
            "previous_view_id": null, "root_view_id": "V01", "app_id": "A01", "external_id": "",
            "app_installed_team_id": "T01", "bot_id": "B01"
        },
        "response_urls": [],
        "is_enterprise_install": false,
        "enterprise": null
    })
}

const PROPOSAL: &str =
    "propose Shorter onboarding email | A 3-line welcome raises activation | activation 0.31 -&gt; 0.36";

async fn every_command_answers_in_slack(backend: Backend) {
    let t = SlackTest::start(backend).await;
    let proposed = t.slash("/experiment", PROPOSAL).await;
    assert_eq!(proposed["response_type"], "in_channel");
    assert!(proposed["text"].as_str().unwrap().contains("ada proposed E-1: Shorter onboarding email"), "{proposed}");
    assert!(visible_text(&proposed).contains("0.31") && visible_text(&proposed).contains("0.36"));

    // (command, text, response type, words the person reads)
    let script: &[(&str, &str, &str, &str)] = &[
        ("/experiment", "list", "ephemeral", "E-1"),
        ("/experiment", "show E-1", "ephemeral", "A 3-line welcome raises activation"),
        ("/experiment", "vote E-1", "ephemeral", "1 vote now"),
        ("/experiment", "start E-1", "in_channel", "E-1 is running"),
        ("/experiment", "update E-1 0.34 after a week", "ephemeral", "Recorded 0.34 for E-1"),
        ("/experiment", "close E-1 won short emails get read", "in_channel", "short emails get read"),
        ("/experiment", "learnings email", "ephemeral", "short emails get read"),
        ("/pledge", "call five customers by fri", "in_channel", "ada pledged: call five customers"),
        ("/pledge", "extend P-1 to next fri", "ephemeral", "P-1 is now due"),
        ("/pledge", "list", "ephemeral", "P-1"),
        ("/pledge", "done P-1 all five", "in_channel", "ada kept P-1"),
        ("/pledge", "draft the survey by tomorrow", "in_channel", "P-2"),
        ("/pledge", "release P-2 the survey moved to Q1", "ephemeral", "not a break"),
        ("/pledge", "list all", "ephemeral", "No open pledges"),
        ("/nudge", "rules set Ship small &amp; say when you can't", "in_channel", "Ship small &amp; say"),
        ("/nudge", "rules", "ephemeral", "Ship small"),
        ("/nudge", "schedule tue 10:00 Europe/Berlin", "ephemeral", "Tuesdays at 10:00 (Europe/Berlin)"),
        ("/nudge", "quiet sat,sun", "ephemeral", "every sat, sun"),
        ("/nudge", "pause 1", "ephemeral", "paused"),
        ("/nudge", "pause 0", "ephemeral", "back on"),
        ("/nudge", "digest", "in_channel", "1 learning logged"),
        ("/nudge", "settings", "ephemeral", "Tuesdays at 10:00"),
        ("/nudge", "help", "ephemeral", "/experiment propose"),
    ];
    for (command, text, response_type, words) in script {
        let answer = t.slash(command, text).await;
        assert_eq!(answer["response_type"], *response_type, "{command} {text}: {answer}");
        assert!(visible_text(&answer).contains(words), "{command} {text}: {words:?} not in {answer}");
        assert!(!answer["text"].as_str().unwrap_or_default().is_empty(), "every answer has a plain fallback");
        assert!(answer["blocks"].as_array().map_or(0, Vec::len) <= 50);
    }
}

#[tokio::test]
async fn postgres_every_command_answers_in_slack() {
    every_command_answers_in_slack(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_every_command_answers_in_slack() {
    every_command_answers_in_slack(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_wrong_command_gets_its_usage_privately() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let answer = t.slash("/experiment", "update E-1 lots").await;
    assert_eq!(answer["response_type"], "ephemeral");
    let text = visible_text(&answer);
    assert!(text.contains("Usage:") && text.contains("Example:") && text.contains("lots"), "{text}");
}

#[tokio::test]
async fn bad_stale_or_missing_signatures_get_401_and_change_nothing() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let body = t.slash_body("/experiment", PROPOSAL, "T01", ("U01", "ada"));
    let wrong = t.signed("/slack/commands", "application/x-www-form-urlencoded", body.clone(), "not-the-secret").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.text().await.unwrap(), "", "a 401 says nothing else");

    let stale_at = t.app.clock.now().timestamp() - 301;
    let stale = t
        .app
        .client
        .post(t.app.url("/slack/commands"))
        .header("x-slack-request-timestamp", stale_at.to_string())
        .header("x-slack-signature", sign(SECRET, stale_at, body.as_bytes()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    let unsigned = t.app.client.post(t.app.url("/slack/commands")).body(body.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    for route in ["/slack/interactions", "/slack/events"] {
        let response = t.app.client.post(t.app.url(route)).body("payload=%7B%7D").send().await.unwrap();
        assert_eq!(response.status(), 401, "{route}");
    }
    // Nothing was written: the next proposal is still E-1.
    let answer = t.slash("/experiment", PROPOSAL).await;
    assert!(answer["text"].as_str().unwrap().contains("E-1"), "{answer}");
}

#[tokio::test]
async fn a_request_signed_with_the_previous_secret_is_accepted_during_rotation() {
    let secrets = format!("{SECRET},the-new-secret");
    let t = SlackTest::start_with(
        Backend::Sqlite,
        &[("NUDGE_SLACK_BOT_TOKEN", TOKEN), ("NUDGE_SLACK_SIGNING_SECRET", &secrets)],
    )
    .await;
    let body = t.slash_body("/nudge", "help", "T01", ("U01", "ada"));
    let response = t.signed("/slack/commands", "application/x-www-form-urlencoded", body, "the-new-secret").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_oversized_slack_request_gets_413() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let body = t.slash_body("/pledge", &"x".repeat(1024 * 1024), "T01", ("U01", "ada"));
    let response = t.signed("/slack/commands", "application/x-www-form-urlencoded", body, SECRET).await;
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn an_unsigned_looking_but_malformed_body_is_a_400_after_verification() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let response =
        t.signed("/slack/commands", "application/x-www-form-urlencoded", "text=no+team".into(), SECRET).await;
    assert_eq!(response.status(), 400);
}

async fn proposing_through_the_form(backend: Backend) {
    let t = SlackTest::start(backend).await;
    let ack = t.slash("/experiment", "").await;
    assert_eq!(ack, Value::Null, "the form is the answer; the command itself is acknowledged silently");
    let opened = t.calls_to("/api/views.open", 1).await;
    assert_eq!(opened[0].headers.get("authorization").unwrap(), &format!("Bearer {TOKEN}"));
    let request: Value = serde_json::from_slice(&opened[0].body).unwrap();
    assert!(request["trigger_id"].as_str().is_some_and(|id| id.starts_with("13345224609.738474920.")), "{request}");
    let view = &request["view"];
    assert_eq!(view["type"], "modal");

    // A baseline that is not a number comes back as an error on that field, and nothing is stored.
    let bad = fill_form(
        view,
        &[
            ("title", "Shorter email"),
            ("hypothesis", "short gets read"),
            ("metric", "activation"),
            ("baseline", "lots"),
            ("target", "0.36"),
        ],
    );
    let response = t.interaction(submission(view, bad)).await;
    assert_eq!(response.status(), 200);
    let errors: Value = response.json().await.unwrap();
    assert_eq!(errors["response_action"], "errors");
    let messages = errors["errors"].as_object().unwrap();
    assert_eq!(messages.len(), 1, "{errors}");
    assert!(messages.values().next().unwrap().as_str().unwrap().contains("lots"), "{errors}");

    let good = fill_form(
        view,
        &[
            ("title", "Shorter email"),
            ("hypothesis", "short gets read"),
            ("metric", "activation"),
            ("baseline", "0.31"),
            ("target", "0.36"),
        ],
    );
    let response = t.interaction(submission(view, good)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "", "an empty 200 closes the form");
    let posted = t.calls_to("/api/chat.postMessage", 1).await;
    let message: Value = serde_json::from_slice(&posted[0].body).unwrap();
    assert_eq!(message["channel"], "C01");
    assert!(message["text"].as_str().unwrap().contains("E-1: Shorter email"), "{message}");
    assert!(t.slash("/experiment", "show E-1").await["text"].as_str().unwrap().contains("Shorter email"));
}

#[tokio::test]
async fn postgres_proposing_through_the_form() {
    proposing_through_the_form(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_proposing_through_the_form() {
    proposing_through_the_form(Backend::Sqlite).await;
}

#[tokio::test]
async fn closing_without_an_outcome_opens_the_close_form() {
    let t = SlackTest::start(Backend::Sqlite).await;
    t.slash("/experiment", PROPOSAL).await;
    t.slash("/experiment", "start E-1").await;
    assert_eq!(t.slash("/experiment", "close E-1").await, Value::Null);
    let opened = t.calls_to("/api/views.open", 1).await;
    let view = serde_json::from_slice::<Value>(&opened[0].body).unwrap()["view"].clone();
    assert!(visible_text(&view).contains("Shorter onboarding email"), "{view}");
    let values = fill_form(&view, &[("outcome", "lost"), ("learn", "people skim anyway")]);
    let response = t.interaction(submission(&view, values)).await;
    assert_eq!(response.text().await.unwrap(), "");
    let posted = t.calls_to("/api/chat.postMessage", 1).await;
    let message: Value = serde_json::from_slice(&posted[0].body).unwrap();
    assert!(visible_text(&message).contains("people skim anyway"), "{message}");
    // A close form for an experiment that does not exist never opens.
    let answer = t.slash("/experiment", "close E-9").await;
    assert!(answer["text"].as_str().unwrap().contains("There is no E-9"), "{answer}");
}

async fn every_button_works(backend: Backend) {
    let t = SlackTest::start(backend).await;
    let proposed = t.slash("/experiment", PROPOSAL).await;

    let (action, value) = button(&proposed, "Vote", "E-1");
    assert_eq!(t.interaction(t.click(&action, &value)).await.status(), 200);
    let answered = t.calls_to("/commands/T01/1/response", 1).await;
    let body: Value = serde_json::from_slice(&answered[0].body).unwrap();
    assert_eq!(body["response_type"], "ephemeral");
    assert!(visible_text(&body).contains("1 vote now"), "{body}");

    let (action, value) = button(&proposed, "Start", "E-1");
    t.interaction(t.click(&action, &value)).await;
    let answered = t.calls_to("/commands/T01/1/response", 2).await;
    let body: Value = serde_json::from_slice(&answered[1].body).unwrap();
    assert_eq!(body["response_type"], "in_channel");
    assert!(visible_text(&body).contains("E-1 is running"), "{body}");

    // Update metric opens a small form; its submission records the reading.
    let running = t.slash("/experiment", "list running").await;
    let (action, value) = button(&running, "Update metric", "E-1");
    t.interaction(t.click(&action, &value)).await;
    let opened = t.calls_to("/api/views.open", 1).await;
    let view = serde_json::from_slice::<Value>(&opened[0].body).unwrap()["view"].clone();
    let response =
        t.interaction(submission(&view, fill_form(&view, &[("activation", "0.35"), ("note", "week two")]))).await;
    assert_eq!(response.text().await.unwrap(), "");
    let recorded = t.calls_to("/api/chat.postEphemeral", 1).await;
    let body: Value = serde_json::from_slice(&recorded[0].body).unwrap();
    assert!(visible_text(&body).contains("Recorded 0.35 for E-1"), "the form's result reaches its author: {body}");
    let shown = t.slash("/experiment", "show E-1").await;
    assert!(visible_text(&shown).contains("0.35"), "{shown}");

    let pledged = t.slash("/pledge", "call five customers by fri").await;
    let (action, value) = button(&pledged, "Done", "P-1");
    t.interaction(t.click(&action, &value)).await;
    let answered = t.calls_to("/commands/T01/1/response", 3).await;
    let body: Value = serde_json::from_slice(&answered[2].body).unwrap();
    assert!(visible_text(&body).contains("ada kept P-1"), "{body}");

    // Extend and Release open their forms.
    let pledged = t.slash("/pledge", "draft the survey by fri").await;
    for (label, count) in [("Extend", 2), ("Release", 3)] {
        let (action, value) = button(&pledged, label, "P-2");
        t.interaction(t.click(&action, &value)).await;
        t.calls_to("/api/views.open", count).await;
    }
    let opened = t.calls_to("/api/views.open", 3).await;
    let release = serde_json::from_slice::<Value>(&opened[2].body).unwrap()["view"].clone();
    let values = fill_form(&release, &[("why", "the survey moved to Q1"), ("reason", "the survey moved to Q1")]);
    t.interaction(submission(&release, values)).await;
    let ephemeral = t.calls_to("/api/chat.postEphemeral", 2).await;
    let body: Value = serde_json::from_slice(&ephemeral[1].body).unwrap();
    assert_eq!(body["user"], "U01");
    assert!(visible_text(&body).contains("Released P-2"), "{body}");
}

#[tokio::test]
async fn postgres_every_button_works() {
    every_button_works(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_every_button_works() {
    every_button_works(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_unknown_button_is_acknowledged_and_nothing_else_happens() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let response = t.interaction(t.click("someone_elses_button", "42")).await;
    assert_eq!(response.status(), 200);
    let closed = json!({"type": "view_closed", "team": {"id": "T01", "domain": "acme"}, "user": {"id": "U01"}, "view": {"callback_id": "propose", "state": {"values": {}}}, "is_cleared": false});
    assert_eq!(t.interaction(closed).await.status(), 200);
    t.app.settle().await;
    assert_eq!(t.slack.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn the_events_url_is_verified_by_echoing_the_challenge() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let response = t
        .event(json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}), None)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
}

async fn a_mention_is_answered_once_however_often_slack_delivers_it(backend: Backend) {
    let t = SlackTest::start(backend).await;
    let event = json!({
        "token": "XXYYZZ", "team_id": "T01", "api_app_id": "A01",
        "event": {"type": "app_mention", "user": "U01", "text": "<@U0LAN0Z89> help", "ts": "1515449522.000016", "channel": "C01", "event_ts": "1515449522000016"},
        "type": "event_callback", "event_id": "Ev0LAN670R", "event_time": 1515449522000016_i64,
        "authorizations": [{"enterprise_id": null, "team_id": "T01", "user_id": "U0LAN0Z89", "is_bot": true, "is_enterprise_install": false}],
        "is_ext_shared_channel": false, "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0"
    });
    for retry in [None, Some(1), None] {
        assert_eq!(t.event(event.clone(), retry).await.status(), 200);
    }
    let posted = t.calls_to("/api/chat.postEphemeral", 1).await;
    let body: Value = serde_json::from_slice(&posted[0].body).unwrap();
    assert_eq!((body["channel"].as_str(), body["user"].as_str()), (Some("C01"), Some("U01")));
    assert!(visible_text(&body).contains("/experiment propose"), "the mention is answered with help");
    t.app.settle().await;
    assert_eq!(t.calls_now("/api/chat.postEphemeral").await, 1, "retries and duplicates have no second effect");
}

#[tokio::test]
async fn postgres_a_mention_is_answered_once_however_often_slack_delivers_it() {
    a_mention_is_answered_once_however_often_slack_delivers_it(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_mention_is_answered_once_however_often_slack_delivers_it() {
    a_mention_is_answered_once_however_often_slack_delivers_it(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_manifest_carries_this_servers_urls() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let manifest: Value = t.app.get("/slack/manifest").await.json().await.unwrap();
    let commands: Vec<&str> = manifest["features"]["slash_commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, vec!["/experiment", "/pledge", "/nudge"]);
    for command in manifest["features"]["slash_commands"].as_array().unwrap() {
        assert_eq!(command["url"], "https://nudge.example.com/slack/commands");
    }
    assert_eq!(manifest["settings"]["interactivity"]["request_url"], "https://nudge.example.com/slack/interactions");
    assert_eq!(manifest["settings"]["event_subscriptions"]["request_url"], "https://nudge.example.com/slack/events");
    assert_eq!(manifest["oauth_config"]["redirect_urls"][0], "https://nudge.example.com/slack/oauth/callback");
    let scopes = manifest["oauth_config"]["scopes"]["bot"].as_array().unwrap();
    assert!(scopes.contains(&json!("commands")) && scopes.contains(&json!("chat:write")));
}

#[tokio::test]
async fn without_a_public_url_the_manifest_says_what_to_set() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = app.get("/slack/manifest").await;
    assert_eq!(response.status(), 409);
    assert!(response.text().await.unwrap().contains("NUDGE_PUBLIC_URL"));
    // Without Slack settings the webhooks are not there at all.
    assert_eq!(app.client.post(app.url("/slack/commands")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn when_slack_rate_limits_the_form_the_person_is_told_when_to_try_again() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/views.open"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/commands/T01/1/response"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&slack)
        .await;
    let api_url = format!("{}/api", slack.uri());
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("NUDGE_SLACK_SIGNING_SECRET", SECRET), ("NUDGE_SLACK_BOT_TOKEN", TOKEN), ("NUDGE_SLACK_API_URL", &api_url)],
    )
    .await;
    let t = SlackTest { app, slack };
    assert_eq!(t.slash("/experiment", "propose").await, Value::Null);
    let told = t.calls_to("/commands/T01/1/response", 1).await;
    let body: Value = serde_json::from_slice(&told[0].body).unwrap();
    assert_eq!(body["response_type"], "ephemeral");
    assert!(visible_text(&body).contains("try again in 7 seconds"), "{body}");
    assert_eq!(t.calls_now("/api/views.open").await, 1, "nudge does not hammer a rate-limited Slack");
}

#[tokio::test]
async fn a_persons_time_zone_is_learned_from_slack_after_their_first_command() {
    let t = SlackTest::start(Backend::Sqlite).await;
    Mock::given(method("POST"))
        .and(path("/api/users.info"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true,
            "user": {
                "id": "U01", "team_id": "T01", "name": "ada", "real_name": "Ada Lovelace",
                "tz": "America/New_York", "tz_label": "Eastern Standard Time", "tz_offset": -18000,
                "profile": {"display_name": "Ada", "real_name": "Ada Lovelace"}
            }
        })))
        .mount(&t.slack)
        .await;
    t.slash("/pledge", "call five customers by fri").await;
    t.app.settle().await;
    let asked = t.calls_to("/api/users.info", 1).await;
    assert!(String::from_utf8_lossy(&asked[0].body).contains("user=U01"));
    let mut tx = t.app.store.read().await.unwrap();
    let ws = tx.workspace("slack", "T01").await.unwrap().unwrap();
    let (_, member) = tx.channel_and_member(ws, "C01", "U01").await.unwrap();
    let zone = member.and_then(|m| m.time_zone);
    assert_eq!(zone.map(|z| z.name().to_string()).as_deref(), Some("America/New_York"));
    drop(tx);
    // Once per person: a second command does not ask again.
    t.slash("/pledge", "list").await;
    t.app.settle().await;
    assert_eq!(t.calls_now("/api/users.info").await, 1);
}
