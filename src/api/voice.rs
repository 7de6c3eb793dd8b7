//! Voice handlers: `POST /sms/voice/dial`, `POST /sms/voice/hangup`, `GET /sms/voice/calls`, and
//! the two WebSockets, `/sms/voice/presence/{phone_number}` and `/sms/voice/stream/{call_id}`.
//!
//! Sockets authenticate before the upgrade (so refusals are plain JSON errors): by
//! `Authorization: Bearer`, or for browsers by offering the subprotocols `agentline.v1` and
//! `bearer.<token>`. This module pumps each socket to and from the voice service's channels.

use std::time::Duration;

use axum::Json;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::AppState;
use super::extract::{AppJson, AppQuery, Authed};
use super::pagination::{encode_cursor, parse_cursor, parse_limit};
use crate::clock::rfc3339;
use crate::error::{ApiError, ErrorCode};
use crate::ids::CallId;
use crate::store::{CallDirection, CallRow, EndReason};
use crate::subscriptions::Caller;
use crate::voice::DialRequest;
use crate::voice::call::{FromAgent, StreamIo, TO_AGENT_QUEUE, ToAgent};

/// The subprotocol the server answers with.
const SUBPROTOCOL: &str = "agentline.v1";
/// Largest agent message accepted: 1 MiB (about 32 s of audio at once).
const MAX_MESSAGE: usize = 1 << 20;
/// Bytes tungstenite reads per system call. Its default (128 KiB) is zero-filled on every read:
/// for one 648-byte audio frame per read that was a fifth of the server's CPU under load. A
/// frame fits many times; a large message just takes more reads.
const READ_BUFFER: usize = 4096;
/// Agent messages queued towards the call at most.
const FROM_AGENT_QUEUE: usize = 64;
const PRESENCE_PING: Duration = Duration::from_secs(20);
const CALLS_DEFAULT_LIMIT: i64 = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialBody {
    phone_number: Option<String>,
    to: Option<String>,
    /// The agent's own SIP endpoint to bridge the call to, instead of a WebSocket stream.
    callback_sip_uri: Option<String>,
}

#[derive(Serialize)]
pub struct DialResponse {
    call_id: CallId,
    stream_url: String,
    state: &'static str,
}

pub async fn dial(
    State(state): State<AppState>,
    Authed(caller): Authed,
    AppJson(req): AppJson<DialBody>,
) -> Result<Json<DialResponse>, ApiError> {
    let (Some(from), Some(to)) = (req.phone_number, req.to) else {
        return Err(ApiError::invalid_request("phone_number and to are required"));
    };
    let request = DialRequest { from: Some(from), to, callback_sip_uri: req.callback_sip_uri };
    let dialed = state.voice.dial(&caller, request).await?;
    Ok(Json(DialResponse {
        stream_url: state.voice.stream_url(&dialed.call_id),
        call_id: dialed.call_id,
        state: dialed.state.as_str(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundRequest {
    /// `sip:…` to route incoming calls there; `null` to ring the presence sockets again.
    inbound_sip_uri: Option<String>,
}

#[derive(Serialize)]
pub struct InboundRoute {
    phone_number: String,
    inbound_sip_uri: Option<String>,
}

/// `GET /sms/voice/inbound`: where the bearer's incoming calls go.
pub async fn get_inbound(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<InboundRoute>, ApiError> {
    let uri = state.voice.inbound_sip_uri(caller.subscription_id).await?;
    Ok(Json(InboundRoute { phone_number: caller.number.into_string(), inbound_sip_uri: uri }))
}

/// `PUT /sms/voice/inbound`: routes the bearer's incoming calls to its own SIP endpoint, or
/// (with `null`) back to its presence sockets.
pub async fn put_inbound(
    State(state): State<AppState>,
    Authed(caller): Authed,
    AppJson(req): AppJson<InboundRequest>,
) -> Result<Json<InboundRoute>, ApiError> {
    let uri = req.inbound_sip_uri.filter(|u| !u.is_empty());
    state.voice.set_inbound_sip_uri(caller.subscription_id, uri.as_deref()).await?;
    Ok(Json(InboundRoute { phone_number: caller.number.into_string(), inbound_sip_uri: uri }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangupRequest {
    call_id: Option<String>,
}

#[derive(Serialize)]
pub struct HangupResponse {
    status: &'static str,
}

pub async fn hangup(
    State(state): State<AppState>,
    Authed(caller): Authed,
    AppJson(req): AppJson<HangupRequest>,
) -> Result<Json<HangupResponse>, ApiError> {
    let call_id = req.call_id.ok_or_else(|| ApiError::invalid_request("call_id is required"))?;
    state.voice.hangup(caller.subscription_id, &call_id)?;
    Ok(Json(HangupResponse { status: "hangup_sent" }))
}

#[derive(Deserialize)]
pub struct CallsQuery {
    direction: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
pub struct CallsResponse {
    calls: Vec<CallView>,
    next_cursor: Option<String>,
}

/// A call as REST and MCP show it.
#[derive(Serialize)]
pub(super) struct CallView {
    call_id: CallId,
    direction: &'static str,
    from_number: String,
    to_number: String,
    state: &'static str,
    end_reason: Option<&'static str>,
    sip_code: Option<i64>,
    created_at: String,
    answered_at: Option<String>,
    ended_at: Option<String>,
    duration_ms: Option<i64>,
}

impl From<CallRow> for CallView {
    fn from(r: CallRow) -> Self {
        let (from_number, to_number) =
            if r.direction == CallDirection::Outbound { (r.number, r.peer) } else { (r.peer, r.number) };
        Self {
            call_id: r.call_id,
            direction: r.direction.as_str(),
            from_number,
            to_number,
            state: r.state.as_str(),
            end_reason: r.end_reason.map(EndReason::as_str),
            sip_code: r.sip_code,
            created_at: rfc3339(r.created_at),
            answered_at: r.answered_at.map(rfc3339),
            ended_at: r.ended_at.map(rfc3339),
            duration_ms: r.answered_at.zip(r.ended_at).map(|(a, e)| e - a),
        }
    }
}

pub async fn list_calls(
    State(state): State<AppState>,
    Authed(caller): Authed,
    AppQuery(q): AppQuery<CallsQuery>,
) -> Result<Json<CallsResponse>, ApiError> {
    let limit = parse_limit(q.limit.as_deref(), CALLS_DEFAULT_LIMIT)?;
    let direction = crate::voice::parse_direction(q.direction.as_deref())?;
    let after = parse_cursor(q.cursor.as_deref())?;
    let page = state.voice.history(caller.subscription_id, direction, after, limit).await?;
    let next_cursor = page.next.map(encode_cursor);
    let calls = page.rows.into_iter().map(CallView::from).collect();
    Ok(Json(CallsResponse { calls, next_cursor }))
}

/// The bearer token of a WebSocket handshake: the `Authorization` header, else a
/// `bearer.<token>` subprotocol.
fn ws_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty());
    }
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix("bearer."))
        .filter(|t| !t.is_empty())
}

async fn ws_caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    super::extract::authenticate(state, ws_token(headers)).await
}

fn upgrade(ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>) -> Result<WebSocketUpgrade, ApiError> {
    let ws = ws.map_err(|_| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::InvalidRequest,
            "this endpoint is a WebSocket: send an HTTP/1.1 Upgrade: websocket request",
        )
    })?;
    Ok(ws
        .protocols([SUBPROTOCOL])
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .read_buffer_size(READ_BUFFER))
}

pub async fn presence(
    State(state): State<AppState>,
    Path(phone_number): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let caller = ws_caller(&state, &headers).await?;
    let subscription = state.voice.presence(&caller, &phone_number)?;
    Ok(upgrade(ws)?.on_upgrade(move |socket| presence_pump(socket, subscription)))
}

async fn presence_pump(socket: WebSocket, mut subscription: crate::voice::Presence) {
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(PRESENCE_PING);
    ping.reset();
    loop {
        tokio::select! {
            event = subscription.events.recv() => match event {
                Some(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            _ = subscription.shutdown.changed() => {
                let frame = CloseFrame { code: 1001, reason: "server shutting down".into() };
                let _ = sink.send(Message::Close(Some(frame))).await;
                return;
            }
        }
    }
}

pub async fn stream(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let caller = ws_caller(&state, &headers).await?;
    let ws = upgrade(ws)?;
    let claim = state.voice.claim_stream(caller.subscription_id, &call_id)?;
    Ok(ws.on_upgrade(move |socket| async move {
        let (to_agent_tx, to_agent) = mpsc::channel(TO_AGENT_QUEUE);
        let (from_agent, from_agent_rx) = mpsc::channel(FROM_AGENT_QUEUE);
        claim.attach(StreamIo { to_agent: to_agent_tx, from_agent: from_agent_rx }).await;
        stream_pump(socket, to_agent, from_agent).await;
    }))
}

/// Moves frames between the socket and the call until either side ends. The call sees the
/// socket close as its `from_agent` channel closing.
async fn stream_pump(socket: WebSocket, mut to_agent: mpsc::Receiver<ToAgent>, from_agent: mpsc::Sender<FromAgent>) {
    let (mut sink, mut stream) = socket.split();
    let writer = async {
        while let Some(out) = to_agent.recv().await {
            let msg = match out {
                ToAgent::Audio(bytes) => Message::Binary(bytes),
                ToAgent::Text(text) => Message::Text(text.into()),
                ToAgent::Close(close) => {
                    let frame = CloseFrame { code: close.code(), reason: close.reason().into() };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
            };
            if sink.send(msg).await.is_err() {
                return;
            }
        }
    };
    let reader = async {
        while let Some(Ok(msg)) = stream.next().await {
            let forwarded = match msg {
                Message::Binary(bytes) => from_agent.send(FromAgent::Audio(bytes)).await,
                Message::Text(text) => from_agent.send(FromAgent::Text(text.to_string())).await,
                Message::Close(_) => return,
                Message::Ping(_) | Message::Pong(_) => Ok(()),
            };
            if forwarded.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
    // Completes the closing handshake: answers a client's close frame (queued by the protocol
    // layer when it was read) or flushes our own, then ends the stream.
    let _ = sink.close().await;
}
