//! Verification of an `exact` EIP-3009 payment against our terms, pure (the time is passed in):
//! version, scheme, network, the accepted requirement (v2), recipient, exact amount, the time
//! window with a 6 s grace for block time, and the EIP-712 signature recovering the payer under
//! the domain built from our configuration.

use alloy_primitives::Signature;

use super::refusal::Refusal;
use super::terms::PaymentTerms;
use super::wire::{PaymentPayload, parse_b256, parse_u256};
use crate::wallet::{Address, Authorization, authorization_hash, parse_signature, recover_prehash};

/// `validBefore` must leave this much time for the settlement to land in a block.
pub const VALID_BEFORE_GRACE_SECS: u64 = 6;

/// A payment whose signature and terms check out; not yet settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayment {
    pub version: u8,
    pub payer: Address,
    pub authorization: Authorization,
    pub signature: Signature,
    pub payment_identifier: Option<String>,
    /// The payload as received (for a facilitator).
    pub raw: serde_json::Value,
}

/// Why a payment is refused. `code()` is the stable x402 error string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("the payment is malformed")]
    InvalidPayload,
    #[error("unsupported x402 version (1 and 2 are accepted)")]
    InvalidVersion,
    #[error("unsupported scheme (only `exact` is accepted)")]
    UnsupportedScheme,
    #[error("the payment is for another network")]
    InvalidNetwork,
    #[error("the accepted requirement does not match our offer (asset, payee or amount)")]
    RequirementsMismatch,
    #[error("authorization.to is not our payee")]
    RecipientMismatch,
    #[error("authorization.value must equal the price exactly")]
    ValueMismatch,
    #[error("the authorization is not valid yet (validAfter is in the future)")]
    NotYetValid,
    #[error("the authorization expires too soon (validBefore must be at least 6 s ahead)")]
    Expired,
    #[error("the signature does not recover authorization.from under this token's EIP-712 domain")]
    InvalidSignature,
}

impl PaymentError {
    /// The x402 reason this refusal is answered with.
    pub fn refusal(self) -> Refusal {
        match self {
            Self::InvalidPayload => Refusal::InvalidPayload,
            Self::InvalidVersion => Refusal::InvalidX402Version,
            Self::UnsupportedScheme => Refusal::UnsupportedScheme,
            Self::InvalidNetwork => Refusal::InvalidNetwork,
            Self::RequirementsMismatch => Refusal::InvalidPaymentRequirements,
            Self::RecipientMismatch => Refusal::PayloadRecipientMismatch,
            Self::ValueMismatch => Refusal::ValueMismatch,
            Self::NotYetValid => Refusal::NotYetValid,
            Self::Expired => Refusal::Expired,
            Self::InvalidSignature => Refusal::PayloadSignature,
        }
    }

    pub fn code(self) -> &'static str {
        self.refusal().code()
    }
}

/// A `payment-identifier` is 16 to 128 characters of `[A-Za-z0-9_-]`.
pub fn valid_payment_identifier(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn verify(p: &PaymentPayload, terms: &PaymentTerms, now_secs: u64) -> Result<VerifiedPayment, PaymentError> {
    use PaymentError::*;
    if !matches!(p.version, 1 | 2) {
        return Err(InvalidVersion);
    }
    if p.scheme != "exact" {
        return Err(UnsupportedScheme);
    }
    if !terms.network.matches(&p.network) {
        return Err(InvalidNetwork);
    }
    if let Some(accepted) = &p.accepted {
        let amount = accepted.amount.as_deref().or(accepted.max_amount_required.as_deref()).and_then(parse_u256);
        let same = Address::parse(&accepted.asset).is_ok_and(|a| a == terms.asset)
            && Address::parse(&accepted.pay_to).is_ok_and(|a| a == terms.pay_to)
            && amount == Some(terms.price);
        if !same {
            return Err(RequirementsMismatch);
        }
    }
    if p.payment_identifier.as_deref().is_some_and(|id| !valid_payment_identifier(id)) {
        return Err(InvalidPayload);
    }
    let raw = &p.authorization;
    let authorization = Authorization {
        from: Address::parse(&raw.from).map_err(|_| InvalidPayload)?,
        to: Address::parse(&raw.to).map_err(|_| InvalidPayload)?,
        value: parse_u256(&raw.value).ok_or(InvalidPayload)?,
        valid_after: parse_u256(&raw.valid_after).ok_or(InvalidPayload)?,
        valid_before: parse_u256(&raw.valid_before).ok_or(InvalidPayload)?,
        nonce: parse_b256(&raw.nonce).ok_or(InvalidPayload)?,
    };
    if authorization.to != terms.pay_to {
        return Err(RecipientMismatch);
    }
    if authorization.value != terms.price {
        return Err(ValueMismatch);
    }
    let now = alloy_primitives::U256::from(now_secs);
    if authorization.valid_after > now {
        return Err(NotYetValid);
    }
    if authorization.valid_before < now + alloy_primitives::U256::from(VALID_BEFORE_GRACE_SECS) {
        return Err(Expired);
    }
    let signature = parse_signature(&p.signature).map_err(|_| InvalidSignature)?;
    let hash = authorization_hash(&terms.domain(), &authorization);
    if recover_prehash(&signature, &hash).map_err(|_| InvalidSignature)? != authorization.from {
        return Err(InvalidSignature);
    }
    Ok(VerifiedPayment {
        version: p.version,
        payer: authorization.from,
        authorization,
        signature,
        payment_identifier: p.payment_identifier.clone(),
        raw: p.raw.clone(),
    })
}
