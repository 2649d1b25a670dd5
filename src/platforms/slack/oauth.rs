//! Installing nudge in many workspaces through OAuth v2: `/slack/install` sends the installer to
//! Slack with a single-use state (CSRF), and `/slack/oauth/callback` exchanges the code for the
//! workspace's bot token, which is stored sealed.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::Deserialize;

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
    let state = hex::encode(bytes);
    let expires = app.clock.now() + Duration::minutes(STATE_LIFETIME_MINUTES);
    let stored = async {
        let mut tx = app.store.begin().await?;
        tx.create_oauth_state(PLATFORM, &state, expires).await?;
        tx.commit().await
    }
    .await;
    if let Err(error) = stored {
        tracing::error!(%error, "cannot store an OAuth state");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Try again",
            "nudge could not start the install; it has been logged.",
        );
    }
    let mut url = url::Url::parse(AUTHORIZE_URL).expect("a valid constant URL");
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("scope", &BOT_SCOPES.join(","))
        .append_pair("state", &state)
        .append_pair("redirect_uri", &redirect_uri(slack));
    Redirect::to(url.as_str()).into_response()
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(State(app): State<Arc<SlackApp>>, Query(params): Query<Callback>) -> Response {
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
    let state_ok = match &params.state {
        Some(state) => async {
            let mut tx = app.store.begin().await?;
            let ok = tx.consume_oauth_state(PLATFORM, state, now).await?;
            tx.commit().await?;
            Ok::<bool, crate::store::StoreError>(ok)
        }
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "cannot check an OAuth state");
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
