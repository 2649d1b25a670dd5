//! The Teams app package an admin uploads: `manifest.json` (schema 1.22) with the configured app
//! id, a bot in personal, team and group-chat scopes with nudge's three commands, the two icons
//! (192×192 colour, 32×32 white outline on transparent), and `validDomains` from the public URL.
//! Zipped flat, with no folder, as Teams requires.

use std::io::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::routes::TeamsApp;

pub const COLOR_ICON: &[u8] = include_bytes!("icons/color.png");
pub const OUTLINE_ICON: &[u8] = include_bytes!("icons/outline.png");
/// Bumped when the manifest changes, so Teams takes an uploaded package as an update.
pub const APP_VERSION: &str = "1.0.0";

/// The manifest for an app id and the public URL nudge is reached at.
pub fn manifest(app_id: &str, public_url: &url::Url) -> Value {
    let base = public_url.as_str().trim_end_matches('/');
    let domain = match public_url.port() {
        Some(port) => format!("{}:{port}", public_url.host_str().unwrap_or_default()),
        None => public_url.host_str().unwrap_or_default().to_string(),
    };
    let scopes = json!(["personal", "team", "groupChat"]);
    json!({
        "$schema": "https://developer.microsoft.com/en-us/json-schemas/teams/v1.22/MicrosoftTeams.schema.json",
        "manifestVersion": "1.22",
        "version": APP_VERSION,
        "id": app_id,
        "developer": {
            "name": "nudge",
            "websiteUrl": base,
            "privacyUrl": base,
            "termsOfUseUrl": base,
        },
        "name": {"short": "nudge", "full": "nudge: test-and-learn cycles for your team"},
        "description": {
            "short": "Small experiments, kept promises, shared learnings.",
            "full": "nudge keeps your team's test-and-learn loop moving: propose and run small experiments with \
                     the metric they should move, make pledges and keep them, get a weekly check-in in the channel \
                     and celebrate small wins. Type @nudge help to start.",
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#4F6BED",
        "bots": [{
            "botId": app_id,
            "scopes": scopes,
            "isNotificationOnly": false,
            "supportsFiles": false,
            "commandLists": [{
                "scopes": scopes,
                "commands": [
                    {"title": "experiment", "description": "Propose, start, update and close small experiments"},
                    {"title": "pledge", "description": "Make a pledge by a date; keep, extend or release it"},
                    {"title": "nudge", "description": "help, rules, schedule, quiet days, pause, digest, settings"},
                ],
            }],
        }],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [domain],
    })
}

/// The zip: manifest.json, color.png and outline.png at its root.
pub fn package(manifest: &Value) -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let text = serde_json::to_vec_pretty(manifest).unwrap_or_default();
    for (name, bytes) in [("manifest.json", text.as_slice()), ("color.png", COLOR_ICON), ("outline.png", OUTLINE_ICON)]
    {
        zip.start_file(name, stored)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

pub async fn app_zip(State(app): State<Arc<TeamsApp>>) -> Response {
    let Some(public_url) = app.core.config.public_url.as_ref() else {
        return (
            StatusCode::CONFLICT,
            "the app package needs the address Teams reaches nudge at: set NUDGE_PUBLIC_URL, then download it again\n",
        )
            .into_response();
    };
    match package(&manifest(&app.teams.settings.app_id, public_url)) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/zip"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"nudge-teams.zip\""),
            ],
            bytes,
        )
            .into_response(),
        Err(error) => crate::http::HttpError::Internal(anyhow::Error::new(error).context("cannot zip the Teams app"))
            .into_response(),
    }
}
