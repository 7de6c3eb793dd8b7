//! Paid subscription and wallet recovery: `POST /sms/subscribe` (x402), `POST /sms/auth/nonce`,
//! `POST /sms/auth` (EIP-191).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::AppJson;
use super::service_errors::pool_exhausted;
use crate::clock::rfc3339;
use crate::error::{ApiError, ErrorCode};
use crate::payments::wire::{self, MAX_PAYMENT_HEADER_BYTES};
use crate::subscriptions::SubscribeError;

#[derive(Serialize)]
struct Subscribed {
    token: String,
    number: String,
    expires_at: String,
    renewed: bool,
    /// Additive: true when no money moved (settlement = none).
    sandbox: bool,
}

/// A 402 with the challenge: the contract's body (plus `message`) and the v2 header.
fn payment_required(state: &AppState, code: &str, message: &str) -> Response {
    let terms = state.subscriptions.terms();
    let body = wire::challenge_body(terms, code, message);
    let header = wire::encode_header(&wire::payment_required_v2(terms, code));
    let mut resp = (StatusCode::PAYMENT_REQUIRED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&header) {
        resp.headers_mut().insert("payment-required", v);
    }
    resp
}

pub async fn subscribe(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let payment = headers.get("payment-signature").or_else(|| headers.get("x-payment"));
    let Some(payment) = payment else {
        return payment_required(
            &state,
            "payment_required",
            "Pay with x402: sign the offer in accepts[] (EIP-3009) and retry with PAYMENT-SIGNATURE (v2) or \
             X-PAYMENT (v1). Clients capping a payment at $1 by default must raise the cap to the amount.",
        );
    };
    if payment.len() > MAX_PAYMENT_HEADER_BYTES {
        return ApiError::invalid_request(format!("payment header larger than {MAX_PAYMENT_HEADER_BYTES} bytes"))
            .into_code("invalid_payload")
            .into_response();
    }
    let Ok(payment) = payment.to_str() else {
        return ApiError::invalid_request("payment header is not ASCII base64")
            .into_code("invalid_payload")
            .into_response();
    };
    let idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    match state.subscriptions.subscribe(payment, idempotency_key).await {
        Ok(paid) => {
            let settlement = wire::encode_header(&paid.settlement);
            let body = Subscribed {
                token: paid.token.expose().to_owned(),
                number: paid.number,
                expires_at: rfc3339(paid.expires_at_ms),
                renewed: paid.renewed,
                sandbox: paid.sandbox,
            };
            let mut resp = Json(body).into_response();
            if let Ok(v) = HeaderValue::from_str(&settlement) {
                resp.headers_mut().insert("payment-response", v.clone());
                resp.headers_mut().insert("x-payment-response", v);
            }
            resp.headers_mut().insert(
                "access-control-expose-headers",
                HeaderValue::from_static("PAYMENT-RESPONSE, X-PAYMENT-RESPONSE"),
            );
            resp
        }
        Err(SubscribeError::Undecodable { reason, message }) => {
            ApiError::invalid_request(message).into_code(reason.code()).into_response()
        }
        Err(SubscribeError::Refused { refusal, message }) => payment_required(&state, refusal.code(), &message),
        Err(SubscribeError::PoolExhausted) => pool_exhausted().into_response(),
        Err(SubscribeError::InProgress) => ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            "the first attempt with this idempotency key is still settling; retry shortly",
        )
        .into_response(),
        Err(SubscribeError::Store(err)) => ApiError::internal(&err).into_response(),
        Err(err @ SubscribeError::Task(_)) => ApiError::internal(&err).into_response(),
    }
}

#[derive(Deserialize)]
struct NonceBody {
    address: Option<String>,
}

#[derive(Serialize)]
pub struct NonceResponse {
    nonce: String,
    expires_in: i64,
    /// Additive: the exact text to sign with `personal_sign`.
    message: String,
}

/// The body is optional; when present it must be JSON.
pub async fn request_nonce(State(state): State<AppState>, body: Bytes) -> Result<Json<NonceResponse>, ApiError> {
    let address = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let parsed: NonceBody = serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid_request(format!("body must be JSON like {{\"address\": \"0x…\"}}: {e}")))?;
        parsed.address
    };
    let issued = state.subscriptions.issue_nonce(address.as_deref()).await?;
    Ok(Json(NonceResponse { nonce: issued.nonce, expires_in: issued.expires_in, message: issued.message }))
}

#[derive(Deserialize)]
pub struct RecoverBody {
    wallet: Option<String>,
    nonce: Option<String>,
    signature: Option<String>,
}

#[derive(Serialize)]
pub struct RecoverResponse {
    token: String,
    number: String,
    expires_at: String,
}

pub async fn recover_token(
    State(state): State<AppState>,
    AppJson(body): AppJson<RecoverBody>,
) -> Result<Json<RecoverResponse>, ApiError> {
    let (Some(wallet), Some(nonce), Some(signature)) = (&body.wallet, &body.nonce, &body.signature) else {
        let missing: Vec<&str> = [("wallet", &body.wallet), ("nonce", &body.nonce), ("signature", &body.signature)]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        return Err(ApiError::invalid_request(format!("missing required fields: {}", missing.join(", "))));
    };
    let recovered = state.subscriptions.recover(wallet, nonce, signature).await?;
    Ok(Json(RecoverResponse {
        token: recovered.token.expose().to_owned(),
        number: recovered.number,
        expires_at: rfc3339(recovered.expires_at_ms),
    }))
}
