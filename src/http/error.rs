//! One error type for handlers: user-facing statuses carry their message; anything else is logged
//! with its cause chain and answered with a generic 500, so no internals leak to the caller.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Signature or token check failed: 401 and nothing else.
    #[error("unauthorized")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for HttpError {
    fn from(error: crate::store::StoreError) -> Self {
        HttpError::Internal(error.into())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
            HttpError::BadRequest(message) => (StatusCode::BAD_REQUEST, message).into_response(),
            HttpError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "something went wrong; it has been logged\n").into_response()
            }
        }
    }
}
