//! Discovery documents, all rendered once at start from one source each: the payment terms the
//! server actually charges (so `x-payment-info`, the Bazaar block of the 402 and
//! `/.well-known/x402` can never disagree with the challenge), the MCP tool router (the server
//! card lists exactly the tools served) and the agent guides kept beside this file and in `docs/`.
//!
//! - `/openapi.json`: `servers`, `x-service-info` (top level, as the paymentauth draft puts it, and
//!   under `info`, where some indexers look), and the paid operation's `x-payment-info`.
//! - `/.well-known/x402` and `/.well-known/x402.json`: `{version, resources, instructions}`.
//! - `/.well-known/mcp.json`: the MCP server card.
//! - `/llms-full.txt`: `/llms.txt`, the first five minutes and the voice protocol in one file.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::AppState;
use crate::payments::terms::PaymentTerms;
use crate::payments::wire::checksummed;

/// Rendered discovery documents.
#[derive(Debug, Clone)]
pub struct Documents {
    pub openapi: String,
    pub x402: String,
    pub mcp_card: String,
    pub llms_full: String,
}

/// The price in whole units of a 6-decimal stablecoin, e.g. `1000.00`.
fn usd(terms: &PaymentTerms) -> String {
    let atomic: u128 = terms.price.try_into().unwrap_or(u128::MAX);
    format!("{}.{:02}", atomic / 1_000_000, (atomic % 1_000_000) / 10_000)
}

pub fn render(public_url: &str, service_name: &str, terms: &PaymentTerms) -> Documents {
    let service_info = json!({
        "name": service_name,
        "categories": ["communication", "developer-tools", "agentic-payments"],
        "docs": {
            "homepage": public_url,
            "apiReference": format!("{public_url}/openapi.json"),
            "llms": format!("{public_url}/llms.txt"),
            "llmsFull": format!("{public_url}/llms-full.txt"),
            "mcp": format!("{public_url}/.well-known/mcp.json"),
        },
        "documentation": format!("{public_url}/llms.txt"),
    });
    let payment_info = json!({
        "protocols": [{"x402": {"version": 2, "scheme": "exact"}}],
        "price": {"mode": "fixed", "currency": "USD", "amount": usd(terms)},
        "intent": "charge",
        "method": "x402",
        "amount": terms.price.to_string(),
        "currency": checksummed(terms.asset),
        "network": terms.network.caip2(),
        "payTo": checksummed(terms.pay_to),
        "description": terms.description,
    });
    let mut doc: Value =
        serde_json::from_str(include_str!("openapi.json")).expect("invariant: openapi.json is valid JSON (tested)");
    doc["servers"] = json!([{ "url": public_url }]);
    doc["x-service-info"] = service_info.clone();
    doc["info"]["x-service-info"] = service_info;
    if let Some(op) = doc.pointer_mut("/paths/~1sms~1subscribe/post") {
        op["x-payment-info"] = payment_info;
    }

    let x402 = json!({
        "version": 1,
        "resources": [terms.resource_url],
        "instructions": format!(
            "POST {} without payment answers 402 with the x402 challenge (PAYMENT-REQUIRED header, v2; JSON \
             body, v1 fields too). Pay the `exact` scheme: an EIP-3009 transferWithAuthorization of {} USDC \
             ({} atomic units of {} on {}) to {}. The answer carries a bearer token and an E.164 number for a \
             year. Agents with only MCP: the `subscribe` tool at {public_url}/mcp takes the same payment in \
             _meta[\"x402/payment\"]. Guide: {public_url}/llms.txt",
            terms.resource_url,
            usd(terms),
            terms.price,
            checksummed(terms.asset),
            terms.network.caip2(),
            checksummed(terms.pay_to),
        ),
    });

    let tools: Vec<Value> = super::mcp::Mcp::tools()
        .into_iter()
        .map(|t| json!({"name": t.name, "description": t.description, "inputSchema": t.input_schema}))
        .collect();
    let mcp_card = json!({
        "name": service_name,
        "title": "agentline: a phone number for your agent",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "SMS and voice on a real E.164 number, bought by the agent itself with USDC over x402.",
        "transport": {"type": "streamable-http", "url": format!("{public_url}/mcp")},
        "protocolVersions": ["2026-07-28", "2025-11-25"],
        "authentication": {
            "type": "bearer",
            "description": "Authorization: Bearer <token>. Get a token with the `subscribe` tool (x402, no token \
                needed) or POST /sms/subscribe.",
        },
        "payments": {"x402": {"tool": "subscribe", "meta": "x402/payment", "resource": terms.resource_url}},
        "capabilities": {"tools": {"listChanged": false}},
        "tools": tools,
        "documentation": format!("{public_url}/llms.txt"),
    });

    let llms = super::render_llms_txt(public_url, service_name);
    let llms_full = format!(
        "{llms}\n\n---\n\n{}\n\n---\n\n{}",
        include_str!("../../docs/first-five-minutes.md").replace("{base_url}", public_url),
        include_str!("../../docs/voice-protocol.md"),
    );

    Documents {
        openapi: doc.to_string(),
        x402: serde_json::to_string_pretty(&x402).expect("invariant: JSON values serialize"),
        mcp_card: serde_json::to_string_pretty(&mcp_card).expect("invariant: JSON values serialize"),
        llms_full,
    }
}

pub async fn x402(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.docs.x402.clone())
}

pub async fn mcp_card(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.docs.mcp_card.clone())
}

pub async fn llms_full(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], state.docs.llms_full.clone())
}
