//! `GET /slack/manifest`: the Slack app manifest with this server's public URL filled in, ready to
//! paste into "Create an app → From an app manifest".

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::oauth::BOT_SCOPES;
use crate::platforms::Core;

/// The three slash commands, each with its description and usage hint as Slack shows them.
const COMMANDS: [(&str, &str, &str); 3] = [
    (
        "/experiment",
        "Propose, run and close small experiments",
        "propose | list | show E-3 | start | update | close | vote",
    ),
    ("/pledge", "Make and keep small promises", "call five customers by fri | done P-4 | list"),
    ("/nudge", "nudge's settings, digest and help", "help | rules | schedule | quiet | pause | digest | settings"),
];

pub fn manifest_for(base: &str) -> Value {
    let base = base.trim_end_matches('/');
    let commands: Vec<Value> = COMMANDS
        .iter()
        .map(|(command, description, hint)| {
            json!({
                "command": command,
                "url": format!("{base}/slack/commands"),
                "description": description,
                "usage_hint": hint,
                "should_escape": false,
            })
        })
        .collect();
    json!({
        "_metadata": { "major_version": 1, "minor_version": 1 },
        "display_information": {
            "name": "nudge",
            "description": "Keeps your team moving through test-and-learn cycles",
            "long_description": "nudge runs the experiment loop from chat: propose small experiments with a hypothesis and a metric, record readings, close them with what you learned, and keep the pledges you make along the way. A weekly check-in, small celebrations, and never a nag.",
            "background_color": "#2c2d30",
        },
        "features": {
            "bot_user": { "display_name": "nudge", "always_online": true },
            "slash_commands": commands,
        },
        "oauth_config": {
            "redirect_urls": [format!("{base}/slack/oauth/callback")],
            "scopes": { "bot": BOT_SCOPES },
        },
        "settings": {
            "event_subscriptions": {
                "request_url": format!("{base}/slack/events"),
                "bot_events": ["app_mention"],
            },
            "interactivity": { "is_enabled": true, "request_url": format!("{base}/slack/interactions") },
            "org_deploy_enabled": false,
            "socket_mode_enabled": false,
            "token_rotation_enabled": false,
        },
    })
}

/// The manifest's route, served whether or not Slack is configured: it is how the app is made.
pub fn routes(core: &Core) -> axum::Router {
    axum::Router::new().route("/slack/manifest", axum::routing::get(manifest)).with_state(core.clone())
}

async fn manifest(State(core): State<Core>) -> Response {
    match &core.config.public_url {
        Some(url) => axum::Json(manifest_for(url.as_str())).into_response(),
        None => (
            StatusCode::CONFLICT,
            "Set NUDGE_PUBLIC_URL to the https address Slack can reach this server at (for example a tunnel to \
             this port), restart nudge, and load this page again: the manifest needs it for every URL.\n",
        )
            .into_response(),
    }
}
