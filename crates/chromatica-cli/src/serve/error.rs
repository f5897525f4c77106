//! Every failure a client sees: `{"error": "one line"}` with its status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// 4xx for what the request did wrong, 5xx only for the server's own failures.
    pub status: StatusCode,
    /// One line (newlines and runs of whitespace collapsed).
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
        let message = message.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        ApiError { status, message }
    }

    /// 400: a parameter or upload is unusable.
    pub fn bad_request(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such route or image.
    pub fn not_found(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the request conflicts with the server's state.
    pub fn conflict(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// 413: an upload over the limit.
    pub fn too_large(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 503: over the concurrency limit.
    pub fn busy(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500: the server's own failure (an I/O error on the index, …).
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<chromatica::Error> for ApiError {
    fn from(e: chromatica::Error) -> ApiError {
        use chromatica::Error as E;
        match e {
            E::InvalidInput(_) | E::InvalidArgument { .. } | E::BadFile { .. } | E::Unsupported { .. } => {
                ApiError::bad_request(e)
            }
            E::NotTrained => ApiError::conflict(e),
            E::ReadOnly(_) | E::Locked(_) => ApiError::conflict(e),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;
