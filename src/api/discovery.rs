//! Free, unauthenticated endpoints: `GET /sms/availability`, `POST /sms/waitlist`,
//! `POST /sms/demo`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::extract::AppJson;
use crate::clock::{self, rfc3339};
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
    let email = normalize_email(email).ok_or_else(|| invalid_email("email is not a valid address"))?;
    let registered_at = state.store.join_waitlist(&email, clock::now_ms()).await.map_err(|e| ApiError::internal(&e))?;
    Ok(Json(WaitlistResponse { status: "added", registered_at: rfc3339(registered_at) }))
}

/// A pragmatic address check (RFC 5321 lengths, one `@`, a dotted domain, no spaces or
/// control characters); the result is trimmed and lowercased so one inbox registers once.
fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    let domain_ok = !domain.contains('@')
        && domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    let local_ok = !local.is_empty() && local.len() <= 64 && !local.starts_with('.') && !local.ends_with('.');
    (domain_ok && local_ok).then_some(email)
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

#[cfg(test)]
mod tests {
    use super::normalize_email;

    #[test]
    fn emails() {
        assert_eq!(normalize_email(" You@Example.com ").as_deref(), Some("you@example.com"));
        assert_eq!(normalize_email("a.b+tag@sub.example.co").as_deref(), Some("a.b+tag@sub.example.co"));
        for bad in [
            "",
            "you",
            "you@",
            "@example.com",
            "you@example",
            "a@@b.com",
            "a b@c.com",
            "you@-x.com",
            "you@x..com",
            ".a@b.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
        assert_eq!(normalize_email(&format!("{}@example.com", "a".repeat(65))), None);
    }
}
