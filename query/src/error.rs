//! [`ApiError`]: every error the REST API answers, classified, with its status code and
//! the JSON body `{"status": "error", "error": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use slotel_proto::auth::AuthError;
use slotel_storage::sql::SqlError;

/// An error of the REST API, by class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: a parameter, a body, a tenant (400).
    #[error("{0}")]
    BadRequest(String),
    /// No credentials, or wrong ones (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed to do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such SLO, service, window or feature (404).
    #[error("{0}")]
    NotFound(String),
    /// The request ran past its time limit (408).
    #[error("{0}")]
    Timeout(String),
    /// The answer would be larger than allowed (413).
    #[error("{0}")]
    TooLarge(String),
    /// Well-formed but refused: SLO files that do not validate (422).
    #[error("{0}")]
    Unprocessable(String),
    /// Not available now; retrying later may succeed (503).
    #[error("{0}")]
    Unavailable(String),
    /// slotel failed (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A [`ApiError::BadRequest`] saying what `e` says.
    pub fn bad_request(e: impl std::fmt::Display) -> Self {
        ApiError::BadRequest(e.to_string())
    }

    /// The HTTP status of the class.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(json!({ "status": "error", "error": self.to_string() })),
        )
            .into_response()
    }
}

impl From<slotel_compute::Error> for ApiError {
    fn from(e: slotel_compute::Error) -> Self {
        match e {
            slotel_compute::Error::UnknownSlo { .. } => ApiError::NotFound(e.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => ApiError::Unauthorized(e.to_string()),
            AuthError::InvalidTenant(m) => ApiError::BadRequest(m),
        }
    }
}

impl From<SqlError> for ApiError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::Timeout(_) => ApiError::Timeout(e.to_string()),
            // Too many rows stays a 400, as the API has always answered it: the query
            // is what has to change.
            SqlError::Invalid(_) | SqlError::TooManyRows(_) => ApiError::BadRequest(e.to_string()),
            SqlError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}
