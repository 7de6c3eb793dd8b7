//! x402 wire formats (v1 and v2, `exact` scheme over EIP-3009), pure: JSON and base64 in,
//! typed values out. Header sizes are bounded before anything is decoded.
//!
//! A v2 payment (`PAYMENT-SIGNATURE`, base64 JSON):
//! `{"x402Version":2,"payload":{"authorization":{from,to,value,validAfter,validBefore,nonce},
//!   "signature":"0x…"},"resource":{…},"accepted":{scheme,network,amount,asset,payTo,…},
//!   "extensions":{"payment-identifier":{"info":{"id":"…"}}}}`
//! A v1 payment (`X-PAYMENT`): `{"x402Version":1,"scheme":"exact","network":"base","payload":{…}}`.
//! The shape, not the version number, tells them apart: legacy clients echo whatever version the
//! challenge body carried.

use alloy_primitives::{B256, U256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::terms::PaymentTerms;
use crate::wallet::Address;

/// Largest payment header accepted, base64 characters. A real one is about 1.5 KiB.
pub const MAX_PAYMENT_HEADER_BYTES: usize = 8 * 1024;

/// A decoded payment, before any check of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentPayload {
    /// 1 for the v1 shape, 2 for v2.
    pub version: u8,
    pub scheme: String,
    pub network: String,
    /// v2 only: the requirement the client says it accepted.
    pub accepted: Option<AcceptedRequirement>,
    pub authorization: RawAuthorization,
    pub signature: String,
    /// The `payment-identifier` extension (v2), if sent.
    pub payment_identifier: Option<String>,
    /// The payload as received, for a facilitator's `/verify` and `/settle`.
    pub raw: Value,
}

/// The authorization as sent: decimal and hex strings, parsed during verification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawAuthorization {
    pub from: String,
    pub to: String,
    pub value: String,
    pub valid_after: String,
    pub valid_before: String,
    pub nonce: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedRequirement {
    pub scheme: String,
    pub network: String,
    pub amount: Option<String>,
    pub max_amount_required: Option<String>,
    pub asset: String,
    pub pay_to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("payment header is larger than {MAX_PAYMENT_HEADER_BYTES} bytes")]
    TooLarge,
    #[error("payment header is not standard base64")]
    NotBase64,
    #[error("payment header is not the JSON of an x402 exact-scheme payment")]
    NotPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPayload {
    x402_version: Option<u8>,
    scheme: Option<String>,
    network: Option<String>,
    accepted: Option<AcceptedRequirement>,
    payload: ExactPayload,
    extensions: Option<Value>,
}

#[derive(Deserialize)]
struct ExactPayload {
    signature: String,
    authorization: RawAuthorization,
}

/// Decodes a `PAYMENT-SIGNATURE` / `X-PAYMENT` value.
pub fn decode_payment(header: &str) -> Result<PaymentPayload, WireError> {
    let header = header.trim();
    if header.len() > MAX_PAYMENT_HEADER_BYTES {
        return Err(WireError::TooLarge);
    }
    let json = STANDARD.decode(header).map_err(|_| WireError::NotBase64)?;
    let value: Value = serde_json::from_slice(&json).map_err(|_| WireError::NotPayload)?;
    let raw: RawPayload = serde_json::from_value(value.clone()).map_err(|_| WireError::NotPayload)?;
    let payment_identifier = raw
        .extensions
        .as_ref()
        .and_then(|e| e.pointer("/payment-identifier/info/id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (version, scheme, network) = match (&raw.accepted, raw.scheme, raw.network) {
        (Some(accepted), _, _) => (2, accepted.scheme.clone(), accepted.network.clone()),
        (None, Some(scheme), Some(network)) => (1, scheme, network),
        _ => return Err(WireError::NotPayload),
    };
    // The shape decides between 1 and 2 (legacy clients echo the challenge body's version);
    // any other declared version is kept so verification rejects it.
    let version = match raw.x402_version {
        None | Some(1) | Some(2) => version,
        Some(other) => other,
    };
    Ok(PaymentPayload {
        version,
        scheme,
        network,
        accepted: raw.accepted,
        authorization: raw.payload.authorization,
        signature: raw.payload.signature,
        payment_identifier,
        raw: value,
    })
}

/// The canonical x402 v2 `PaymentRequired`, for the `PAYMENT-REQUIRED` header.
pub fn payment_required_v2(terms: &PaymentTerms, error: &str) -> Value {
    json!({
        "x402Version": 2,
        "error": error,
        "resource": {
            "url": terms.resource_url,
            "description": terms.description,
            "mimeType": "application/json",
        },
        "accepts": [requirement_v2(terms)],
        "extensions": { "bazaar": bazaar(terms) },
    })
}

/// The Bazaar discovery extension (`extensions.bazaar`): how to call the paid resource (`info`)
/// and a JSON Schema that `info` validates against (`schema`), so facilitators can catalogue it
/// and agents can build the call from the challenge alone.
pub fn bazaar(terms: &PaymentTerms) -> Value {
    json!({
        "info": {
            "input": {
                "type": "http",
                "method": "POST",
                "bodyType": "json",
                "body": {},
                "headers": {"Idempotency-Key": "optional, 16-128 chars of A-Z a-z 0-9 _ -"},
            },
            "output": {
                "type": "json",
                "example": {
                    "token": "an_1Zr…",
                    "number": "+12025550100",
                    "expires_at": "2027-11-22T00:00:00.000Z",
                    "renewed": false,
                },
            },
            "description": terms.description,
        },
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["input", "output"],
            "properties": {
                "input": {
                    "type": "object",
                    "required": ["type", "method", "bodyType", "body"],
                    "properties": {
                        "type": {"const": "http"},
                        "method": {"const": "POST"},
                        "bodyType": {"const": "json"},
                        "body": {"type": "object", "additionalProperties": false},
                        "headers": {"type": "object"},
                    },
                },
                "output": {
                    "type": "object",
                    "required": ["type", "example"],
                    "properties": {
                        "type": {"const": "json"},
                        "example": {
                            "type": "object",
                            "required": ["token", "number", "expires_at"],
                            "properties": {
                                "token": {"type": "string"},
                                "number": {"type": "string", "pattern": "^\\+[1-9][0-9]{7,14}$"},
                                "expires_at": {"type": "string"},
                                "renewed": {"type": "boolean"},
                            },
                        },
                    },
                },
                "description": {"type": "string"},
            },
        },
    })
}

fn requirement_v2(terms: &PaymentTerms) -> Value {
    json!({
        "scheme": "exact",
        "network": terms.network.caip2(),
        "amount": terms.price.to_string(),
        "asset": checksummed(terms.asset),
        "payTo": checksummed(terms.pay_to),
        "maxTimeoutSeconds": terms.max_timeout_secs,
        "extra": { "name": terms.token_name, "version": terms.token_version },
    })
}

/// The 402 body: the contract's shape (`x402Version`, `error`, `accepts[]`) whose entries also
/// carry the v1 fields, so a v1 client can pay from the body alone; `message` is additive.
pub fn challenge_body(terms: &PaymentTerms, error: &str, message: &str) -> Value {
    let mut accept = requirement_v2(terms);
    let fields = accept.as_object_mut().expect("invariant: requirement_v2 builds an object");
    // The body's network is the v1 name where one exists: v1 clients know only those.
    if let Some(name) = terms.network.v1_name() {
        fields.insert("network".to_owned(), name.into());
    }
    fields.insert("maxAmountRequired".to_owned(), terms.price.to_string().into());
    fields.insert("resource".to_owned(), terms.resource_url.clone().into());
    fields.insert("description".to_owned(), terms.description.clone().into());
    fields.insert("mimeType".to_owned(), "application/json".into());
    json!({
        "x402Version": 2,
        "error": error,
        "message": message,
        "resource": { "url": terms.resource_url, "description": terms.description, "mimeType": "application/json" },
        "accepts": [accept],
        "extensions": { "bazaar": bazaar(terms) },
    })
}

/// A settlement answer, for `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementResponse {
    pub success: bool,
    pub transaction: String,
    pub network: String,
    pub payer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
}

pub fn encode_header(value: &impl Serialize) -> String {
    STANDARD.encode(serde_json::to_vec(value).expect("invariant: wire types serialize"))
}

/// EIP-55 form, as the official clients print addresses.
pub fn checksummed(a: Address) -> String {
    alloy_primitives::Address::from(a).to_checksum(None)
}

/// Parsed numeric fields of an authorization.
pub fn parse_u256(s: &str) -> Option<U256> {
    if s.is_empty() || s.len() > 78 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub fn parse_b256(s: &str) -> Option<B256> {
    let digits = s.strip_prefix("0x")?;
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &Value) -> String {
        STANDARD.encode(v.to_string())
    }

    fn auth() -> Value {
        json!({"from": "0x77943b1693989eDF61E79172D29DC95b15bFA905", "to": "0xEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE",
               "value": "1000000", "validAfter": "0", "validBefore": "1795374653",
               "nonce": "0x9cd52012f8ad3e6d19801ed7dd025e64919265743658264be1db5875ece4561e"})
    }

    #[test]
    fn decodes_v2_with_payment_identifier() {
        let v = json!({"x402Version": 2, "payload": {"authorization": auth(), "signature": "0xab"},
            "resource": {"url": "http://x/sms/subscribe"},
            "accepted": {"scheme": "exact", "network": "eip155:8453", "amount": "1000000", "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "payTo": "0xEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE", "maxTimeoutSeconds": 300},
            "extensions": {"payment-identifier": {"info": {"id": "order_0123456789abcdef"}}}});
        let p = decode_payment(&b64(&v)).expect("decodes");
        assert_eq!((p.version, p.scheme.as_str(), p.network.as_str()), (2, "exact", "eip155:8453"));
        assert_eq!(p.payment_identifier.as_deref(), Some("order_0123456789abcdef"));
        assert_eq!(p.authorization.value, "1000000");
    }

    #[test]
    fn decodes_v1() {
        let v = json!({"x402Version": 1, "scheme": "exact", "network": "base", "payload": {"authorization": auth(), "signature": "0xab"}});
        let p = decode_payment(&b64(&v)).expect("decodes");
        assert_eq!((p.version, p.network.as_str()), (1, "base"));
        assert!(p.accepted.is_none());
    }

    #[test]
    fn rejects_each_failure() {
        assert_eq!(decode_payment(&"A".repeat(MAX_PAYMENT_HEADER_BYTES + 4)), Err(WireError::TooLarge));
        assert_eq!(decode_payment("not base64!"), Err(WireError::NotBase64));
        assert_eq!(decode_payment(&STANDARD.encode("{")), Err(WireError::NotPayload));
        assert_eq!(decode_payment(&b64(&json!({"x402Version": 2}))), Err(WireError::NotPayload));
        let no_network =
            json!({"x402Version": 1, "scheme": "exact", "payload": {"authorization": auth(), "signature": "0x"}});
        assert_eq!(decode_payment(&b64(&no_network)), Err(WireError::NotPayload));
        let wrong_types = json!({"x402Version": 1, "scheme": "exact", "network": "base", "payload": {"authorization": {"from": 1}, "signature": "0x"}});
        assert_eq!(decode_payment(&b64(&wrong_types)), Err(WireError::NotPayload));
        let bad_version = json!({"x402Version": 9, "scheme": "exact", "network": "base", "payload": {"authorization": auth(), "signature": "0x"}});
        assert_eq!(decode_payment(&b64(&bad_version)).expect("decodes").version, 9);
    }

    #[test]
    fn numbers_parse_strictly() {
        assert_eq!(parse_u256("1000000"), Some(U256::from(1_000_000u64)));
        for bad in ["", "-1", "1e6", "0x10", " 1", &"9".repeat(79)] {
            assert_eq!(parse_u256(bad), None, "{bad}");
        }
        assert!(parse_b256("0x9cd52012f8ad3e6d19801ed7dd025e64919265743658264be1db5875ece4561e").is_some());
        assert!(parse_b256("0x9cd5").is_none());
    }
}
