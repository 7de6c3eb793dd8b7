//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document and
//! the agent guide.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use crate::metrics::PoolLabels;
use crate::telco::LinkState;

const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);
const READY_SETTLEMENT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    uptime: u64,
    version: &'static str,
}

pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health { status: "ok", uptime: state.started.elapsed().as_secs(), version: env!("CARGO_PKG_VERSION") })
}

#[derive(Serialize)]
struct Check {
    status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// One readiness check's outcome.
#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum CheckStatus {
    Ok,
    Fail,
}

#[derive(Serialize)]
struct Checks {
    database: Check,
    sms_network: Check,
    voice_network: Check,
    /// Reported, not gating: without settlement SMS and voice still serve, and a subscribe fails
    /// cleanly (402) without taking a number or money.
    settlement: Check,
}

#[derive(Serialize)]
pub struct Readiness {
    status: &'static str,
    checks: Checks,
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = match tokio::time::timeout(READY_DB_TIMEOUT, state.subscriptions.ping_store()).await {
        Ok(Ok(())) => Check { status: CheckStatus::Ok, name: None, error: None, reason: None },
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database check failed");
            Check {
                status: CheckStatus::Fail,
                name: None,
                error: Some("database unreachable".to_owned()),
                reason: None,
            }
        }
        Err(_) => {
            Check { status: CheckStatus::Fail, name: None, error: Some("database timed out".to_owned()), reason: None }
        }
    };
    let network = state.sms.network();
    let sms_network = match network.link_state() {
        LinkState::Up => Check { status: CheckStatus::Ok, name: Some(network.name()), error: None, reason: None },
        LinkState::Down { reason } => {
            Check { status: CheckStatus::Fail, name: Some(network.name()), error: None, reason: Some(reason) }
        }
    };
    let voice = state.voice.network();
    let voice_network = match voice.link_state() {
        LinkState::Up => Check { status: CheckStatus::Ok, name: Some(voice.name()), error: None, reason: None },
        LinkState::Down { reason } => {
            Check { status: CheckStatus::Fail, name: Some(voice.name()), error: None, reason: Some(reason) }
        }
    };
    let all_ok = [&database, &sms_network, &voice_network].iter().all(|c| c.status == CheckStatus::Ok);
    let kind = state.subscriptions.settlement_kind().as_str();
    let settlement = match state.subscriptions.probe_settlement(READY_SETTLEMENT_TIMEOUT).await {
        Ok(()) => Check { status: CheckStatus::Ok, name: Some(kind), error: None, reason: None },
        Err(err) => Check { status: CheckStatus::Fail, name: Some(kind), error: None, reason: Some(err.to_string()) },
    };
    let code = if all_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status = if all_ok { "ready" } else { "unavailable" };
    (code, Json(Readiness { status, checks: Checks { database, sms_network, voice_network, settlement } }))
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.subscriptions.pool().await {
        Ok(c) => {
            for (label, n) in
                [("free", c.free), ("reserved", c.reserved), ("assigned", c.assigned), ("quarantined", c.quarantined)]
            {
                state.metrics.pool_numbers.get_or_create(&PoolLabels { state: label }).set(n);
            }
        }
        Err(err) => tracing::warn!(error = %err, "metrics: pool counts unavailable"),
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
        .into_response()
}

pub async fn openapi(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi.to_string()).into_response()
}

pub async fn llms_txt(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], state.llms_txt.to_string()).into_response()
}
