//! The operator admin API, mounted only when `AGENTLINE_ADMIN_KEY` is set:
//! `POST /admin/numbers`, `GET /admin/numbers`, `POST /admin/subscriptions`.
//! Every action is audited in the same transaction as the action.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{Admin, AppJson};
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::wallet::Address;

const MAX_NUMBERS_PER_REQUEST: usize = 10_000;
const MAX_GRANT_DAYS: u32 = 3650;
const ACTOR: &str = "admin-api";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddNumbers {
    numbers: Vec<String>,
}

#[derive(Serialize)]
pub struct AddNumbersResponse {
    added: u64,
    ignored: u64,
}

pub async fn add_numbers(
    State(state): State<AppState>,
    _admin: Admin,
    AppJson(req): AppJson<AddNumbers>,
) -> Result<Json<AddNumbersResponse>, ApiError> {
    if req.numbers.is_empty() || req.numbers.len() > MAX_NUMBERS_PER_REQUEST {
        return Err(ApiError::invalid_request(format!("numbers must hold 1 to {MAX_NUMBERS_PER_REQUEST} entries")));
    }
    let done = state.subscriptions.add_numbers(req.numbers, ACTOR).await?;
    Ok(Json(AddNumbersResponse { added: done.added, ignored: done.already_present }))
}

#[derive(Serialize)]
pub struct NumberList {
    numbers: Vec<NumberEntry>,
    counts: Counts,
}

#[derive(Serialize)]
struct NumberEntry {
    number: String,
    state: &'static str,
    wallet: Option<String>,
    added_at: String,
    released_at: Option<String>,
}

#[derive(Serialize)]
struct Counts {
    free: i64,
    reserved: i64,
    assigned: i64,
    quarantined: i64,
}

pub async fn list_numbers(State(state): State<AppState>, _admin: Admin) -> Result<Json<NumberList>, ApiError> {
    let (rows, c) = state.subscriptions.numbers().await?;
    let counts = Counts { free: c.free, reserved: c.reserved, assigned: c.assigned, quarantined: c.quarantined };
    let numbers = rows
        .into_iter()
        .map(|r| NumberEntry {
            number: r.e164,
            state: r.state.as_str(),
            wallet: r.wallet,
            added_at: rfc3339(r.added_at),
            released_at: r.released_at.map(rfc3339),
        })
        .collect();
    Ok(Json(NumberList { numbers, counts }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    wallet: String,
    days: u32,
}

#[derive(Serialize)]
pub struct GrantResponse {
    token: String,
    number: String,
    expires_at: String,
    renewed: bool,
}

pub async fn grant_subscription(
    State(state): State<AppState>,
    _admin: Admin,
    AppJson(req): AppJson<GrantBody>,
) -> Result<Json<GrantResponse>, ApiError> {
    let wallet = Address::parse(&req.wallet).map_err(|e| ApiError::invalid_request(format!("wallet: {e}")))?;
    if !(1..=MAX_GRANT_DAYS).contains(&req.days) {
        return Err(ApiError::invalid_request(format!("days must be from 1 to {MAX_GRANT_DAYS}")));
    }
    let granted = state.subscriptions.grant_comp(&wallet, req.days, ACTOR).await?;
    tracing::info!(wallet = %wallet, days = req.days, number = %granted.number, renewed = granted.renewed, "comp subscription granted");
    Ok(Json(GrantResponse {
        token: granted.token.expose().to_owned(),
        number: granted.number,
        expires_at: rfc3339(granted.expires_at_ms),
        renewed: granted.renewed,
    }))
}
