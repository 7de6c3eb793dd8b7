//! SMS handlers: `GET /sms/number`, `POST /sms/send`, `GET /sms/receive`, `GET /sms/messages`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{AppJson, AppQuery, Authed};
use crate::clock::{self, rfc3339};
use crate::e164::E164;
use crate::error::{ApiError, ErrorCode};
use crate::sms::SmsError;
use crate::store::{Direction, HistoryCursor, HistoryFilter, HistoryRow};

const RECEIVE_DEFAULT_LIMIT: i64 = 20;
const HISTORY_DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 100;

impl From<SmsError> for ApiError {
    fn from(err: SmsError) -> Self {
        ApiError::internal(&err)
    }
}

#[derive(Serialize)]
pub struct NumberInfo {
    number: String,
    status: &'static str,
    wallet: String,
    subscription: SubscriptionInfo,
}

#[derive(Serialize)]
struct SubscriptionInfo {
    plan: String,
    created_at: String,
    expires_at: String,
    payer_address: Option<String>,
}

pub async fn get_number(Authed(caller): Authed) -> Json<NumberInfo> {
    let status = if caller.is_active(clock::now_ms()) { "active" } else { "expired" };
    Json(NumberInfo {
        number: caller.number,
        status,
        wallet: caller.wallet,
        subscription: SubscriptionInfo {
            plan: caller.plan,
            created_at: rfc3339(caller.created_at_ms),
            expires_at: rfc3339(caller.expires_at_ms),
            payer_address: caller.payer,
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    to: Option<String>,
    body: Option<String>,
}

#[derive(Serialize)]
pub struct SendResponse {
    message_id: String,
    status: &'static str,
    id: i64,
    segments: u32,
    created_at: String,
}

pub async fn send_sms(
    State(state): State<AppState>,
    Authed(caller): Authed,
    AppJson(req): AppJson<SendBody>,
) -> Result<Json<SendResponse>, ApiError> {
    let (to, body) = match (req.to, req.body) {
        (Some(to), Some(body)) => (to, body),
        (to, body) => {
            let missing: Vec<&str> =
                [("to", to.is_none()), ("body", body.is_none())].iter().filter(|(_, m)| *m).map(|(f, _)| *f).collect();
            return Err(ApiError::invalid_request(format!("missing required fields: {}", missing.join(", "))));
        }
    };
    let to = E164::parse(&to).map_err(|e| ApiError::invalid_request(format!("to: {e} (E.164, like +15555550123)")))?;
    if body.is_empty() {
        return Err(ApiError::invalid_request("body must not be empty"));
    }
    let max_chars = state.limits.max_sms_chars;
    if body.chars().count() > max_chars {
        return Err(ApiError::invalid_request(format!("body exceeds {max_chars} characters")));
    }
    if !caller.is_active(clock::now_ms()) {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            ErrorCode::NoActiveSubscription,
            "subscription expired; renew with POST /sms/subscribe to send",
        ));
    }
    let from = E164::parse(&caller.number).map_err(|e| ApiError::internal(&format!("stored number invalid: {e}")))?;
    let queued = state.sms.send(caller.subscription_id, &from, &to, body).await?;
    Ok(Json(SendResponse {
        message_id: queued.message_id,
        status: "queued",
        id: queued.id,
        segments: queued.segments,
        created_at: rfc3339(queued.created_at_ms),
    }))
}

#[derive(Deserialize)]
pub struct ReceiveQuery {
    limit: Option<String>,
    wait: Option<String>,
}

#[derive(Serialize)]
pub struct ReceiveResponse {
    messages: Vec<InboundMessage>,
    count: usize,
}

#[derive(Serialize)]
struct InboundMessage {
    id: i64,
    from_number: String,
    to_number: String,
    body: String,
    message_id: Option<String>,
    created_at: String,
    received_at: Option<String>,
}

pub async fn receive_sms(
    State(state): State<AppState>,
    Authed(caller): Authed,
    AppQuery(q): AppQuery<ReceiveQuery>,
) -> Result<Json<ReceiveResponse>, ApiError> {
    let limit = parse_limit(q.limit.as_deref(), RECEIVE_DEFAULT_LIMIT)?;
    let wait = parse_wait(q.wait.as_deref(), state.limits.max_wait_secs)?;
    let received = state.sms.receive(caller.subscription_id, &caller.number, limit, Duration::from_secs(wait)).await?;
    let messages: Vec<InboundMessage> = received
        .messages
        .into_iter()
        .map(|m| InboundMessage {
            id: m.id,
            from_number: m.peer,
            to_number: m.number,
            body: m.body,
            message_id: Some(m.message_id),
            created_at: rfc3339(m.created_at),
            received_at: m.received_at.map(rfc3339),
        })
        .collect();
    Ok(Json(ReceiveResponse { count: messages.len(), messages }))
}

#[derive(Deserialize)]
pub struct CodeQuery {
    wait: Option<String>,
    from: Option<String>,
}

#[derive(Serialize)]
pub struct CodeResponse {
    /// `null` when no message with a code arrived within the wait.
    code: Option<String>,
    sender: Option<String>,
    message_id: Option<String>,
    body: Option<String>,
    received_at: Option<String>,
}

/// `GET /sms/code?wait=&from=`: the one-time code of the next unclaimed message that carries one
/// (that message is claimed; others stay for `/sms/receive`).
pub async fn wait_for_code(
    State(state): State<AppState>,
    Authed(caller): Authed,
    AppQuery(q): AppQuery<CodeQuery>,
) -> Result<Json<CodeResponse>, ApiError> {
    let wait = parse_wait(q.wait.as_deref(), state.limits.max_wait_secs)?;
    let from = q.from.as_deref().map(str::trim).filter(|f| !f.is_empty());
    if from.is_some_and(|f| f.len() > 32) {
        return Err(ApiError::invalid_request("from must be a sender of at most 32 characters"));
    }
    let found = state.sms.wait_for_code(caller.subscription_id, from, Duration::from_secs(wait)).await?;
    Ok(Json(match found {
        Some(c) => CodeResponse {
            code: Some(c.code),
            sender: Some(c.message.peer),
            message_id: Some(c.message.message_id),
            body: Some(c.message.body),
            received_at: Some(rfc3339(c.message.received_at.unwrap_or(c.message.created_at))),
        },
        None => CodeResponse { code: None, sender: None, message_id: None, body: None, received_at: None },
    }))
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    direction: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
pub struct HistoryResponse {
    messages: Vec<HistoryMessage>,
    next_cursor: Option<String>,
}

#[derive(Serialize)]
struct HistoryMessage {
    id: i64,
    direction: String,
    from_number: String,
    to_number: String,
    body: String,
    message_id: Option<String>,
    status: Option<String>,
    created_at: String,
    delivered_at: Option<String>,
    segments: i64,
    error_code: Option<i64>,
    updated_at: String,
    received_at: Option<String>,
}

impl From<HistoryRow> for HistoryMessage {
    fn from(r: HistoryRow) -> Self {
        let (from_number, to_number) =
            if r.direction == Direction::Sent.as_str() { (r.number, r.peer) } else { (r.peer, r.number) };
        Self {
            id: r.id,
            direction: r.direction,
            from_number,
            to_number,
            body: r.body,
            message_id: Some(r.message_id),
            status: r.status,
            created_at: rfc3339(r.created_at),
            delivered_at: r.delivered_at.map(rfc3339),
            segments: r.segments,
            error_code: r.error_code,
            updated_at: rfc3339(r.updated_at),
            received_at: r.received_at.map(rfc3339),
        }
    }
}

pub async fn list_messages(
    State(state): State<AppState>,
    Authed(caller): Authed,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let limit = parse_limit(q.limit.as_deref(), HISTORY_DEFAULT_LIMIT)?;
    let direction = match q.direction.as_deref() {
        None | Some("") | Some("both") => None,
        Some("sent") => Some(Direction::Sent),
        Some("received") => Some(Direction::Received),
        Some(_) => {
            return Err(ApiError::invalid_request("direction must be sent, received or both"));
        }
    };
    let since_ms = parse_time("since", q.since.as_deref())?;
    let until_ms = parse_time("until", q.until.as_deref())?;
    if let (Some(s), Some(u)) = (since_ms, until_ms)
        && s > u
    {
        return Err(ApiError::invalid_request("since must not be after until"));
    }
    let after = parse_cursor(q.cursor.as_deref())?;
    let filter = HistoryFilter { direction, since_ms, until_ms, after };
    // One row beyond the page says whether another page exists.
    let mut rows = state.sms.history(caller.subscription_id, &filter, limit + 1).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(HistoryCursor { created_at: r.created_at, id: r.id }))
    } else {
        None
    };
    Ok(Json(HistoryResponse { messages: rows.into_iter().map(HistoryMessage::from).collect(), next_cursor }))
}

/// `limit`: absent -> default; not an integer or below 1 -> 400; above 100 -> 100.
/// `wait` (seconds): absent -> 0; not an integer or above `max` -> 400.
fn parse_wait(raw: Option<&str>, max: u64) -> Result<u64, ApiError> {
    match raw {
        None | Some("") => Ok(0),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|w| *w <= max)
            .ok_or_else(|| ApiError::invalid_request(format!("wait must be an integer from 0 to {max} (seconds)"))),
    }
}

/// `cursor`: absent -> none; not one of ours -> 400.
pub(super) fn parse_cursor(raw: Option<&str>) -> Result<Option<HistoryCursor>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => decode_cursor(raw).map(Some).ok_or_else(|| ApiError::invalid_request("malformed cursor")),
    }
}

pub(super) fn parse_limit(raw: Option<&str>, default: i64) -> Result<i64, ApiError> {
    match raw {
        None | Some("") => Ok(default),
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
            _ => Err(ApiError::invalid_request(format!("limit must be an integer from 1 to {MAX_LIMIT}"))),
        },
    }
}

fn parse_time(name: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => clock::parse_rfc3339(raw).map(Some).ok_or_else(|| {
            ApiError::invalid_request(format!("{name} must be an RFC 3339 timestamp like 2026-04-30T18:24:01Z"))
        }),
    }
}

const CURSOR_VERSION: &str = "h1";

pub(super) fn encode_cursor(c: HistoryCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}:{}:{}", c.created_at, c.id))
}

fn decode_cursor(raw: &str) -> Option<HistoryCursor> {
    if raw.len() > 128 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let mut parts = text.split(':');
    let (version, created_at, id) = (parts.next()?, parts.next()?, parts.next()?);
    if version != CURSOR_VERSION || parts.next().is_some() {
        return None;
    }
    Some(HistoryCursor { created_at: created_at.parse().ok()?, id: id.parse().ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = HistoryCursor { created_at: 1_777_573_441_000, id: 4820 };
        assert_eq!(decode_cursor(&encode_cursor(c)), Some(c));
        for bad in [
            "",
            "!!",
            "4820|4810",
            &URL_SAFE_NO_PAD.encode("h2:1:2"),
            &URL_SAFE_NO_PAD.encode("h1:x:2"),
            &URL_SAFE_NO_PAD.encode("h1:1:2:3"),
            &"A".repeat(200),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn limits_default_cap_and_reject() {
        assert_eq!(parse_limit(None, 20).ok(), Some(20));
        assert_eq!(parse_limit(Some("7"), 20).ok(), Some(7));
        assert_eq!(parse_limit(Some("1000"), 20).ok(), Some(100));
        for bad in ["0", "-1", "ten", "1.5"] {
            assert!(parse_limit(Some(bad), 20).is_err(), "{bad}");
        }
    }
}
