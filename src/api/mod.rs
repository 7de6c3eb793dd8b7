//! The HTTP edge: routing, extractors and handlers. Handlers parse and validate input, call
//! one domain service, and shape the answer; business rules live in the services.
//!
//! Every response that is not a success carries the contract's error envelope, including
//! unknown routes, wrong methods, extractor rejections and panics.

mod admin;
mod discovery;
mod extract;
mod mcp;
mod ops;
mod pagination;
mod service_errors;
mod sms;
mod subscriptions;
mod voice;
mod wellknown;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::Layer;

use crate::error::{ApiError, ErrorCode};
use crate::metrics::{Metrics, RequestLabels};
use crate::sms::SmsService;
use crate::subscriptions::SubscriptionService;

/// Everything a handler can reach: one `Arc`, so the clone that every request's extractors
/// make is a reference-count increment (cloning the fields was 3-4 % of the server's CPU on the
/// SMS path: a `String`, a `CancellationToken` and a dozen `Arc`s per clone).
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl AppState {
    pub fn new(inner: AppStateInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

pub struct AppStateInner {
    pub subscriptions: SubscriptionService,
    pub sms: SmsService,
    pub voice: crate::voice::VoiceService,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    pub admin_key_hash: Option<[u8; 32]>,
    pub limits: Arc<crate::config::LimitsConfig>,
    /// Host (and port) of the public URL, for the MCP endpoint's allowed hosts.
    pub public_host: Option<String>,
    /// Cancelled at shutdown: ends the MCP endpoint's open streams so shutdown does not wait on them.
    pub mcp_shutdown: tokio_util::sync::CancellationToken,
    /// `/.well-known/*` and `/llms-full.txt`, rendered once at start.
    pub docs: Arc<wellknown::Documents>,
    /// The OpenAPI document, rendered once at start.
    pub openapi: Arc<str>,
    pub llms_txt: Arc<str>,
}

pub fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .route("/sms/availability", get(discovery::availability))
        .route("/sms/waitlist", post(discovery::join_waitlist))
        .route("/sms/demo", post(discovery::demo))
        .route("/sms/subscribe", post(subscriptions::subscribe))
        .route("/sms/auth/nonce", post(subscriptions::request_nonce))
        .route("/sms/auth", post(subscriptions::recover_token))
        .route("/sms/number", get(sms::get_number))
        .route("/sms/send", post(sms::send_sms))
        .route("/sms/receive", get(sms::receive_sms))
        .route("/sms/messages", get(sms::list_messages))
        .route("/sms/code", get(sms::wait_for_code))
        .route("/sms/voice/dial", post(voice::dial))
        .route("/sms/voice/hangup", post(voice::hangup))
        .route("/sms/voice/calls", get(voice::list_calls))
        .route("/sms/voice/inbound", get(voice::get_inbound).put(voice::put_inbound))
        .route("/sms/voice/presence/{phone_number}", get(voice::presence))
        .route("/sms/voice/stream/{call_id}", get(voice::stream))
        .route("/health", get(ops::health))
        .route("/health/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/llms.txt", get(ops::llms_txt))
        .route("/llms-full.txt", get(wellknown::llms_full))
        .route("/.well-known/x402", get(wellknown::x402))
        .route("/.well-known/x402.json", get(wellknown::x402))
        .route("/.well-known/mcp.json", get(wellknown::mcp_card));
    if state.admin_key_hash.is_some() {
        app = app
            .route("/admin/numbers", post(admin::add_numbers).get(admin::list_numbers))
            .route("/admin/subscriptions", post(admin::grant_subscription));
    }
    app = app.nest_service("/mcp", axum::middleware::from_fn(session_closed_status).layer(mcp_service(state.clone())));
    let body_limit = state.limits.max_body_bytes;
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// The MCP endpoint: streamable HTTP, sessions for 2025-11-25 clients, stateless for 2026-07-28.
/// Allowed hosts: loopback plus the public URL's host (DNS-rebinding guard).
fn mcp_service(
    state: AppState,
) -> rmcp::transport::streamable_http_server::StreamableHttpService<
    mcp::Mcp,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if let Some(host) = state.public_host.as_deref() {
        hosts.push(host.to_owned());
    }
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_cancellation_token(state.mcp_shutdown.child_token());
    StreamableHttpService::new(move || Ok(mcp::Mcp::new(state.clone())), Default::default(), config)
}

/// `DELETE /mcp` (an MCP client ending its session) answers 204: the SDK's answer, 202, is not
/// what clients expect of a DELETE (the Python SDK logs "Session termination failed: 202").
async fn session_closed_status(req: Request, next: Next) -> Response {
    let delete = req.method() == axum::http::Method::DELETE;
    let mut response = next.run(req).await;
    if delete && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed, "method not allowed on this endpoint")
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(&"handler panicked").into_response()
}

/// Counts every request by matched route, method and status.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let labels = RequestLabels { route, method, status: response.status().as_u16() };
    state.metrics.http_requests.get_or_create(&labels).inc();
    response
}

/// Every discovery document (OpenAPI, `/.well-known/*`, `/llms-full.txt`) for this server.
pub fn render_documents(
    public_url: &str,
    service_name: &str,
    terms: &crate::payments::terms::PaymentTerms,
) -> wellknown::Documents {
    wellknown::render(public_url, service_name, terms)
}

/// The agent guide (`llms.txt` beside this file) with this server's URL and name.
pub fn render_llms_txt(public_url: &str, service_name: &str) -> String {
    include_str!("llms.txt").replace("{base_url}", public_url).replace("{service_name}", service_name)
}
