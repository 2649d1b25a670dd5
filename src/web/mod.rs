//! nudge's own web pages: a channel's dashboard, reached through the signed, expiring links nudge
//! gives in chat (`/nudge dashboard`), with exports. The link is the only permission: it names one
//! channel of one workspace, and a changed or expired link shows a page saying so, never data.

mod chart;
pub mod dashboard;
pub mod export;
pub mod links;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::clock::SharedClock;
use crate::store::{Store, StoreError};

/// The link-signing key, made on the first start and kept in the database (so every replica signs
/// and checks alike).
pub async fn link_key(store: &Store) -> Result<Vec<u8>, StoreError> {
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|e| StoreError::Corrupt(format!("no randomness for a key: {e}")))?;
    let mut tx = store.begin().await?;
    tx.ensure_server_key(links::KEY_NAME, &hex::encode(fresh)).await?;
    let key = tx.server_key(links::KEY_NAME).await?;
    tx.commit().await?;
    let key = key.ok_or_else(|| StoreError::Corrupt("the dashboard key was not stored".into()))?;
    hex::decode(key).map_err(|_| StoreError::Corrupt("the dashboard key is not hex".into()))
}

#[derive(Clone)]
struct Web {
    store: Store,
    clock: SharedClock,
    key: Arc<Vec<u8>>,
}

/// The dashboard's routes.
pub fn routes(store: Store, clock: SharedClock, key: Vec<u8>) -> Router {
    Router::new()
        .route("/dashboard/{token}", get(page))
        .route("/dashboard/{token}/export/{file}", get(export_file))
        .with_state(Web { store, clock, key: Arc::new(key) })
}

#[derive(Deserialize)]
struct Search {
    q: Option<String>,
}

fn refused(error: links::LinkError) -> Response {
    let (status, title, message) = match error {
        links::LinkError::Invalid => (
            StatusCode::NOT_FOUND,
            "This dashboard link does not open",
            "It is not a link nudge gave, or part of it was changed. Type /nudge dashboard in your team's channel for a link to its dashboard.",
        ),
        links::LinkError::Expired => (
            StatusCode::GONE,
            "This dashboard link has expired",
            "Links last a week. Type /nudge dashboard in your team's channel for a fresh one; every check-in carries one too.",
        ),
    };
    (status, private_page(Html(dashboard::refusal(title, message).into_string()))).into_response()
}

/// Dashboards are one team's data: never cached by a shared cache, never indexed.
fn private_page<T: IntoResponse>(body: T) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'"),
    );
    response
}

async fn board(web: &Web, token: &str, search: Option<String>) -> Result<dashboard::Board, Response> {
    let now = web.clock.now();
    let grant = links::verify(&web.key, token, now).map_err(refused)?;
    match dashboard::Board::load(&web.store, grant.workspace, grant.channel, search, now).await {
        Ok(Some(board)) => Ok(board),
        Ok(None) => Err(refused(links::LinkError::Invalid)),
        Err(error) => {
            tracing::error!(%error, "cannot read a dashboard");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "nudge could not read the dashboard just now; try again in a moment.\n",
            )
                .into_response())
        }
    }
}

async fn page(State(web): State<Web>, Path(token): Path<String>, Query(search): Query<Search>) -> Response {
    match board(&web, &token, search.q).await {
        // Relative links on the page are resolved against "/dashboard/", so they carry the token.
        Ok(board) => private_page(Html(dashboard::page(&board, &token).into_string())),
        Err(refusal) => refusal,
    }
}

async fn export_file(State(web): State<Web>, Path((token, file)): Path<(String, String)>) -> Response {
    let known = file
        .rsplit_once('.')
        .and_then(|(what, format)| Some((export::Export::parse(what)?, format)))
        .filter(|(_, format)| matches!(*format, "csv" | "json"));
    let Some((what, format)) = known else {
        return (StatusCode::NOT_FOUND, "exports are experiments, readings, pledges or learnings, as .csv or .json\n")
            .into_response();
    };
    let board = match board(&web, &token, None).await {
        Ok(board) => board,
        Err(refusal) => return refusal,
    };
    let (columns, rows) = export::rows(&board, what);
    let name =
        format!("nudge-{}-{file}", board.channel.name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let (content_type, body) = match format {
        "csv" => ("text/csv; charset=utf-8", export::csv(&columns, &rows)),
        _ => ("application/json", serde_json::Value::Array(rows).to_string()),
    };
    private_page((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type)), (header::CONTENT_DISPOSITION, disposition)],
        body,
    ))
}
