//! SMS handlers: `GET /sms/number`, `POST /sms/send`, `GET /sms/receive`, `GET /sms/messages`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{AppJson, AppQuery, Authed};
use super::pagination::{encode_cursor, parse_cursor, parse_limit};
use crate::clock::{self, rfc3339};
use crate::error::ApiError;
use crate::ids::MessageId;
use crate::store::{Direction, HistoryFilter, HistoryRow};

const RECEIVE_DEFAULT_LIMIT: i64 = 20;
const HISTORY_DEFAULT_LIMIT: i64 = 50;

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
        number: caller.number.into_string(),
        status,
        wallet: caller.wallet.to_string(),
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
    message_id: MessageId,
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
    let queued = state.sms.send(&caller, &to, body).await?;
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
    message_id: Option<MessageId>,
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
    let received =
        state.sms.receive(caller.subscription_id, caller.number.as_str(), limit, Duration::from_secs(wait)).await?;
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
    message_id: Option<MessageId>,
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
    let found = state.sms.wait_for_code(caller.subscription_id, q.from.as_deref(), Duration::from_secs(wait)).await?;
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
    direction: &'static str,
    from_number: String,
    to_number: String,
    body: String,
    message_id: Option<MessageId>,
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
            if r.direction == Direction::Sent { (r.number, r.peer) } else { (r.peer, r.number) };
        Self {
            id: r.id,
            direction: r.direction.as_str(),
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
    let direction = crate::sms::parse_direction(q.direction.as_deref())?;
    let since_ms = parse_time("since", q.since.as_deref())?;
    let until_ms = parse_time("until", q.until.as_deref())?;
    let after = parse_cursor(q.cursor.as_deref())?;
    let filter = HistoryFilter { direction, since_ms, until_ms, after };
    let page = state.sms.history(caller.subscription_id, &filter, limit).await?;
    let next_cursor = page.next.map(encode_cursor);
    Ok(Json(HistoryResponse { messages: page.rows.into_iter().map(HistoryMessage::from).collect(), next_cursor }))
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

fn parse_time(name: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => clock::parse_rfc3339(raw).map(Some).ok_or_else(|| {
            ApiError::invalid_request(format!("{name} must be an RFC 3339 timestamp like 2026-04-30T18:24:01Z"))
        }),
    }
}
