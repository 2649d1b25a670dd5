//! Microsoft Teams end to end: activities shaped as Microsoft documents them, each signed with a
//! test RSA key that a local stand-in for the identity service publishes (OpenID metadata + JWKS),
//! a stand-in token endpoint, and a stand-in Bot Connector. Every card nudge sends validates
//! against Microsoft's Adaptive Card 1.5 schema (vendored in `teams_schema/`, MIT) and stays
//! under Teams' 28 KB.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use nudge::clock::{Clock, ManualClock};
use nudge::config::Config;
use nudge::outbox::{Deliveries, Delivery, Sender, SenderSettings};
use nudge::platforms::teams::delivery::TeamsDelivery;
use nudge::platforms::teams::{Teams, TeamsConfig, records};
use nudge::scheduler::{Scheduler, SchedulerSettings};
use nudge::store::{Recipient, Store, WorkspaceId};

use crate::helpers::{Backend, TestApp, TestDb, empty_config_file, monday_morning};

pub const APP_ID: &str = "3f6b8c2e-1a4d-4e5f-9a7b-0c1d2e3f4a5b";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const PASSWORD: &str = "Q~x8Q~bot-password-for-tests";
const BOT: &str = "28:3f6b8c2e-1a4d-4e5f-9a7b-0c1d2e3f4a5b";
const CHANNEL: &str = "19:growth0a1b2c3d4e5f@thread.tacv2";
const TEAM: &str = "19:team9f8e7d6c5b4a@thread.tacv2";
const BOT_KEY: &str = include_str!("teams_keys/bot.pem");
const BOT_N: &str = include_str!("teams_keys/bot.n");
const OTHER_KEY: &str = include_str!("teams_keys/other.pem");
const SCHEMA: &str = include_str!("teams_schema/adaptive-card-1.5.json");

/// nudge with Teams configured, its identity service, token endpoint and Bot Connector stood in for.
pub struct TeamsTest {
    pub app: TestApp,
    pub identity: MockServer,
    pub connector: MockServer,
    next_id: AtomicU64,
}

impl TeamsTest {
    pub async fn start(backend: Backend) -> TeamsTest {
        TeamsTest::start_with(backend, &[]).await
    }

    pub async fn start_with(backend: Backend, extra: &[(&str, &str)]) -> TeamsTest {
        let (identity, connector) = (MockServer::start().await, MockServer::start().await);
        stand_in_identity(&identity).await;
        stand_in_connector(&connector).await;
        let metadata = format!("{}/v1/.well-known/openidconfiguration", identity.uri());
        let token_url = format!("{}/{{tenant}}/oauth2/v2.0/token", identity.uri());
        let mut settings: Vec<(&str, &str)> = vec![
            ("NUDGE_TEAMS_APP_ID", APP_ID),
            ("NUDGE_TEAMS_APP_PASSWORD", PASSWORD),
            ("NUDGE_TEAMS_TENANT_ID", TENANT),
            ("NUDGE_TEAMS_OPENID_METADATA_URL", &metadata),
            ("NUDGE_TEAMS_TOKEN_URL", &token_url),
            ("NUDGE_TEAMS_SERVICE_URL_HOSTS", "127.0.0.1"),
            ("NUDGE_PUBLIC_URL", "https://nudge.example.com"),
        ];
        settings.extend_from_slice(extra);
        let app = TestApp::spawn_with(backend, &settings).await;
        TeamsTest { app, identity, connector, next_id: AtomicU64::new(1) }
    }

    pub fn service_url(&self) -> String {
        format!("{}/amer/", self.connector.uri())
    }

    /// The claims of a token the Bot Framework sends with an activity from this service URL.
    pub fn claims(&self) -> Value {
        let now = Utc::now().timestamp();
        json!({
            "iss": "https://api.botframework.com",
            "aud": APP_ID,
            "exp": now + 3600,
            "nbf": now - 60,
            "serviceurl": self.service_url(),
        })
    }

    pub fn token(&self) -> String {
        sign(&self.claims(), "bot-key", BOT_KEY)
    }

    pub async fn post(&self, activity: &Value, authorization: Option<&str>) -> reqwest::Response {
        let mut request = self.app.client.post(self.app.url("/teams/messages")).json(activity);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.unwrap()
    }

    /// Sends an activity with a valid token; answers 200.
    pub async fn send(&self, activity: &Value) -> reqwest::Response {
        let response = self.post(activity, Some(&format!("Bearer {}", self.token()))).await;
        assert_eq!(response.status(), 200, "{activity}");
        response
    }

    fn activity_id(&self) -> String {
        format!("1764000000{:03}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// A message in #growth of the Growth team, Ada @mentioning nudge, as Teams sends it.
    pub fn channel_message(&self, text: &str) -> Value {
        let id = self.activity_id();
        json!({
            "type": "message",
            "id": id,
            "timestamp": "2026-11-23T10:00:00.000Z",
            "channelId": "msteams",
            "serviceUrl": self.service_url(),
            "from": {"id": "29:ada", "name": "Ada Lovelace", "aadObjectId": "6f3f1c3e-0000-4000-8000-000000000001"},
            "recipient": {"id": BOT, "name": "nudge"},
            "conversation": {
                "id": format!("{CHANNEL};messageid={id}"),
                "conversationType": "channel",
                "isGroup": true,
                "tenantId": TENANT,
            },
            "channelData": {
                "teamsChannelId": CHANNEL,
                "teamsTeamId": TEAM,
                "channel": {"id": CHANNEL, "name": "growth"},
                "team": {"id": TEAM, "name": "Growth"},
                "tenant": {"id": TENANT},
            },
            "text": format!("<at>nudge</at> {text}"),
            "textFormat": "plain",
            "entities": [
                {"type": "mention", "text": "<at>nudge</at>", "mentioned": {"id": BOT, "name": "nudge"}},
                {"type": "clientInfo", "locale": "en-GB", "country": "GB", "platform": "Web"},
            ],
        })
    }

    /// A message in Ada's personal chat with nudge: no mention.
    pub fn personal_message(&self, text: &str) -> Value {
        json!({
            "type": "message",
            "id": self.activity_id(),
            "channelId": "msteams",
            "serviceUrl": self.service_url(),
            "from": {"id": "29:ada", "name": "Ada Lovelace"},
            "recipient": {"id": BOT, "name": "nudge"},
            "conversation": {"id": "a:1personal-ada", "conversationType": "personal", "tenantId": TENANT},
            "channelData": {"tenant": {"id": TENANT}},
            "text": text,
            "textFormat": "plain",
        })
    }

    /// Ada clicks a button (or submits a form) on a card in #growth: an `adaptiveCard/action` invoke.
    pub fn invoke(&self, verb: &str, data: Value) -> Value {
        let mut activity = self.channel_message("");
        activity["type"] = json!("invoke");
        activity["name"] = json!("adaptiveCard/action");
        activity["replyToId"] = json!("1764000000999");
        activity.as_object_mut().unwrap().remove("text");
        activity.as_object_mut().unwrap().remove("entities");
        activity["value"] =
            json!({"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"});
        activity
    }

    /// The same click from a client that cannot execute: `Action.Submit`, a message with a value.
    pub fn submit(&self, data: Value) -> Value {
        let mut activity = self.channel_message("");
        activity.as_object_mut().unwrap().remove("text");
        activity.as_object_mut().unwrap().remove("entities");
        activity["replyToId"] = json!("1764000000999");
        activity["value"] = data;
        activity
    }

    /// Says something in #growth and returns nudge's reply (the activity it posted).
    pub async fn say(&self, text: &str) -> Value {
        let before = self.posts().await.len();
        self.send(&self.channel_message(text)).await;
        self.app.settle().await;
        let posts = self.posts().await;
        assert_eq!(posts.len(), before + 1, "one reply to {text:?}: {posts:?}");
        posts.last().unwrap().1.clone()
    }

    /// Every activity nudge sent to the Bot Connector (path, body), each checked against the schema.
    pub async fn posts(&self) -> Vec<(String, Value)> {
        let requests = self.connector.received_requests().await.unwrap();
        requests
            .iter()
            .filter(|r| r.method.as_str() != "GET")
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(
                    r.headers.get("authorization").and_then(|v| v.to_str().ok()),
                    Some("Bearer connector-token-1"),
                    "the connector gets the bot's token"
                );
                let activity = body.get("activity").cloned().unwrap_or_else(|| body.clone());
                if activity.get("attachments").is_some() {
                    assert_valid_activity(&activity);
                }
                (r.url.path().to_string(), body)
            })
            .collect()
    }

    /// Waits (bounded) for the app's own outbox sender to make `at_least` calls to a connector path.
    pub async fn calls_to(&self, wanted: impl Fn(&str) -> bool, at_least: usize) -> Vec<(String, Value)> {
        for _ in 0..250 {
            let calls: Vec<_> = self.posts().await.into_iter().filter(|(p, _)| wanted(p)).collect();
            if calls.len() >= at_least {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {at_least} call(s) to the Bot Connector: {:?}", self.posts().await);
    }

    /// Waits (bounded) for the weekly check-in: a new thread in #growth naming the running experiment.
    pub async fn check_in(&self) -> Value {
        for _ in 0..250 {
            let found = self.posts().await.into_iter().find(|(p, body)| {
                p == "/amer/v3/conversations"
                    && body["isGroup"] == true
                    && shown(&body["activity"]).contains("Shorter signup")
            });
            if let Some((_, body)) = found {
                return body;
            }
            // Posts to one channel are paced a second apart on the app's clock.
            self.app.clock.advance(chrono::Duration::seconds(2));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no check-in thread: {:?}", self.posts().await);
    }

    pub async fn workspace(&self) -> WorkspaceId {
        let mut tx = self.app.store.read().await.unwrap();
        tx.workspace("teams", TENANT).await.unwrap().expect("the tenant's workspace")
    }

    /// Installs nudge in the Growth team with #growth as the selected channel.
    pub async fn install_in_team(&self) {
        let activity = json!({
            "type": "conversationUpdate",
            "id": format!("f:{}", self.activity_id()),
            "channelId": "msteams",
            "serviceUrl": self.service_url(),
            "from": {"id": "29:ada", "name": "Ada Lovelace"},
            "recipient": {"id": BOT, "name": "nudge"},
            "conversation": {"id": CHANNEL, "conversationType": "channel", "isGroup": true, "tenantId": TENANT},
            "membersAdded": [{"id": BOT}],
            "channelData": {"eventType": "teamMemberAdded", "team": {"id": TEAM, "name": "Growth"}, "tenant": {"id": TENANT}},
        });
        self.send(&activity).await;
    }
}

pub fn sign(claims: &Value, kid: &str, pem: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap()
}

async fn stand_in_identity(identity: &MockServer) {
    let jwks = format!("{}/v1/.well-known/keys", identity.uri());
    Mock::given(method("GET"))
        .and(path("/v1/.well-known/openidconfiguration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": "https://api.botframework.com",
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": jwks,
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        })))
        .mount(identity)
        .await;
    let n = BOT_N.trim();
    Mock::given(method("GET"))
        .and(path("/v1/.well-known/keys"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": [
            {"kty": "RSA", "use": "sig", "kid": "bot-key", "x5t": "bot-key", "n": n, "e": "AQAB",
             "endorsements": ["msteams", "webchat", "skype"]},
            {"kty": "RSA", "use": "sig", "kid": "webchat-only", "n": n, "e": "AQAB", "endorsements": ["webchat"]},
        ]})))
        .mount(identity)
        .await;
    // The tenant's own keys, for Entra-issued tokens.
    let entra_jwks = format!("{}/{TENANT}/discovery/v2.0/keys", identity.uri());
    Mock::given(method("GET"))
        .and(path(format!("/{TENANT}/v2.0/.well-known/openid-configuration")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"jwks_uri": entra_jwks})))
        .mount(identity)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/{TENANT}/discovery/v2.0/keys")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": [
            {"kty": "RSA", "use": "sig", "kid": "entra-key", "n": n, "e": "AQAB"},
        ]})))
        .mount(identity)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": "connector-token-1",
        })))
        .mount(identity)
        .await;
}

async fn stand_in_connector(connector: &MockServer) {
    Mock::given(method("POST"))
        .and(path_regex(r"^/amer/v3/conversations/[^/]+/activities(/[^/]+)?$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1764000000500"})))
        .mount(connector)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/amer/v3/conversations/[^/]+/activities/[^/]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1764000000999"})))
        .mount(connector)
        .await;
    Mock::given(method("POST"))
        .and(path("/amer/v3/conversations"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"id": "a:1personal-ada", "activityId": "1764000000600"})),
        )
        .mount(connector)
        .await;
}

/// An activity as Teams takes it: each card valid Adaptive Card 1.5 once the Teams-only `msteams`
/// property is removed, and the whole activity under 28 KB.
pub fn assert_valid_activity(activity: &Value) {
    let size = activity.to_string().len();
    assert!(size < 28 * 1024, "the activity is {size} bytes");
    for attachment in activity["attachments"].as_array().unwrap() {
        assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_valid_card(&attachment["content"]);
    }
}

pub fn assert_valid_card(card: &Value) {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        jsonschema::validator_for(&schema).expect("the Adaptive Card 1.5 schema compiles")
    });
    assert_eq!(card["version"], "1.5");
    let mut card = card.clone();
    card.as_object_mut().unwrap().remove("msteams");
    let errors: Vec<String> = validator.iter_errors(&card).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "the card is not Adaptive Card 1.5: {errors:#?}\n{card:#}");
}

/// The schema check can fail: what Teams would not take (a string fallback on a button, an unknown
/// element, the `msteams` property left in) is refused by it.
#[test]
fn the_vendored_schema_refuses_cards_teams_would_refuse() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let good = json!({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "hi"}],
        "actions": [{"type": "Action.Execute", "title": "Go", "verb": "v", "fallback": {"type": "Action.Submit", "title": "Go"}}]});
    assert!(validator.is_valid(&good));
    let mut string_fallback = good.clone();
    // "drop" is the one string the schema allows; a type name where an object belongs is not.
    string_fallback["actions"][0]["fallback"] = json!("Action.Submit");
    assert!(!validator.is_valid(&string_fallback), "a string fallback on an action");
    let mut unknown = good.clone();
    unknown["body"][0]["type"] = json!("Text.Block");
    assert!(!validator.is_valid(&unknown), "an unknown element");
    let mut teams_only = good.clone();
    teams_only["msteams"] = json!({"width": "Full"});
    assert!(!validator.is_valid(&teams_only), "the msteams property");
}

/// Every text a person sees on a card or activity, in order.
pub fn shown(value: &Value) -> String {
    fn walk(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("text" | "title" | "value" | "label" | "placeholder", Value::String(s)) => {
                            out.push_str(s);
                            out.push('\n');
                        }
                        ("data" | "fallback" | "fallbackText" | "msteams", _) => {}
                        _ => walk(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(value, &mut out);
    out
}

/// The first button with this title on a card, and the data it carries.
pub fn button(activity: &Value, title: &str) -> Value {
    fn find(value: &Value, title: &str) -> Option<Value> {
        match value {
            Value::Object(map)
                if map.get("type") == Some(&json!("Action.Execute")) && map.get("title") == Some(&json!(title)) =>
            {
                Some(value.clone())
            }
            Value::Object(map) => map.values().find_map(|v| find(v, title)),
            Value::Array(items) => items.iter().find_map(|v| find(v, title)),
            _ => None,
        }
    }
    find(activity, title).unwrap_or_else(|| panic!("no {title:?} button on {activity:#}"))
}

async fn invoke_answer(t: &TeamsTest, activity: &Value) -> Value {
    let response = t.send(activity).await;
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    if answer["type"] == "application/vnd.microsoft.card.adaptive" {
        assert_valid_card(&answer["value"]);
    }
    answer
}

// ----- authentication -------------------------------------------------------------------------------

/// Each check fails alone: the activity is refused with an empty 401 (403 for a key not endorsed
/// for Teams), nothing is written and nothing is sent anywhere.
#[tokio::test]
async fn every_failing_token_check_alone_refuses_the_activity_and_does_nothing() {
    let t = TeamsTest::start(Backend::Sqlite).await;
    let activity = t.channel_message("experiment list");
    let now = Utc::now().timestamp();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = t.claims();
        change(&mut claims);
        format!("Bearer {}", sign(&claims, "bot-key", BOT_KEY))
    };
    let hs256 = {
        let header = Header { kid: Some("bot-key".into()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, &t.claims(), &EncodingKey::from_secret(b"guessable")).unwrap()
    };
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no Authorization header", None, 401),
        ("another scheme", Some(format!("Basic {}", t.token())), 401),
        ("an empty bearer", Some("Bearer ".into()), 401),
        ("not a JWT", Some("Bearer not.a.jwt".into()), 401),
        ("HS256 instead of RS256", Some(format!("Bearer {hs256}")), 401),
        ("a kid the JWKS does not have", Some(format!("Bearer {}", sign(&t.claims(), "retired-key", BOT_KEY))), 401),
        ("signed by another key", Some(format!("Bearer {}", sign(&t.claims(), "bot-key", OTHER_KEY))), 401),
        (
            "a key endorsed for webchat only",
            Some(format!("Bearer {}", sign(&t.claims(), "webchat-only", BOT_KEY))),
            403,
        ),
        ("another issuer", Some(with(&|c| c["iss"] = json!("https://api.botframework.example"))), 401),
        (
            "an Entra issuer while those are off",
            Some(with(&|c| {
                c["iss"] = json!(format!("https://sts.windows.net/{TENANT}/"));
                c["tid"] = json!(TENANT);
            })),
            401,
        ),
        ("another audience", Some(with(&|c| c["aud"] = json!("11111111-2222-3333-4444-555555555555"))), 401),
        ("expired beyond the 5 minutes", Some(with(&|c| c["exp"] = json!(now - 360))), 401),
        ("not valid for 6 more minutes", Some(with(&|c| c["nbf"] = json!(now + 360))), 401),
        (
            "a serviceurl of another service",
            Some(with(&|c| c["serviceurl"] = json!("https://smba.trafficmanager.net/emea/"))),
            401,
        ),
        (
            "no serviceurl",
            Some(with(&|c| {
                c.as_object_mut().unwrap().remove("serviceurl");
            })),
            401,
        ),
    ];
    for (what, authorization, status) in cases {
        let response = t.post(&activity, authorization.as_deref()).await;
        assert_eq!(response.status().as_u16(), status, "{what}");
        assert_eq!(response.text().await.unwrap(), "", "{what}: the refusal says nothing");
    }
    t.app.settle().await;
    let mut tx = t.app.store.read().await.unwrap();
    assert_eq!(
        tx.workspace("teams", TENANT).await.unwrap(),
        None,
        "a refused activity stores nothing, not even its tenant"
    );
    drop(tx);
    assert!(t.posts().await.is_empty(), "a refused activity is not answered");
    // A body that is not the one signed for: its serviceUrl differs from the token's claim.
    let mut forged = activity.clone();
    forged["serviceUrl"] = json!("https://evil.example.com/");
    assert_eq!(t.post(&forged, Some(&format!("Bearer {}", t.token()))).await.status(), 401);

    // Within the leeway, and with a trailing slash missing, the same activity goes through.
    let lenient = with(&|c| {
        c["exp"] = json!(now - 240);
        c["serviceurl"] = json!(t.service_url().trim_end_matches('/'));
    });
    assert_eq!(t.post(&activity, Some(&lenient)).await.status(), 200);
    t.app.settle().await;
    assert_eq!(t.posts().await.len(), 1, "the accepted activity is answered");
}

#[tokio::test]
async fn a_verified_body_that_is_not_an_activity_is_a_clear_400_and_an_oversized_one_a_413() {
    let t = TeamsTest::start(Backend::Sqlite).await;
    let bearer = format!("Bearer {}", t.token());
    let not_an_activity = json!({"channelId": "msteams", "serviceUrl": t.service_url(), "type": "message"});
    let response = t.post(&not_an_activity, Some(&bearer)).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("Bot Framework activity"));
    let mut huge = t.channel_message("experiment list");
    huge["text"] = json!("x".repeat(2 * 1024 * 1024));
    assert_eq!(t.post(&huge, Some(&bearer)).await.status(), 413);
    t.app.settle().await;
    assert!(t.posts().await.is_empty());
}

async fn every_button_works_as_a_submit_too(backend: Backend) {
    let t = TeamsTest::start(backend).await;
    let proposed = t.say("experiment propose Shorter signup | Fewer fields help | activation 31% -&gt; 40%").await;
    t.send(&t.submit(button(&proposed, "Vote")["fallback"]["data"].clone())).await;
    t.app.settle().await;
    assert!(shown(&t.posts().await.last().unwrap().1).contains("vote"), "the vote is answered in the thread");
    t.say("experiment start E-1").await;
    let running = t.say("experiment show E-1").await;
    t.send(&t.submit(button(&running, "Update metric")["fallback"]["data"].clone())).await;
    t.app.settle().await;
    let form = t.posts().await.last().unwrap().1.clone();
    let mut data = button(&form, "Save")["fallback"]["data"].clone();
    data["value"] = json!("35%");
    t.send(&t.submit(data)).await;
    t.app.settle().await;
    assert!(shown(&t.say("experiment show E-1").await).contains("35%"), "the reading was recorded");

    let pledged = t.say("pledge call five customers by fri").await;
    t.send(&t.submit(button(&pledged, "Done")["fallback"]["data"].clone())).await;
    t.app.settle().await;
    assert!(shown(&t.say("pledge list all").await).contains("No open pledges"), "kept by a submit");
    let pledged = t.say("pledge write the survey by fri").await;
    let extend = invoke_answer(&t, &t.invoke("nudge.action", button(&pledged, "Extend")["data"].clone())).await;
    let mut data = button(&extend["value"], "Extend")["data"].clone();
    data["due"] = json!("2026-12-10");
    invoke_answer(&t, &t.invoke("nudge.form", data)).await;
    t.app.settle().await;
    assert!(shown(&t.say("pledge list").await).contains("Thu 10 Dec"), "extended by an invoke");
    t.send(&t.submit(button(&pledged, "Release")["fallback"]["data"].clone())).await;
    t.app.settle().await;
    let form = t.posts().await.last().unwrap().1.clone();
    let mut data = button(&form, "Release")["fallback"]["data"].clone();
    data["reason"] = json!("the survey moved");
    t.send(&t.submit(data)).await;
    t.app.settle().await;
    assert!(shown(&t.say("pledge list all").await).contains("No open pledges"), "released by a submit");
}

#[tokio::test]
async fn postgres_every_button_works_as_a_submit_too() {
    every_button_works_as_a_submit_too(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_every_button_works_as_a_submit_too() {
    every_button_works_as_a_submit_too(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_signing_keys_are_fetched_once_and_an_unknown_kid_does_not_fetch_them_again_within_the_hour() {
    let t = TeamsTest::start(Backend::Sqlite).await;
    let activity = t.personal_message("pledge list");
    for _ in 0..3 {
        t.send(&activity_with_new_id(&t, &activity)).await;
    }
    for _ in 0..3 {
        let unknown = format!("Bearer {}", sign(&t.claims(), "made-up-kid", BOT_KEY));
        assert_eq!(t.post(&activity, Some(&unknown)).await.status(), 401);
    }
    let fetches = t.identity.received_requests().await.unwrap();
    let keys = fetches.iter().filter(|r| r.url.path() == "/v1/.well-known/keys").count();
    assert_eq!(keys, 1, "one fetch of the JWKS serves every activity, and made-up kids fetch nothing more");
}

fn activity_with_new_id(t: &TeamsTest, activity: &Value) -> Value {
    let mut activity = activity.clone();
    activity["id"] = json!(t.activity_id());
    activity
}

#[tokio::test]
async fn entra_tokens_are_accepted_only_when_configured_and_only_for_the_configured_tenant() {
    let t = TeamsTest::start_with(Backend::Sqlite, &[("NUDGE_TEAMS_ACCEPT_ENTRA_TOKENS", "true")]).await;
    let activity = t.personal_message("pledge list");
    let entra = |tid: &str, iss: &str| {
        let now = Utc::now().timestamp();
        let claims = json!({"iss": iss, "aud": APP_ID, "tid": tid, "exp": now + 3600, "nbf": now - 60});
        format!("Bearer {}", sign(&claims, "entra-key", BOT_KEY))
    };
    let v1 = format!("https://sts.windows.net/{TENANT}/");
    let v2 = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    assert_eq!(t.post(&activity, Some(&entra(TENANT, &v1))).await.status(), 200);
    assert_eq!(t.post(&activity_with_new_id(&t, &activity), Some(&entra(TENANT, &v2))).await.status(), 200);
    let other = "0b5c8a2e-0000-4000-8000-00000000beef";
    assert_eq!(t.post(&activity, Some(&entra(other, &v1))).await.status(), 401, "another tenant's tid");
    let foreign = format!("https://sts.windows.net/{other}/");
    assert_eq!(t.post(&activity, Some(&entra(other, &foreign))).await.status(), 401, "another tenant's issuer");
}

// ----- commands ----------------------------------------------------------------------------------------

async fn commands_in_a_channel_and_a_personal_chat(backend: Backend) {
    let t = TeamsTest::start(backend).await;
    let proposed = t
        .say("experiment propose Shorter signup | Fewer fields get more people through | activation rate 31% -&gt; 40%")
        .await;
    let text = shown(&proposed);
    assert!(text.contains("E-1"), "{text}");
    assert!(text.contains("Shorter signup"), "{text}");
    assert!(proposed["text"].as_str().unwrap().contains("E-1"), "a plain-text fallback: {proposed}");
    let posts = t.posts().await;
    let conversation = format!("{CHANNEL};messageid=1764000000001");
    let reply_path = format!("/amer/v3/conversations/{}/activities/1764000000001", conversation.replace(';', "%3B"));
    assert!(
        posts[0].0 == reply_path
            || posts[0].0 == format!("/amer/v3/conversations/{conversation}/activities/1764000000001"),
        "a reply in the thread: {}",
        posts[0].0
    );

    let listed = shown(&t.say("/experiment list").await);
    assert!(listed.contains("Shorter signup"), "a leading slash works too: {listed}");

    // Ada's personal chat: no mention, and the reply goes to that chat.
    t.say("pledge call five customers by fri").await;
    t.send(&t.personal_message("pledge list")).await;
    t.app.settle().await;
    let (path, mine) = t.posts().await.last().unwrap().clone();
    assert!(path.starts_with("/amer/v3/conversations/a:1personal-ada/activities/"), "{path}");
    assert!(shown(&mine).contains("call five customers"), "{mine}");
}

#[tokio::test]
async fn postgres_commands_in_a_channel_and_a_personal_chat() {
    commands_in_a_channel_and_a_personal_chat(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_commands_in_a_channel_and_a_personal_chat() {
    commands_in_a_channel_and_a_personal_chat(Backend::Sqlite).await;
}

#[tokio::test]
async fn help_and_usage_errors_show_the_teams_form_of_the_commands() {
    let t = TeamsTest::start(Backend::Sqlite).await;
    let help = shown(&t.say("help").await);
    assert!(help.contains("@nudge experiment propose"), "{help}");
    assert!(help.contains("@nudge pledge"), "{help}");
    assert!(!help.contains("/experiment") && !help.contains("/pledge"), "no slash commands in Teams: {help}");
    let usage = shown(&t.say("experiment start").await);
    assert!(usage.contains("@nudge experiment start"), "{usage}");
    assert!(!usage.contains("/experiment"), "{usage}");
    let unknown = shown(&t.say("frobnicate").await);
    assert!(unknown.contains("@nudge"), "{unknown}");
}

#[tokio::test]
async fn a_long_answer_is_cut_to_whole_parts_that_fit_in_one_teams_message() {
    let t = TeamsTest::start(Backend::Sqlite).await;
    let long = format!("experiment propose {}", "a very long title that goes on and on ".repeat(600));
    let reply = t.say(&long).await;
    // `posts` has checked the size (under 28 KB) and the schema; the answer still says what is wrong.
    let text = shown(&reply);
    assert!(text.contains("@nudge experiment propose"), "{text}");
    assert!(text.contains("more parts that do not fit in one Teams message"), "{text}");
    assert!(reply.to_string().len() > 16 * 1024, "the echo of what was typed is kept as far as it fits");
}

async fn a_redelivered_activity_has_no_second_effect(backend: Backend) {
    let t = TeamsTest::start(backend).await;
    let activity = t.channel_message("pledge call five customers by fri");
    t.send(&activity).await;
    t.send(&activity).await;
    t.app.settle().await;
    assert_eq!(t.posts().await.len(), 1, "answered once");
    let list = shown(&t.say("pledge list all").await);
    assert!(list.contains("P-1") && !list.contains("P-2"), "one pledge: {list}");

    // A click delivered again is answered, and counted once.
    let proposed = t.say("experiment propose Shorter signup | Fewer fields help | activation 31% -&gt; 40%").await;
    let vote = button(&proposed, "Vote");
    let click = t.invoke("nudge.action", vote["data"].clone());
    invoke_answer(&t, &click).await;
    let again = invoke_answer(&t, &click).await;
    assert_eq!(again["value"], "That was done already.", "{again}");
    t.app.settle().await;
    let shown_e1 = t.say("experiment show E-1").await;
    let facts = shown_e1.to_string();
    assert!(facts.contains(r#""title":"Votes","value":"1""#), "one vote: {facts}");
}

#[tokio::test]
async fn postgres_a_redelivered_activity_has_no_second_effect() {
    a_redelivered_activity_has_no_second_effect(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_redelivered_activity_has_no_second_effect() {
    a_redelivered_activity_has_no_second_effect(Backend::Sqlite).await;
}

// ----- buttons and forms -------------------------------------------------------------------------------

async fn buttons_work_as_invokes_and_as_submits(backend: Backend) {
    let t = TeamsTest::start(backend).await;
    let proposed = t.say("experiment propose Shorter signup | Fewer fields help | activation 31% -&gt; 40%").await;
    t.say("experiment propose Welcome email | A friendly email brings people back | returns 10% -&gt; 15%").await;

    // Vote as an invoke, answered in the response.
    let vote = button(&proposed, "Vote");
    assert_eq!(vote["fallback"]["type"], "Action.Submit");
    assert_eq!(vote["fallback"]["data"], vote["data"]);
    let answer = invoke_answer(&t, &t.invoke(vote["verb"].as_str().unwrap(), vote["data"].clone())).await;
    assert_eq!(answer["type"], "application/vnd.microsoft.activity.message", "{answer}");
    assert!(answer["value"].as_str().unwrap().contains("vote"), "{answer}");
    // Start as a submit (a client without Action.Execute): answered in the conversation.
    let start = button(&proposed, "Start");
    t.send(&t.submit(start["fallback"]["data"].clone())).await;
    t.app.settle().await;
    let (path, started) = t.posts().await.last().unwrap().clone();
    assert!(path.ends_with("/activities/1764000000999"), "the proposal card is replaced for everyone: {path}");
    assert!(shown(&started).contains("E-1 is running"), "{started}");
    // Start as an invoke, on the second proposal: the result replaces the card for the clicker and everyone.
    let second = t.posts().await[1].1.clone();
    let start = button(&second, "Start");
    let answer = invoke_answer(&t, &t.invoke("nudge.action", start["data"].clone())).await;
    assert_eq!(answer["type"], "application/vnd.microsoft.card.adaptive", "{answer}");
    assert!(shown(&answer["value"]).contains("E-2 is running"), "{answer}");
    t.app.settle().await;
    let (path, _) = t.posts().await.last().unwrap().clone();
    assert!(path.ends_with("/activities/1764000000999"), "{path}");
    let shown_e1 = shown(&t.say("experiment show E-1").await);
    assert!(shown_e1.contains("running"), "{shown_e1} after {:#?}", t.posts().await);

    // Update metric opens a form in place of the card; a wrong value is shown under its field.
    let running = t.say("experiment show E-1").await;
    let update = button(&running, "Update metric");
    let form = invoke_answer(&t, &t.invoke(update["verb"].as_str().unwrap(), update["data"].clone())).await;
    assert_eq!(form["type"], "application/vnd.microsoft.card.adaptive", "{form}");
    let save = button(&form["value"], "Save");
    let mut data = save["data"].clone();
    data["value"] = json!("lots");
    let refused = invoke_answer(&t, &t.invoke(save["verb"].as_str().unwrap(), data.clone())).await;
    assert_eq!(refused["type"], "application/vnd.microsoft.card.adaptive", "{refused}");
    assert!(shown(&refused["value"]).contains("lots"), "what was typed stays: {refused}");
    data["value"] = json!("34%");
    data["note"] = json!("after the welcome change");
    invoke_answer(&t, &t.invoke(save["verb"].as_str().unwrap(), data)).await;
    t.app.settle().await;
    let after = shown(&t.say("experiment show E-1").await);
    assert!(after.contains("34%"), "the reading was recorded: {after}");

    // Pledge buttons: Done as an invoke.
    let pledged = t.say("pledge call five customers by fri").await;
    let done = button(&pledged, "Done");
    invoke_answer(&t, &t.invoke(done["verb"].as_str().unwrap(), done["data"].clone())).await;
    t.app.settle().await;
    let mine = shown(&t.say("pledge list all").await);
    assert!(mine.contains("No open pledges"), "a kept pledge is not open: {mine}");

    // Extend as a submit: the form is posted as a card, and its own submit moves the date.
    let pledged = t.say("pledge write the survey by fri").await;
    let extend = button(&pledged, "Extend");
    t.send(&t.submit(extend["fallback"]["data"].clone())).await;
    t.app.settle().await;
    let form = t.posts().await.last().unwrap().1.clone();
    let save = button(&form, "Extend");
    let mut data = save["fallback"]["data"].clone();
    data["due"] = json!("2026-12-09");
    t.send(&t.submit(data)).await;
    t.app.settle().await;
    let moved = shown(&t.say("pledge list").await);
    assert!(moved.contains("Wed 9 Dec"), "the due date moved: {moved}");

    // Release as an invoke: the form replaces the card for the clicker, and its submit releases.
    let release = button(&pledged, "Release");
    let form = invoke_answer(&t, &t.invoke("nudge.action", release["data"].clone())).await;
    let confirm = button(&form["value"], "Release");
    let mut data = confirm["data"].clone();
    data["reason"] = json!("the survey moved to January");
    invoke_answer(&t, &t.invoke("nudge.form", data)).await;
    t.app.settle().await;
    let left = shown(&t.say("pledge list all").await);
    assert!(left.contains("No open pledges"), "the released pledge is not open: {left}");
}

#[tokio::test]
async fn postgres_buttons_work_as_invokes_and_as_submits() {
    buttons_work_as_invokes_and_as_submits(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_buttons_work_as_invokes_and_as_submits() {
    buttons_work_as_invokes_and_as_submits(Backend::Sqlite).await;
}

async fn an_experiment_without_text_opens_the_proposal_form_card(backend: Backend) {
    let t = TeamsTest::start(backend).await;
    let form = t.say("experiment").await;
    let text = shown(&form);
    for label in ["Title", "Hypothesis", "Metric", "Baseline", "Target"] {
        assert!(text.contains(label), "{label} in {text}");
    }
    let propose = button(&form, "Propose");
    let mut data = propose["data"].clone();
    for (field, value) in [("title", "Shorter signup"), ("hypothesis", "Fewer fields help"), ("metric", "activation")] {
        data[field] = json!(value);
    }
    data["baseline"] = json!("31%");
    data["target"] = json!("40% -> 50%");
    let refused = invoke_answer(&t, &t.invoke("nudge.form", data.clone())).await;
    assert!(shown(&refused["value"]).contains("write just the number"), "{refused}");
    data["target"] = json!("40%");
    let done = invoke_answer(&t, &t.invoke("nudge.form", data)).await;
    assert!(shown(&done).contains("E-1"), "{done}");
    t.app.settle().await;
    let updated: Vec<_> =
        t.posts().await.into_iter().filter(|(p, _)| p.ends_with("/activities/1764000000999")).collect();
    assert_eq!(updated.len(), 1, "the posted form is replaced for everyone by its result");
    t.say("experiment start E-1").await;
    let closing = t.say("experiment close E-1").await;
    assert!(shown(&closing).contains("What we learned"), "{closing}");
}

#[tokio::test]
async fn postgres_an_experiment_without_text_opens_the_proposal_form_card() {
    an_experiment_without_text_opens_the_proposal_form_card(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_an_experiment_without_text_opens_the_proposal_form_card() {
    an_experiment_without_text_opens_the_proposal_form_card(Backend::Sqlite).await;
}

// ----- install and proactive posts -----------------------------------------------------------------

async fn an_install_registers_the_channel_whose_check_in_starts_a_thread_and_reminders_go_to_a_personal_chat(
    backend: Backend,
) {
    let t = TeamsTest::start(backend).await;
    t.install_in_team().await;
    let ws = t.workspace().await;
    {
        let mut tx = t.app.store.read().await.unwrap();
        let channel = tx.channel(ws, CHANNEL).await.unwrap().expect("the selected channel is registered");
        assert_eq!(channel.schedule.expression(), "30 9 * * 1", "with the default schedule");
    }
    t.say("experiment propose Shorter signup | Fewer fields help | activation 31% -&gt; 40%").await;
    t.say("experiment start E-1").await;
    t.say("pledge call five customers by wed").await;
    let scheduler = Scheduler::new(t.app.store.clone(), t.app.clock.clone(), SchedulerSettings::default());
    // Wednesday morning: Ada's pledge is due, and she hears it privately.
    t.app.clock.set(Utc.with_ymd_and_hms(2026, 11, 25, 9, 5, 0).unwrap());
    scheduler.tick().await.unwrap();
    let created = t.calls_to(|p| p == "/amer/v3/conversations", 1).await;
    let personal = &created[0].1;
    assert_eq!(personal["isGroup"], false, "{personal}");
    assert_eq!(personal["members"][0]["id"], "29:ada");
    assert_eq!(personal["bot"]["id"], BOT);
    assert_eq!(personal["tenantId"], TENANT);
    let reminders = t.calls_to(|p| p == "/amer/v3/conversations/a:1personal-ada/activities", 1).await;
    assert!(shown(&reminders[0].1).contains("call five customers"), "{:?}", reminders[0]);
    // Next Monday 09:30: the check-in starts a new thread in #growth.
    t.app.clock.set(Utc.with_ymd_and_hms(2026, 11, 30, 9, 31, 0).unwrap());
    scheduler.tick().await.unwrap();
    let check_in = t.check_in().await;
    assert_eq!(check_in["channelData"]["channel"]["id"], CHANNEL);
    let card = &check_in["activity"];
    assert!(shown(card).contains("Shorter signup"), "{card}");
    button(card, "Update metric");
}

#[tokio::test]
async fn postgres_an_install_registers_the_channel_whose_check_in_starts_a_thread_and_reminders_go_to_a_personal_chat()
{
    an_install_registers_the_channel_whose_check_in_starts_a_thread_and_reminders_go_to_a_personal_chat(
        Backend::Postgres,
    )
    .await;
}

#[tokio::test]
async fn sqlite_an_install_registers_the_channel_whose_check_in_starts_a_thread_and_reminders_go_to_a_personal_chat() {
    an_install_registers_the_channel_whose_check_in_starts_a_thread_and_reminders_go_to_a_personal_chat(
        Backend::Sqlite,
    )
    .await;
}

async fn an_uninstall_stops_the_channel_posts_and_a_personal_install_keeps_the_members_chat(backend: Backend) {
    let t = TeamsTest::start(backend).await;
    t.install_in_team().await;
    let ws = t.workspace().await;
    let mut removed = t.channel_message("");
    removed["type"] = json!("conversationUpdate");
    removed["conversation"]["id"] = json!(CHANNEL);
    removed["membersRemoved"] = json!([{"id": BOT}]);
    removed["channelData"]["eventType"] = json!("teamMemberRemoved");
    for key in ["text", "entities"] {
        removed.as_object_mut().unwrap().remove(key);
    }
    t.send(&removed).await;
    {
        let mut tx = t.app.store.begin().await.unwrap();
        let channel = tx.channel(ws, CHANNEL).await.unwrap().unwrap().id;
        let message = nudge::message::Message::channel("Weekly check-in");
        tx.enqueue_message(ws, channel, Recipient::Channel(channel), "after-uninstall", &message, t.app.clock.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let dead = {
        let mut found = None;
        for _ in 0..250 {
            let mut tx = t.app.store.read().await.unwrap();
            let report = tx.outbox_report(10).await.unwrap();
            found = report.dead_posts.into_iter().find(|p| p.address == CHANNEL);
            if found.is_some() {
                break;
            }
            drop(tx);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        found.expect("the post is undeliverable")
    };
    assert!(dead.last_error.contains("removed"), "{}", dead.last_error);
    assert!(t.posts().await.iter().all(|(p, _)| p != "/amer/v3/conversations"), "nothing was posted there");

    // A personal install: the member's chat is where their reminders go, without creating another.
    let install = json!({
        "type": "installationUpdate",
        "action": "add",
        "id": "f:personal-install-1",
        "channelId": "msteams",
        "serviceUrl": t.service_url(),
        "from": {"id": "29:bea", "name": "Bea"},
        "recipient": {"id": BOT, "name": "nudge"},
        "conversation": {"id": "a:1personal-bea", "conversationType": "personal", "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}},
    });
    t.send(&install).await;
    let mut tx = t.app.store.read().await.unwrap();
    let kept = tx.platform_record(ws, "teams", records::PERSONAL, "29:bea").await.unwrap();
    assert_eq!(kept.as_deref(), Some("a:1personal-bea"));
}

#[tokio::test]
async fn postgres_an_uninstall_stops_the_channel_posts_and_a_personal_install_keeps_the_members_chat() {
    an_uninstall_stops_the_channel_posts_and_a_personal_install_keeps_the_members_chat(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_an_uninstall_stops_the_channel_posts_and_a_personal_install_keeps_the_members_chat() {
    an_uninstall_stops_the_channel_posts_and_a_personal_install_keeps_the_members_chat(Backend::Sqlite).await;
}

/// A member who blocked nudge and then writes to it again has it back: posts resume.
async fn a_block_is_lifted_when_someone_writes_to_nudge_there_again(backend: Backend) {
    let t = TeamsTest::start(backend).await;
    t.install_in_team().await;
    let blocked = json!({"error": {"code": "BotNotInConversationRoster", "message": "The bot is not part of the conversation roster."}});
    Mock::given(method("POST"))
        .and(path("/amer/v3/conversations"))
        .respond_with(ResponseTemplate::new(403).set_body_json(blocked))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&t.connector)
        .await;
    let ws = t.workspace().await;
    let t = &t;
    let owe = |key: &'static str| async move {
        let mut tx = t.app.store.begin().await.unwrap();
        let channel = tx.channel(ws, CHANNEL).await.unwrap().unwrap().id;
        let message = nudge::message::Message::channel("Weekly check-in: Shorter signup");
        tx.enqueue_message(ws, channel, Recipient::Channel(channel), key, &message, t.app.clock.now()).await.unwrap();
        tx.commit().await.unwrap();
    };
    owe("first").await;
    let mut dead = Vec::new();
    for _ in 0..250 {
        let mut tx = t.app.store.read().await.unwrap();
        dead = tx.outbox_report(10).await.unwrap().dead_posts;
        if !dead.is_empty() {
            break;
        }
        drop(tx);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dead.first().is_some_and(|d| d.last_error.contains("BotNotInConversationRoster")), "{dead:?}");
    t.say("help").await;
    t.app.clock.advance(chrono::Duration::seconds(5));
    owe("second").await;
    let second = {
        let mut tx = t.app.store.read().await.unwrap();
        let rows = tx.outbox_messages(ws).await.unwrap();
        rows.into_iter().find(|m| m.idempotency_key == "second").unwrap().id
    };
    let mut status = String::new();
    for _ in 0..250 {
        let mut tx = t.app.store.read().await.unwrap();
        status = tx.outbound_status(second).await.unwrap().unwrap();
        if status != "pending" && status != "sending" {
            break;
        }
        drop(tx);
        t.app.clock.advance(chrono::Duration::seconds(2));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "sent", "posts resume once someone writes to nudge there");
    let threads = t.posts().await.into_iter().filter(|(p, b)| p == "/amer/v3/conversations" && b["isGroup"] == true);
    assert_eq!(threads.count(), 2, "the refused post and the one after the block");
}

#[tokio::test]
async fn postgres_a_block_is_lifted_when_someone_writes_to_nudge_there_again() {
    a_block_is_lifted_when_someone_writes_to_nudge_there_again(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_block_is_lifted_when_someone_writes_to_nudge_there_again() {
    a_block_is_lifted_when_someone_writes_to_nudge_there_again(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_app_package_is_a_flat_zip_with_the_manifest_and_both_icons() {
    let t = TeamsTest::start(Backend::Sqlite).await;
    let response = t.app.get("/teams/app.zip").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.map(|n| n.to_string()).unwrap()).collect();
    names.sort();
    assert_eq!(names, ["color.png", "manifest.json", "outline.png"]);
    let manifest: Value = serde_json::from_reader(zip.by_name("manifest.json").unwrap()).unwrap();
    assert_eq!(manifest["manifestVersion"], "1.22");
    assert_eq!(manifest["id"], APP_ID);
    assert_eq!(manifest["bots"][0]["botId"], APP_ID);
    assert_eq!(manifest["bots"][0]["scopes"], json!(["personal", "team", "groupChat"]));
    let commands: Vec<&str> = manifest["bots"][0]["commandLists"][0]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["experiment", "pledge", "nudge"]);
    assert_eq!(manifest["validDomains"], json!(["nudge.example.com"]));
    for (name, size) in [("color.png", 192u32), ("outline.png", 32)] {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(name).unwrap(), &mut bytes).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name} is a PNG");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((width, height), (size, size), "{name}");
    }
}

// ----- the outbox's deliveries ---------------------------------------------------------------------

/// A Teams delivery on its own store and clock, with a conversation reference for #growth as an
/// install leaves it, driven by a sender of the test's own.
struct DeliveryTest {
    _db: TestDb,
    store: Store,
    connector: MockServer,
    identity: MockServer,
    clock: Arc<ManualClock>,
    sender: Sender,
    ws: WorkspaceId,
    channel: nudge::store::ChannelId,
}

impl DeliveryTest {
    async fn start(backend: Backend) -> DeliveryTest {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let (identity, connector) = (MockServer::start().await, MockServer::start().await);
        stand_in_identity(&identity).await;
        let env: HashMap<String, String> = [
            ("NUDGE_CONFIG", empty_config_file()),
            ("NUDGE_TEAMS_APP_ID", APP_ID.to_string()),
            ("NUDGE_TEAMS_APP_PASSWORD", PASSWORD.to_string()),
            ("NUDGE_TEAMS_TENANT_ID", TENANT.to_string()),
            ("NUDGE_TEAMS_TOKEN_URL", format!("{}/{{tenant}}/oauth2/v2.0/token", identity.uri())),
            ("NUDGE_TEAMS_SERVICE_URL_HOSTS", "127.0.0.1".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let config = Config::load(&env).unwrap();
        let settings = config.platforms.iter().find_map(|p| p.as_any().downcast_ref::<TeamsConfig>()).unwrap().clone();
        let clock = ManualClock::new(monday_morning());
        let teams = Arc::new(Teams::new(settings, clock.clone()));
        let delivery = Arc::new(TeamsDelivery::new(teams, store.clone(), clock.clone()));
        let deliveries = Deliveries::from([("teams", delivery as Arc<dyn Delivery>)]);
        let quick = SenderSettings { max_attempts: 8, give_up_after: Duration::ZERO, ..SenderSettings::default() };
        let sender = Sender::new(store.clone(), deliveries, clock.clone(), quick);
        let mut tx = store.begin().await.unwrap();
        let ws = tx.ensure_workspace("teams", TENANT, TENANT, monday_morning()).await.unwrap();
        let channel = crate::helpers::channel_in(&mut tx, ws, CHANNEL).await;
        let record = json!({"place": "channel", "id": CHANNEL, "serviceUrl": format!("{}/amer/", connector.uri())});
        tx.save_platform_record(ws, "teams", records::CONVERSATION, CHANNEL, &record.to_string(), monday_morning())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        DeliveryTest { _db: db, store, connector, identity, clock, sender, ws, channel }
    }

    async fn owe(&self, key: &str, text: &str) -> nudge::store::OutboundId {
        let mut tx = self.store.begin().await.unwrap();
        let message = nudge::message::Message::channel(text);
        tx.enqueue_message(self.ws, self.channel, Recipient::Channel(self.channel), key, &message, self.clock.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = self.store.read().await.unwrap();
        tx.outbox_messages(self.ws).await.unwrap().into_iter().find(|m| m.idempotency_key == key).unwrap().id
    }

    async fn status(&self, id: nudge::store::OutboundId) -> String {
        let mut tx = self.store.read().await.unwrap();
        tx.outbound_status(id).await.unwrap().unwrap()
    }

    /// Why a dead post is dead, as `nudge outbox` shows an operator.
    async fn reason(&self, id: nudge::store::OutboundId) -> String {
        let mut tx = self.store.read().await.unwrap();
        let report = tx.outbox_report(100).await.unwrap();
        report.dead_posts.into_iter().find(|p| p.id == id).map(|p| p.last_error).unwrap_or_default()
    }

    async fn new_threads(&self) -> usize {
        let requests = self.connector.received_requests().await.unwrap();
        requests.iter().filter(|r| r.url.path() == "/amer/v3/conversations").count()
    }

    fn answers(&self, template: ResponseTemplate) -> Mock {
        Mock::given(method("POST")).and(path("/amer/v3/conversations")).respond_with(template)
    }
}

async fn transient_answers_are_retried_and_a_rate_limit_waits_its_retry_after(backend: Backend) {
    let t = DeliveryTest::start(backend).await;
    let created = json!({"id": format!("{CHANNEL};messageid=1"), "activityId": "1764000000700"});
    for status in [429u16, 412, 502, 503, 504] {
        let template = if status == 429 {
            ResponseTemplate::new(429).insert_header("Retry-After", "7")
        } else {
            ResponseTemplate::new(status)
        };
        t.answers(template).up_to_n_times(1).mount(&t.connector).await;
    }
    t.answers(ResponseTemplate::new(201).set_body_json(created)).mount(&t.connector).await;
    let id = t.owe("check-in:1", "Weekly check-in").await;
    let mut rounds = 0;
    while t.status(id).await != "sent" {
        rounds += 1;
        assert!(rounds <= 6, "delivered after the transient answers");
        let round = t.sender.run_once().await.unwrap();
        assert_eq!(round.dead, 0, "{round:?}: {}", t.reason(id).await);
        t.clock.advance(chrono::Duration::minutes(20));
    }
    assert_eq!(t.new_threads().await, 6, "five transient answers, then one post");
    let requests = t.identity.received_requests().await.unwrap();
    let tokens = requests.iter().filter(|r| r.url.path().ends_with("/oauth2/v2.0/token")).count();
    assert_eq!(tokens, 2, "the token is cached while it lives, and refreshed once the 20-minute steps pass its hour");
}

#[tokio::test]
async fn postgres_transient_answers_are_retried_and_a_rate_limit_waits_its_retry_after() {
    transient_answers_are_retried_and_a_rate_limit_waits_its_retry_after(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_transient_answers_are_retried_and_a_rate_limit_waits_its_retry_after() {
    transient_answers_are_retried_and_a_rate_limit_waits_its_retry_after(Backend::Sqlite).await;
}

async fn a_conversation_that_blocked_nudge_gets_no_more_posts(backend: Backend) {
    let t = DeliveryTest::start(backend).await;
    let blocked = json!({"error": {"code": "ConversationBlockedByUser", "message": "User blocked the conversation with the bot."}});
    t.answers(ResponseTemplate::new(403).set_body_json(blocked)).mount(&t.connector).await;
    let first = t.owe("check-in:1", "Weekly check-in").await;
    let round = t.sender.run_once().await.unwrap();
    assert_eq!(round.dead, 1, "undeliverable at once, not retried: {round:?}");
    assert_eq!(t.status(first).await, "dead");
    let reason = t.reason(first).await;
    assert!(reason.starts_with("undeliverable") && reason.contains("ConversationBlockedByUser"), "{reason}");
    t.clock.advance(chrono::Duration::minutes(1));
    let second = t.owe("check-in:2", "Next week's check-in").await;
    t.sender.run_once().await.unwrap();
    assert_eq!(t.status(second).await, "dead");
    assert_eq!(t.new_threads().await, 1, "the blocked conversation is not called again");
}

#[tokio::test]
async fn postgres_a_conversation_that_blocked_nudge_gets_no_more_posts() {
    a_conversation_that_blocked_nudge_gets_no_more_posts(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_conversation_that_blocked_nudge_gets_no_more_posts() {
    a_conversation_that_blocked_nudge_gets_no_more_posts(Backend::Sqlite).await;
}

async fn a_post_whose_answer_was_lost_is_not_posted_again(backend: Backend) {
    let t = DeliveryTest::start(backend).await;
    // The connector takes the post but answers after nudge has stopped waiting.
    let slow = ResponseTemplate::new(201)
        .set_body_json(json!({"id": "x", "activityId": "1"}))
        .set_delay(nudge::platforms::teams::api::REQUEST_TIMEOUT + Duration::from_secs(1));
    t.answers(slow).mount(&t.connector).await;
    let id = t.owe("check-in:1", "Weekly check-in").await;
    t.sender.run_once().await.unwrap();
    t.clock.advance(chrono::Duration::minutes(20));
    t.sender.run_once().await.unwrap();
    assert_eq!(t.status(id).await, "sent", "counted as posted");
    assert_eq!(t.new_threads().await, 1, "and never posted a second time");
}

#[tokio::test]
async fn postgres_a_post_whose_answer_was_lost_is_not_posted_again() {
    a_post_whose_answer_was_lost_is_not_posted_again(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_post_whose_answer_was_lost_is_not_posted_again() {
    a_post_whose_answer_was_lost_is_not_posted_again(Backend::Sqlite).await;
}

async fn posts_at_once_share_one_token(backend: Backend) {
    let t = DeliveryTest::start(backend).await;
    let created = json!({"id": format!("{CHANNEL};messageid=1"), "activityId": "1764000000700"});
    t.answers(ResponseTemplate::new(201).set_body_json(created)).mount(&t.connector).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let channel = format!("19:team-channel-{n}@thread.tacv2");
        let mut tx = t.store.begin().await.unwrap();
        let id = crate::helpers::channel_in(&mut tx, t.ws, &channel).await;
        let record = json!({"place": "channel", "id": channel, "serviceUrl": format!("{}/amer/", t.connector.uri())});
        tx.save_platform_record(t.ws, "teams", records::CONVERSATION, &channel, &record.to_string(), t.clock.now())
            .await
            .unwrap();
        let message = nudge::message::Message::channel("Weekly check-in");
        tx.enqueue_message(t.ws, id, Recipient::Channel(id), &format!("check-in:{n}"), &message, t.clock.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        ids.push(channel);
    }
    let round = t.sender.run_once().await.unwrap();
    assert_eq!(round.delivered, 4, "{round:?}");
    let requests = t.identity.received_requests().await.unwrap();
    let tokens = requests.iter().filter(|r| r.url.path().ends_with("/oauth2/v2.0/token")).count();
    assert_eq!(tokens, 1, "four deliveries side by side fetched the token once");
    let form = std::str::from_utf8(&requests.iter().find(|r| r.url.path().ends_with("/token")).unwrap().body)
        .unwrap()
        .to_string();
    assert!(form.contains("grant_type=client_credentials"), "{form}");
    assert!(form.contains("scope=https%3A%2F%2Fapi.botframework.com%2F.default"), "{form}");
}

#[tokio::test]
async fn postgres_posts_at_once_share_one_token() {
    posts_at_once_share_one_token(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_posts_at_once_share_one_token() {
    posts_at_once_share_one_token(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_bot_token_goes_only_to_connector_hosts() {
    let t = DeliveryTest::start(Backend::Sqlite).await;
    let record = json!({"place": "channel", "id": CHANNEL, "serviceUrl": "https://smba.evil.example.com/amer/"});
    let mut tx = t.store.begin().await.unwrap();
    tx.save_platform_record(t.ws, "teams", records::CONVERSATION, CHANNEL, &record.to_string(), t.clock.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let id = t.owe("check-in:1", "Weekly check-in").await;
    let round = t.sender.run_once().await.unwrap();
    assert_eq!(round.dead, 1, "{round:?}");
    assert_eq!(t.status(id).await, "dead");
    let requests = t.identity.received_requests().await.unwrap();
    assert!(requests.iter().all(|r| !r.url.path().ends_with("/token")), "no token is even fetched for it");
}

/// A check-in's "View dashboard" link is an `Action.OpenUrl` on the card, valid Adaptive Card 1.5.
#[test]
fn a_dashboard_link_is_an_open_url_action() {
    let message = nudge::message::Message::channel("☀️ Weekly check-in for General")
        .with_link("View dashboard", "https://nudge.example.com/dashboard/1.2.3.abc");
    let activity = nudge::platforms::teams::render::activity(&message);
    assert_valid_activity(&activity);
    let action = &activity["attachments"][0]["content"]["actions"][0];
    assert_eq!(action["type"], "Action.OpenUrl");
    assert_eq!(action["url"], "https://nudge.example.com/dashboard/1.2.3.abc");
}
