//! Extractors that keep every rejection in the contract's error envelope: JSON bodies, query
//! strings, the agent's bearer token and the operator's admin key.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::subscriptions::Caller;

/// `axum::Json` with rejections mapped to the envelope (400, 413, 415).
pub struct AppJson<T>(pub T);

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

pub fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "expected a JSON body with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::invalid_request(format!("malformed JSON: {}", e.body_text())),
        JsonRejection::JsonDataError(e) => ApiError::invalid_request(e.body_text()),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge, "request body too large")
        }
        other => ApiError::invalid_request(other.body_text()),
    }
}

/// `axum::extract::Query` with rejections mapped to a 400 in the envelope.
pub struct AppQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::invalid_request(format!("invalid query string: {}", rejection.body_text()))
}

/// The bearer token of an `Authorization` header, if well-formed.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The subscription behind the request's bearer token; 401 otherwise.
pub struct Authed(pub Caller);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(state, bearer(parts)).await.map(Self)
    }
}

/// The subscription behind a bearer token, as every edge resolves it (REST, MCP, socket
/// handshakes): no token or a bad one is 401, a failure to look it up is a logged 500.
pub async fn authenticate(state: &AppState, token: Option<&str>) -> Result<Caller, ApiError> {
    let token = token.ok_or_else(ApiError::unauthorized)?;
    Ok(state.subscriptions.authenticate(token).await?)
}

/// An operator request carrying the admin key; 401 otherwise.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let denied = || ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "missing or wrong admin key");
        let expected = state.admin_key_hash.as_ref().ok_or_else(denied)?;
        let presented: [u8; 32] = Sha256::digest(bearer(parts).ok_or_else(denied)?.as_bytes()).into();
        if bool::from(presented.ct_eq(expected)) { Ok(Self) } else { Err(denied()) }
    }
}
