//! One error type for every handler: what the caller is told, and for a 5xx, the cause chain in the
//! log and a generic answer, so no internal detail (or secret) reaches the caller.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub enum HttpError {
    /// A bad signature or token: 401 and nothing else.
    Unauthorized,
    /// A signature or token that is valid but from a key that may not call us: 403, nothing else.
    Forbidden,
    /// A verified request whose body is not what the platform sends: 400 saying what was expected.
    BadRequest(&'static str),
    /// Our fault: logged with its cause chain, answered generically. Platforms retry a 500.
    Internal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for HttpError {
    fn from(error: E) -> Self {
        HttpError::Internal(error.into())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
            HttpError::Forbidden => StatusCode::FORBIDDEN.into_response(),
            HttpError::BadRequest(expected) => (StatusCode::BAD_REQUEST, format!("not {expected}\n")).into_response(),
            HttpError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "a request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "something went wrong on nudge's side; it has been logged\n")
                    .into_response()
            }
        }
    }
}
