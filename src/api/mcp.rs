//! The MCP server at `/mcp` (streamable HTTP, official Rust SDK `rmcp`): the same services as the
//! REST API, as tools an agent can call on first sight. Each tool is a thin call into a domain
//! service, authenticated by the same bearer token (`Authorization` on the HTTP request).
//!
//! Both the stateless 2026-07-28 protocol and the session-based 2025-11-25 one are served (rmcp
//! negotiates). Long waits (`receive_sms`, `wait_for_code`) send progress notifications every
//! second when the client asked for progress. `subscribe` is paid through the x402 MCP transport:
//! without `_meta["x402/payment"]` it answers `isError` with the x402 `PaymentRequired` object in
//! `structuredContent` and as text; with it, the payment is verified and settled exactly as on
//! `POST /sms/subscribe`, and `_meta["x402/payment-response"]` carries the settlement.

use std::time::Duration;

use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, MetaObject, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::pagination::{encode_cursor, parse_cursor};
use super::service_errors::pool_exhausted;
use crate::clock::{self, rfc3339};
use crate::error::{ApiError, ErrorCode};
use crate::payments::wire;
use crate::store::{Direction, HistoryFilter};
use crate::subscriptions::{Caller, SubscribeError};
use crate::voice::DialRequest;

const DEFAULT_WAIT_SECS: u64 = 25;

#[derive(Clone)]
pub struct Mcp {
    state: AppState,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendSmsArgs {
    /// Destination in E.164, e.g. "+15555550199".
    pub to: String,
    /// Text of the message (up to 1600 characters; long texts are split into SMS parts for you).
    pub body: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReceiveSmsArgs {
    /// Seconds to wait for a message when none is waiting (0 to 30). Default 25.
    pub wait_seconds: Option<u64>,
    /// Most messages to return (1 to 100). Default 20.
    pub limit: Option<i64>,
    /// The `next_cursor` of your previous call. With it, messages you were already given after
    /// that point are returned again, so a call whose answer you lost loses nothing.
    pub cursor: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListMessagesArgs {
    /// "sent", "received" or "both" (default).
    pub direction: Option<String>,
    /// Page size (1 to 100). Default 20.
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WaitForCodeArgs {
    /// Seconds to wait for a message carrying a one-time code (0 to 30). Default 25.
    pub wait_seconds: Option<u64>,
    /// Only accept codes from this sender (E.164 like "+15555550199", or a name like "Google").
    pub from: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PlaceCallArgs {
    /// Number to call, E.164 (e.g. "+15555550199").
    pub to: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct HangupCallArgs {
    /// The `call_id` from place_call or from an incoming-call event.
    pub call_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListCallsArgs {
    /// "outbound", "inbound" or "both" (default).
    pub direction: Option<String>,
    /// Page size (1 to 100). Default 20.
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SubscribeArgs {
    /// Optional idempotency key (16 to 128 characters of A-Z a-z 0-9 _ -): a retry with the same key
    /// never pays twice.
    pub idempotency_key: Option<String>,
}

fn ok(value: Value) -> CallToolResult {
    CallToolResult::structured(value)
}

/// A refusal as a tool error: the same code, message and extras as the REST envelope (an
/// internal failure was logged by [`ApiError::internal`] and says only that).
fn refuse(err: ApiError) -> CallToolResult {
    let mut body = json!({"error": err.code.as_str(), "message": err.message});
    if let (Some(extra), Some(map)) = (err.extra, body.as_object_mut()) {
        map.extend(extra);
    }
    CallToolResult::structured_error(body)
}

/// A tool's outcome: its structured result, or its refusal.
fn answer(outcome: Result<Value, ApiError>) -> Result<CallToolResult, ErrorData> {
    Ok(outcome.map_or_else(refuse, ok))
}

/// Tools wait at most as long as `/sms/receive?wait=` may; 25 s unless asked.
fn clamp_wait(wait: Option<u64>, max_secs: u64) -> Duration {
    Duration::from_secs(wait.unwrap_or(DEFAULT_WAIT_SECS).min(max_secs))
}

fn clamp_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(20).clamp(1, 100)
}

impl Mcp {
    /// The tools this server offers (for the server card).
    pub fn tools() -> Vec<rmcp::model::Tool> {
        Self::tool_router().list_all()
    }

    pub fn new(state: AppState) -> Self {
        Self { state, tool_router: Self::tool_router() }
    }

    /// The subscription behind the HTTP request's bearer token.
    async fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Caller, ApiError> {
        let token = ctx.extensions.get::<Parts>().and_then(super::extract::bearer).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "send your token as `Authorization: Bearer <token>` on /mcp",
            )
        })?;
        super::extract::authenticate(&self.state, Some(token)).await
    }

    fn wait(&self, asked: Option<u64>) -> Duration {
        clamp_wait(asked, self.state.limits.max_wait_secs)
    }

    /// Sends `notifications/progress` once a second while `work` runs, if the client asked.
    async fn with_progress<T>(
        ctx: &RequestContext<RoleServer>,
        total_secs: u64,
        what: &str,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let Some(token) = ctx.meta.get_progress_token() else { return work.await };
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.reset();
        let mut elapsed = 0u64;
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tick.tick() => {
                    elapsed += 1;
                    let param = ProgressNotificationParam::new(token.clone(), elapsed as f64)
                        .with_total(total_secs as f64)
                        .with_message(format!("{what} ({elapsed} s of {total_secs} s)"));
                    let _ = ctx.peer.notify_progress(param).await;
                }
            }
        }
    }
}

#[tool_router]
impl Mcp {
    #[tool(description = "Your phone number and subscription: number, plan, status (active / expired = grace \
        period, read-only) and expiry. Call this first to learn which number you own.")]
    async fn get_number(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        answer(self.caller(&ctx).await.map(|caller| {
            let now = clock::now_ms();
            json!({
                "number": caller.number.as_str(),
                "plan": caller.plan,
                "status": if caller.is_active(now) { "active" } else { "expired" },
                "expires_at": rfc3339(caller.expires_at_ms),
                "wallet": caller.wallet.to_string(),
            })
        }))
    }

    #[tool(description = "Subscription status: whether it is active, when it expires, days left. Renew by \
        calling `subscribe` again from the same wallet.")]
    async fn subscription_status(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        answer(self.caller(&ctx).await.map(|caller| {
            let now = clock::now_ms();
            let days_left = ((caller.expires_at_ms - now).max(0)) / 86_400_000;
            json!({
                "active": caller.is_active(now),
                "number": caller.number.as_str(),
                "plan": caller.plan,
                "created_at": rfc3339(caller.created_at_ms),
                "expires_at": rfc3339(caller.expires_at_ms),
                "days_left": days_left,
            })
        }))
    }

    #[tool(description = "Send an SMS from your number. Returns a message_id; delivery continues in the \
        background (see list_messages for status: queued, sent, delivered, failed).")]
    async fn send_sms(
        &self,
        Parameters(args): Parameters<SendSmsArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                let caller = self.caller(&ctx).await?;
                let q = self.state.sms.send(&caller, &args.to, args.body).await?;
                Ok(json!({
                    "message_id": q.message_id,
                    "status": "queued",
                    "segments": q.segments,
                    "created_at": rfc3339(q.created_at_ms),
                }))
            }
            .await,
        )
    }

    #[tool(description = "Receive SMS sent to your number. Waits up to wait_seconds (default 25) for a message \
        if none is waiting, with progress notifications. Each message is handed out once; pass the returned \
        next_cursor on your next call so that a lost answer is repeated rather than lost.")]
    async fn receive_sms(
        &self,
        Parameters(args): Parameters<ReceiveSmsArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                let caller = self.caller(&ctx).await?;
                let wait = self.wait(args.wait_seconds);
                let limit = clamp_limit(args.limit);
                let owner = caller.subscription_id;
                let sms = self.state.sms.clone();
                let work = async move {
                    // Messages already handed out after the cursor come first (a repeated call).
                    let mut messages = match args.cursor {
                        Some(after) => sms.received_after(owner, after, limit).await?,
                        None => Vec::new(),
                    };
                    if messages.is_empty() {
                        messages = sms.receive(owner, caller.number.as_str(), limit, wait).await?.messages;
                    }
                    Ok::<_, crate::sms::SmsError>(messages)
                };
                let messages = Self::with_progress(&ctx, wait.as_secs(), "waiting for SMS", work).await?;
                let next_cursor = messages.iter().map(|m| m.id).max().or(args.cursor);
                let messages: Vec<Value> = messages
                    .into_iter()
                    .map(|m| {
                        json!({
                            "id": m.id,
                            "message_id": m.message_id,
                            "from_number": m.peer,
                            "to_number": m.number,
                            "body": m.body,
                            "received_at": rfc3339(m.received_at.unwrap_or(m.created_at)),
                        })
                    })
                    .collect();
                Ok(json!({"count": messages.len(), "messages": messages, "next_cursor": next_cursor}))
            }
            .await,
        )
    }

    #[tool(description = "Wait for the next SMS that carries a one-time code (OTP, verification code, PIN) and \
        return {code, sender, message_id}. Use it right after triggering a sign-up or login that texts your \
        number. Optional `from` keeps only that sender's codes. Each code is returned once; other messages \
        are left for receive_sms.")]
    async fn wait_for_code(
        &self,
        Parameters(args): Parameters<WaitForCodeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                let caller = self.caller(&ctx).await?;
                let wait = self.wait(args.wait_seconds);
                let work = self.state.sms.wait_for_code(caller.subscription_id, args.from.as_deref(), wait);
                Ok(match Self::with_progress(&ctx, wait.as_secs(), "waiting for a code", work).await? {
                    Some(c) => json!({
                        "code": c.code,
                        "sender": c.message.peer,
                        "message_id": c.message.message_id,
                        "body": c.message.body,
                    }),
                    None => json!({"code": null, "sender": null, "message_id": null, "timed_out": true}),
                })
            }
            .await,
        )
    }

    #[tool(description = "SMS history of your subscription, newest first, with delivery status. Paginate with \
        next_cursor.")]
    async fn list_messages(
        &self,
        Parameters(args): Parameters<ListMessagesArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                let caller = self.caller(&ctx).await?;
                let direction = crate::sms::parse_direction(args.direction.as_deref())?;
                let after = parse_cursor(args.cursor.as_deref())?;
                let filter = HistoryFilter { direction, since_ms: None, until_ms: None, after };
                let page = self.state.sms.history(caller.subscription_id, &filter, clamp_limit(args.limit)).await?;
                let messages: Vec<Value> = page
                    .rows
                    .into_iter()
                    .map(|r| {
                        let sent = r.direction == Direction::Sent;
                        json!({
                            "message_id": r.message_id,
                            "direction": r.direction.as_str(),
                            "from_number": if sent { &r.number } else { &r.peer },
                            "to_number": if sent { &r.peer } else { &r.number },
                            "body": r.body,
                            "status": r.status,
                            "segments": r.segments,
                            "created_at": rfc3339(r.created_at),
                        })
                    })
                    .collect();
                Ok(json!({"messages": messages, "next_cursor": page.next.map(encode_cursor)}))
            }
            .await,
        )
    }

    #[tool(description = "Call a phone number from your number. Returns call_id and stream_url once the far end \
        rings. Open stream_url as a WebSocket (header Authorization: Bearer <token>) to talk: binary frames of \
        16 kHz mono 16-bit PCM both ways, 640 bytes per 20 ms from the server; close it to hang up. The state \
        says `busy`, `no_answer` or `failed` if the call ended before ringing.")]
    async fn place_call(
        &self,
        Parameters(args): Parameters<PlaceCallArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                let caller = self.caller(&ctx).await?;
                let request = DialRequest { from: None, to: args.to, callback_sip_uri: None };
                let dialed = self.state.voice.dial(&caller, request).await?;
                Ok(json!({
                    "call_id": dialed.call_id,
                    "stream_url": self.state.voice.stream_url(&dialed.call_id),
                    "state": dialed.state.as_str(),
                }))
            }
            .await,
        )
    }

    #[tool(description = "Hang up one of your calls (placed or received) by its call_id. The far end is told \
        at once; the call's stream, if open, receives a hangup event and closes.")]
    async fn hangup_call(
        &self,
        Parameters(args): Parameters<HangupCallArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                let caller = self.caller(&ctx).await?;
                self.state.voice.hangup(caller.subscription_id, &args.call_id)?;
                Ok(json!({"status": "hangup_sent", "call_id": args.call_id}))
            }
            .await,
        )
    }

    #[tool(description = "Your call history, newest first: direction, parties, final state, end reason and \
        duration. Paginate with next_cursor.")]
    async fn list_calls(
        &self,
        Parameters(args): Parameters<ListCallsArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                let caller = self.caller(&ctx).await?;
                let direction = crate::voice::parse_direction(args.direction.as_deref())?;
                let after = parse_cursor(args.cursor.as_deref())?;
                let page =
                    self.state.voice.history(caller.subscription_id, direction, after, clamp_limit(args.limit)).await?;
                let calls: Vec<super::voice::CallView> =
                    page.rows.into_iter().map(super::voice::CallView::from).collect();
                Ok(json!({"calls": calls, "next_cursor": page.next.map(encode_cursor)}))
            }
            .await,
        )
    }

    #[tool(description = "Buy (or renew) a yearly phone-number subscription with USDC over x402. Call it once \
        without payment: the error result carries the x402 PaymentRequired (accepts[] with amount, asset, \
        payTo, network). Sign an EIP-3009 transferWithAuthorization for accepts[0] and call again with the \
        x402 payment payload in _meta[\"x402/payment\"]. Returns your token (use it as Bearer on every \
        other call) and your number. No token needed for this tool.")]
    async fn subscribe(
        &self,
        Parameters(args): Parameters<SubscribeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let terms = self.state.subscriptions.terms();
        let required = |code: &str, message: &str| {
            let mut challenge = wire::payment_required_v2(terms, code);
            challenge["message"] = message.into();
            let mut result = CallToolResult::structured_error(challenge.clone());
            result.content = vec![ContentBlock::text(challenge.to_string())];
            result
        };
        let Some(payment) = ctx.meta.get("x402/payment") else {
            return Ok(required(
                "payment_required",
                "Pay with x402: sign an EIP-3009 authorization for accepts[0] and call subscribe again with the \
                 x402 v2 payment payload in _meta[\"x402/payment\"].",
            ));
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(payment.to_string());
        match self.state.subscriptions.subscribe(&encoded, args.idempotency_key.as_deref()).await {
            Ok(paid) => {
                let mut result = ok(json!({
                    "token": paid.token.expose(),
                    "number": paid.number,
                    "expires_at": rfc3339(paid.expires_at_ms),
                    "renewed": paid.renewed,
                    "sandbox": paid.sandbox,
                }));
                let mut meta = MetaObject::default();
                meta.insert(
                    "x402/payment-response".to_owned(),
                    serde_json::to_value(&paid.settlement).unwrap_or(Value::Null),
                );
                result.meta = Some(meta);
                Ok(result)
            }
            Err(SubscribeError::Refused { refusal, message }) => Ok(required(refusal.code(), &message)),
            Err(SubscribeError::Undecodable { reason, message }) => Ok(required(reason.code(), &message)),
            Err(SubscribeError::PoolExhausted) => Ok(refuse(pool_exhausted())),
            Err(err @ SubscribeError::InProgress) => {
                Ok(refuse(ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, err.to_string())))
            }
            Err(SubscribeError::Store(err)) => Ok(refuse(ApiError::internal(&err))),
            Err(err @ SubscribeError::Task(_)) => Ok(refuse(ApiError::internal(&err))),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Mcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agentline", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "A phone number for your agent. Start with get_number (needs your bearer token), or subscribe \
                 (x402, USDC) if you have none. Then send_sms / receive_sms / wait_for_code for SMS, \
                 place_call + the stream_url WebSocket for voice.",
            )
    }
}
