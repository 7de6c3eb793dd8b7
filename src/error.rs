//! The HTTP error envelope of the contract: `{"error": "<code>", "message": "<text>"}`.
//!
//! `ErrorCode` is a closed set of stable `snake_case` codes; clients switch on them, so a
//! variant is never renamed. Every failure that reaches the edge becomes an [`ApiError`];
//! a 5xx carries a generic message and its cause goes to the log, never to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Stable error codes, part of the API. The contract's codes come first; the rest are additive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidEmail,
    Unauthorized,
    SignatureMismatch,
    NoActiveSubscription,
    Forbidden,
    NotFound,
    Conflict,
    PhoneNodeError,
    PoolExhausted,
    PhoneNodeUnavailable,
    // Additive codes for HTTP-level failures the contract does not name.
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    InternalError,
    NotImplemented,
    ServiceUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidEmail => "invalid_email",
            Self::Unauthorized => "unauthorized",
            Self::SignatureMismatch => "signature_mismatch",
            Self::NoActiveSubscription => "no_active_subscription",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PhoneNodeError => "phone_node_error",
            Self::PoolExhausted => "pool_exhausted",
            Self::PhoneNodeUnavailable => "phone_node_unavailable",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::InternalError => "internal_error",
            Self::NotImplemented => "not_implemented",
            Self::ServiceUnavailable => "service_unavailable",
        }
    }
}

/// An error answered to an HTTP client in the contract's envelope.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Additive fields merged into the envelope (for example `available` on `pool_exhausted`).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'static str,
    message: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: None }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "invalid, revoked, or expired token")
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// A server-side failure: the client gets a generic message, the log gets the cause.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError, "internal error; retry later")
    }

    /// The same error under another wire code (for codes outside [`ErrorCode`], such as the
    /// x402 `invalid_payload`).
    pub fn into_code(self, code: &'static str) -> CodedError {
        CodedError { inner: self, code }
    }

    pub fn with_extra(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra.get_or_insert_with(Default::default).insert(key.to_owned(), value);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code.as_str(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope { error: self.code.as_str(), message: &self.message, extra: self.extra.as_ref() };
        (self.status, axum::Json(body)).into_response()
    }
}

/// An [`ApiError`] answered with a code from another vocabulary (x402's).
#[derive(Debug)]
pub struct CodedError {
    inner: ApiError,
    code: &'static str,
}

impl IntoResponse for CodedError {
    fn into_response(self) -> Response {
        let body = Envelope { error: self.code, message: &self.inner.message, extra: self.inner.extra.as_ref() };
        (self.inner.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidEmail,
            ErrorCode::PoolExhausted,
            ErrorCode::PhoneNodeUnavailable,
            ErrorCode::InternalError,
        ] {
            let json = serde_json::to_value(code).expect("serializes");
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
    }

    #[test]
    fn envelope_carries_code_message_and_extras() {
        let err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::PoolExhausted, "none left")
            .with_extra("available", 0.into());
        let body = serde_json::to_value(Envelope {
            error: err.code.as_str(),
            message: &err.message,
            extra: err.extra.as_ref(),
        })
        .expect("serializes");
        assert_eq!(body, serde_json::json!({"error": "pool_exhausted", "message": "none left", "available": 0}));
    }
}
