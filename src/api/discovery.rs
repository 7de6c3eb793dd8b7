//! Free, unauthenticated endpoints: `GET /sms/availability`, `POST /sms/waitlist`,
//! `POST /sms/demo`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::extract::AppJson;
use crate::clock::rfc3339;
use crate::error::{ApiError, ErrorCode};

#[derive(Serialize)]
pub struct Availability {
    available: i64,
}

pub async fn availability(State(state): State<AppState>) -> Result<Json<Availability>, ApiError> {
    let counts = state.subscriptions.pool().await.map_err(|e| ApiError::internal(&e))?;
    Ok(Json(Availability { available: counts.free }))
}

#[derive(Serialize)]
pub struct WaitlistResponse {
    status: &'static str,
    registered_at: String,
}

fn invalid_email(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidEmail, message)
}

pub async fn join_waitlist(
    State(state): State<AppState>,
    AppJson(body): AppJson<Value>,
) -> Result<Json<WaitlistResponse>, ApiError> {
    let email = match body.get("email") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(invalid_email("email must be a string")),
        None => return Err(invalid_email("missing required field: email")),
    };
    let registered_at = state.subscriptions.join_waitlist(email).await?;
    Ok(Json(WaitlistResponse { status: "added", registered_at: rfc3339(registered_at) }))
}

/// Canned answers with the exact shapes of subscribe, send and receive; writes nothing.
pub async fn demo() -> Json<Value> {
    Json(json!({
        "demo": true,
        "simulated_subscribe": {
            "token": "demo-token-not-real",
            "number": "+15550000000",
            "expires_at": "2027-04-30T18:24:01.000Z",
            "renewed": false
        },
        "simulated_send": {
            "message_id": "msg_demo0000000000000000000001",
            "status": "queued",
            "id": 1,
            "segments": 1,
            "created_at": "2026-04-30T18:24:00.000Z"
        },
        "simulated_receive": {
            "messages": [{
                "id": 1,
                "from_number": "+15555550199",
                "to_number": "+15550000000",
                "body": "Your code is 123456",
                "message_id": "msg_demo0000000000000000000002",
                "created_at": "2026-04-30T18:24:01.000Z",
                "received_at": "2026-04-30T18:24:01.000Z"
            }],
            "count": 1
        },
        "note": "This is a simulated demo. Every field shape matches the real endpoints; use it to scaffold your integration, then subscribe for a real persistent number."
    }))
}
