//! `ApiError`: every handler failure, answered as JSON `{"error": "..."}`. 4xx carry a message for the user;
//! 5xx are logged once here and answered with a generic message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::backend::BackendError;
use crate::auth::AuthError;

/// A failed API request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Malformed or invalid input (400).
    #[error("{0}")]
    BadRequest(String),
    /// Not logged in, or the session expired (401).
    #[error("log in first")]
    Unauthenticated,
    /// Logged in but the role does not allow it (403).
    #[error("your role ({have}) may not do this: it needs {need}")]
    Forbidden {
        /// The user's role.
        have: crate::auth::Role,
        /// The role the endpoint needs.
        need: crate::auth::Role,
    },
    /// Missing or wrong `X-CSRF-Token` on a state-changing request (403).
    #[error("missing or wrong X-CSRF-Token header: reload the page")]
    Csrf,
    /// Not found (404).
    #[error("{0}")]
    NotFound(String),
    /// Conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Too many failed logins (429).
    #[error("too many failed logins: try again in {retry_after_s} s")]
    TooManyRequests {
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// A body extractor refused the request (its own status: 400, 413 or 415).
    #[error("{message}")]
    Rejected {
        /// The status to answer with.
        status: StatusCode,
        /// What was wrong.
        message: String,
    },
    /// A part the request needs is down (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an I/O failure (500): logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, for the user.
    error: String,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Rejected { status, .. } => *status,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "Web request failed.");
            "internal error: see the server log".to_owned()
        } else {
            self.to_string()
        };
        let mut response = (status, Json(ErrorBody { error: message })).into_response();
        if let ApiError::TooManyRequests { retry_after_s } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        response
    }
}

impl From<BackendError> for ApiError {
    fn from(error: BackendError) -> Self {
        match error {
            BackendError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            BackendError::Invalid(message) => ApiError::BadRequest(message),
            BackendError::Conflict(message) => ApiError::Conflict(message),
            BackendError::Unavailable(message) => ApiError::Unavailable(message),
            BackendError::Internal(message) => ApiError::Internal(message),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidUsername(_) | AuthError::WeakPassword { .. } => ApiError::BadRequest(error.to_string()),
            AuthError::UserExists(_) | AuthError::LastAdmin => ApiError::Conflict(error.to_string()),
            AuthError::NoSuchUser(_) => ApiError::NotFound(error.to_string()),
            AuthError::BadCredentials => {
                ApiError::Rejected { status: StatusCode::UNAUTHORIZED, message: error.to_string() }
            }
            AuthError::RateLimited { retry_after } => {
                ApiError::TooManyRequests { retry_after_s: retry_after.as_secs().max(1) }
            }
            AuthError::Hash(_) | AuthError::CorruptRole(_) | AuthError::Database(_) => {
                ApiError::Internal(format!("{error}: {:?}", std::error::Error::source(&error)))
            }
        }
    }
}
