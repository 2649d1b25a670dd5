//! Installing nudge in many workspaces through OAuth v2, against a stand-in for oauth.v2.access.

use base64::Engine;
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::Backend;
use crate::slack::SlackTest;

const CLIENT_SECRET: &str = "3c5b9f0e2d1a4b6c8e7f9a0b1c2d3e4f";

async fn multi_workspace(backend: Backend) -> SlackTest {
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let t = SlackTest::start_with(
        backend,
        &[
            ("NUDGE_SLACK_CLIENT_ID", "1234567890.0987654321"),
            ("NUDGE_SLACK_CLIENT_SECRET", CLIENT_SECRET),
            ("NUDGE_ENCRYPTION_KEY", &key),
        ],
    )
    .await;
    // oauth.v2.access as Slack documents its answer.
    Mock::given(method("POST"))
        .and(path("/api/oauth.v2.access"))
        .and(body_string_contains("code=good-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true,
            "access_token": "xoxb-17653672481-19874698323-installedToken",
            "token_type": "bot",
            "scope": "commands,chat:write,app_mentions:read,users:read,im:write",
            "bot_user_id": "U0KRQLJ9H",
            "app_id": "A0KRD7HC3",
            "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
            "enterprise": null,
            "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxp-1234", "token_type": "user"},
            "is_enterprise_install": false
        })))
        .mount(&t.slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/oauth.v2.access"))
        .and(body_string_contains("code=bad-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "invalid_code"})))
        .mount(&t.slack)
        .await;
    t
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// An install as the browser that started it: the state Slack hands back, and the cookie nudge set.
struct Install {
    state: String,
    cookie: String,
}

/// Starts an install and returns the state Slack would hand back with the browser's cookie.
async fn start_install(t: &SlackTest) -> Install {
    let response = no_redirects().get(t.app.url("/slack/install")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax") && set_cookie.contains("Secure"));
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.host_str(), Some("slack.com"));
    assert_eq!(location.path(), "/oauth/v2/authorize");
    let query: std::collections::HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "1234567890.0987654321");
    assert_eq!(query["redirect_uri"], "https://nudge.example.com/slack/oauth/callback");
    assert!(query["scope"].contains("commands") && query["scope"].contains("chat:write"));
    Install { state: query["state"].clone(), cookie }
}

/// Slack sends the installer's browser back to the callback (with its cookie).
async fn come_back(t: &SlackTest, install: &Install, code: &str) -> reqwest::Response {
    t.app
        .client
        .get(t.app.url(&format!("/slack/oauth/callback?code={code}&state={}", install.state)))
        .header("cookie", &install.cookie)
        .send()
        .await
        .unwrap()
}

async fn a_team_installs_nudge_and_can_then_use_it(backend: Backend) {
    let t = multi_workspace(backend).await;
    // Before the install, the team is told where to install.
    let answer = t.slash_as("/experiment", "list", "T9TK3CUKW", ("U1", "sam")).await;
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(answer["text"].as_str().unwrap().contains("https://nudge.example.com/slack/install"), "{answer}");

    let install = start_install(&t).await;
    let callback = come_back(&t, &install, "good-code").await;
    assert_eq!(callback.status(), 200);
    assert!(callback.text().await.unwrap().contains("nudge is installed in Slack Softball Team"));
    let exchanged = t.calls_to("/api/oauth.v2.access", 1).await;
    let form = String::from_utf8_lossy(&exchanged[0].body).to_string();
    assert!(
        form.contains("client_id=1234567890.0987654321") && form.contains(&format!("client_secret={CLIENT_SECRET}"))
    );

    // The token is stored sealed, never in clear.
    let mut tx = t.app.store.begin().await.unwrap();
    let installation = tx.installation("slack", "T9TK3CUKW").await.unwrap().expect("installed");
    assert!(!installation.bot_token_sealed.contains("installedToken"));
    drop(tx);

    let answer = t.slash_as("/experiment", "list", "T9TK3CUKW", ("U1", "sam")).await;
    assert!(answer["text"].as_str().unwrap().contains("No proposed or running experiments"), "{answer}");
    // Posts for that team carry its own token.
    t.slash_as("/experiment", "", "T9TK3CUKW", ("U1", "sam")).await;
    let opened = t.calls_to("/api/views.open", 1).await;
    assert_eq!(opened[0].headers["authorization"], "Bearer xoxb-17653672481-19874698323-installedToken");

    // The state was single use.
    let again = come_back(&t, &install, "good-code").await;
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn postgres_a_team_installs_nudge_and_can_then_use_it() {
    a_team_installs_nudge_and_can_then_use_it(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_team_installs_nudge_and_can_then_use_it() {
    a_team_installs_nudge_and_can_then_use_it(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_callback_with_a_forged_or_missing_state_installs_nothing() {
    let t = multi_workspace(Backend::Sqlite).await;
    for query in ["code=good-code&state=forged", "code=good-code"] {
        let response = t.app.get(&format!("/slack/oauth/callback?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.text().await.unwrap().contains("expired"));
    }
    assert_eq!(t.calls_now("/api/oauth.v2.access").await, 0, "no code is exchanged without a valid state");
    let mut tx = t.app.store.begin().await.unwrap();
    assert!(tx.installation("slack", "T9TK3CUKW").await.unwrap().is_none());
}

/// `GET /slack/install` used to write a row per request (39,704 in 20 s from one client) and
/// expired states were never deleted. Now a link writes nothing; the state is signed and bound to
/// the browser by its cookie, so a state taken to another browser, or altered, installs nothing.
#[tokio::test]
async fn install_links_write_nothing_and_only_the_browser_that_started_one_can_finish_it() {
    let t = multi_workspace(Backend::Sqlite).await;
    let mut installs = Vec::new();
    for _ in 0..50 {
        installs.push(start_install(&t).await);
    }
    let mut tx = t.app.store.read().await.unwrap();
    assert_eq!(tx.oauth_state_count().await.unwrap(), 0, "fifty install links, no row");
    drop(tx);

    let stranger = Install { state: installs[0].state.clone(), cookie: installs[1].cookie.clone() };
    assert_eq!(come_back(&t, &stranger, "good-code").await.status(), 400, "another browser's cookie");
    let no_cookie = t.app.get(&format!("/slack/oauth/callback?code=good-code&state={}", installs[0].state)).await;
    assert_eq!(no_cookie.status(), 400, "no cookie");
    let (nonce, rest) = installs[0].state.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let stretched = Install {
        state: format!("{nonce}.{}.{signature}", chrono::Utc::now().timestamp() + 86_400),
        cookie: installs[0].cookie.clone(),
    };
    assert_eq!(come_back(&t, &stretched, "good-code").await.status(), 400, "an altered expiry");
    assert_eq!(t.calls_now("/api/oauth.v2.access").await, 0, "no code exchanged for any of them");
    assert_eq!(come_back(&t, &installs[0], "good-code").await.status(), 200, "the browser that started it");
}

#[tokio::test]
async fn an_expired_state_or_a_refused_code_installs_nothing() {
    let t = multi_workspace(Backend::Sqlite).await;
    let install = start_install(&t).await;
    t.app.clock.advance(chrono::Duration::minutes(11));
    let response = come_back(&t, &install, "good-code").await;
    assert_eq!(response.status(), 400);

    let install = start_install(&t).await;
    let response = come_back(&t, &install, "bad-code").await;
    assert_eq!(response.status(), 502);
    assert!(response.text().await.unwrap().contains("invalid_code"));
    let cancelled = t.app.get("/slack/oauth/callback?error=access_denied&state=x").await;
    assert!(cancelled.text().await.unwrap().contains("Install cancelled"));
}

#[tokio::test]
async fn one_workspace_mode_has_nothing_to_install() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let response = t.app.get("/slack/install").await;
    assert_eq!(response.status(), 404);
    let body: String = response.text().await.unwrap();
    assert!(body.contains("NUDGE_SLACK_CLIENT_ID"), "{body}");
}
