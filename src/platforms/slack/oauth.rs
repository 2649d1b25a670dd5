//! Installing nudge in many workspaces through OAuth v2: `/slack/install` sends the installer to
//! Slack with a signed, expiring state bound to their browser by a cookie (CSRF; nothing is written
//! for a link, so a flood of them costs nothing), and `/slack/oauth/callback` exchanges the code for the
//! workspace's bot token, which is stored sealed.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Duration;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{PLATFORM, Slack, SlackApp, SlackInstall};

/// Where Slack asks the installer for consent.
pub const AUTHORIZE_URL: &str = "https://slack.com/oauth/v2/authorize";

/// The bot scopes nudge asks for: slash commands, posting, being mentioned, reading a member's
/// name and time zone, opening a direct conversation for private reminders, and reading back its
/// own recent posts (public, private and direct) to tell whether a post interrupted by a crash
/// went out.
pub const BOT_SCOPES: &[&str] = &[
    "commands",
    "chat:write",
    "app_mentions:read",
    "users:read",
    "im:write",
    "channels:history",
    "groups:history",
    "im:history",
];

/// How long an install link's state stays valid.
const STATE_LIFETIME_MINUTES: i64 = 10;

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>nudge · {title}</title></head>\
         <body style=\"font-family: sans-serif; max-width: 40em; margin: 4em auto\"><h1>{title}</h1><p>{message}</p></body></html>"
    );
    (status, Html(body)).into_response()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn redirect_uri(slack: &Slack) -> String {
    slack.public_url_for("/slack/oauth/callback")
}

pub async fn install(State(app): State<Arc<SlackApp>>) -> Response {
    let slack = &app.slack;
    let SlackInstall::OAuth { client_id, .. } = &slack.install else {
        return page(
            StatusCode::NOT_FOUND,
            "Nothing to install",
            "This nudge serves one Slack workspace with the bot token it was given (NUDGE_SLACK_BOT_TOKEN). \
             To install it in many workspaces, configure NUDGE_SLACK_CLIENT_ID and NUDGE_SLACK_CLIENT_SECRET.",
        );
    };
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return page(StatusCode::INTERNAL_SERVER_ERROR, "Try again", "nudge could not make a secure install link.");
    }
    // Nothing is stored for an install link: the state is signed and expires, and its nonce is
    // also in a cookie of this browser, so only the browser that started the install can finish it.
    let nonce = hex::encode(bytes);
    let expires = app.clock.now() + Duration::minutes(STATE_LIFETIME_MINUTES);
    let state =
        InstallState { nonce: nonce.clone(), expires_unix: expires.timestamp() }.signed(client_secret_of(slack));
    let mut url = url::Url::parse(AUTHORIZE_URL).expect("a valid constant URL");
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("scope", &BOT_SCOPES.join(","))
        .append_pair("state", &state)
        .append_pair("redirect_uri", &redirect_uri(slack));
    let secure = if slack.public_url_for("").starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!(
        "{INSTALL_COOKIE}={nonce}; Max-Age={}; Path=/slack/oauth; HttpOnly; SameSite=Lax{secure}",
        STATE_LIFETIME_MINUTES * 60
    );
    let mut response = Redirect::to(url.as_str()).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

/// The cookie that binds an install to the browser that started it.
const INSTALL_COOKIE: &str = "nudge_slack_install";

/// An install link's state: `{nonce}.{expires}.{signature}`, signed with the app's client secret
/// (which only nudge and Slack hold), so a state cannot be made up or stretched.
struct InstallState {
    nonce: String,
    expires_unix: i64,
}

impl InstallState {
    fn mac(secret: &SecretString, nonce: &str, expires_unix: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key");
        mac.update(format!("slack-install:{nonce}:{expires_unix}").as_bytes());
        mac
    }

    fn signed(&self, secret: &SecretString) -> String {
        let mac = Self::mac(secret, &self.nonce, self.expires_unix);
        format!("{}.{}.{}", self.nonce, self.expires_unix, hex::encode(mac.finalize().into_bytes()))
    }

    /// The state's nonce and expiry when its signature is ours (compared in constant time).
    fn verify(state: &str, secret: &SecretString) -> Option<InstallState> {
        let mut parts = state.splitn(3, '.');
        let (nonce, expires, signature) = (parts.next()?, parts.next()?, parts.next()?);
        let expires_unix: i64 = expires.parse().ok()?;
        let signature = hex::decode(signature).ok()?;
        Self::mac(secret, nonce, expires_unix).verify_slice(&signature).ok()?;
        Some(InstallState { nonce: nonce.to_string(), expires_unix })
    }
}

fn client_secret_of(slack: &Slack) -> &SecretString {
    match &slack.install {
        SlackInstall::OAuth { client_secret, .. } => client_secret,
        // Only called on the OAuth paths, which have returned already otherwise.
        SlackInstall::Single { bot_token } => bot_token,
    }
}

/// The install nonce this browser holds, from its `Cookie` header.
fn install_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == INSTALL_COOKIE).then(|| value.to_string())
    })
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    State(app): State<Arc<SlackApp>>,
    headers: HeaderMap,
    Query(params): Query<Callback>,
) -> Response {
    let slack = &app.slack;
    let SlackInstall::OAuth { client_id, client_secret } = &slack.install else {
        return page(StatusCode::NOT_FOUND, "Nothing to install", "This nudge serves one Slack workspace.");
    };
    let start_again = format!("<a href=\"{}\">Start the install again</a>.", escape_html(&slack.install_url()));
    if let Some(error) = &params.error {
        return page(
            StatusCode::OK,
            "Install cancelled",
            &format!("Slack said: {}. {start_again}", escape_html(error)),
        );
    }
    let now = app.clock.now();
    let verified = params
        .state
        .as_deref()
        .and_then(|state| InstallState::verify(state, client_secret))
        .filter(|state| state.expires_unix > now.timestamp())
        .filter(|state| {
            install_cookie(&headers).is_some_and(|cookie| cookie.as_bytes().ct_eq(state.nonce.as_bytes()).into())
        });
    // Single use: the nonce of a state that passed is recorded until it expires (expired ones are
    // purged as new ones come), so the same link cannot install twice.
    let state_ok = match verified {
        Some(state) => async {
            let mut tx = app.store.begin().await?;
            let expires = chrono::DateTime::from_timestamp(state.expires_unix, 0).unwrap_or(now);
            let first = tx.use_oauth_state(PLATFORM, &state.nonce, expires, now).await?;
            tx.commit().await?;
            Ok::<bool, crate::store::StoreError>(first)
        }
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "cannot record an OAuth state");
            false
        }),
        None => false,
    };
    let Some(code) = params.code.filter(|_| state_ok) else {
        tracing::info!("Slack OAuth callback with a missing, expired or reused state");
        return page(
            StatusCode::BAD_REQUEST,
            "This install link has expired",
            &format!("It was already used, is older than ten minutes, or did not start here. {start_again}"),
        );
    };
    let access = match slack.client.oauth_access(client_id, client_secret, &code, Some(&redirect_uri(slack))).await {
        Ok(access) => access,
        Err(error) => {
            tracing::warn!(%error, "Slack refused the OAuth code");
            return page(
                StatusCode::BAD_GATEWAY,
                "Slack refused the install",
                &format!("{}. {start_again}", escape_html(&error.to_string())),
            );
        }
    };
    let saved = async {
        let mut tx = app.store.begin().await?;
        let ws = tx.ensure_workspace(PLATFORM, &access.team_id, &access.team_name, now).await?;
        let cipher = slack.cipher.as_ref().ok_or_else(|| anyhow::anyhow!("no encryption key configured"))?;
        let sealed = cipher.seal(ws.0, &access.access_token)?;
        tx.save_installation(ws, &sealed, access.bot_user_id.as_deref(), now).await?;
        tx.commit().await?;
        Ok::<_, anyhow::Error>(ws)
    }
    .await;
    match saved {
        Ok(ws) => {
            slack.remember(&access.team_id, ws);
            tracing::info!(workspace = ws.0, "nudge was installed in a Slack workspace");
            page(
                StatusCode::OK,
                "nudge is installed",
                &format!(
                    "nudge is installed in {}. Type <code>/nudge help</code> in any channel to begin.",
                    escape_html(&access.team_name)
                ),
            )
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "cannot save a Slack installation");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Try again",
                &format!("nudge could not save the install. {start_again}"),
            )
        }
    }
}
