//! Why a payment was refused: the closed set of x402 reasons agentline answers with (the `error`
//! of a 402 challenge, the `errorReason` of a failed settlement) and stores with a failed payment.
//!
//! Wire names follow the x402 specification's error codes where one exists (`invalid_payload`,
//! `invalid_exact_evm_*`, `insufficient_funds`, ...); the few of our own (`settlement_pending`,
//! `authorization_expired_unused`, `interrupted_before_settlement`) say what happened to a payment
//! whose settlement did not finish. A facilitator's reason outside this set is not passed on
//! verbatim: it is mapped to the nearest code of ours, so clients only ever see the set
//! documented in `openapi.json`.

use std::fmt;

/// An x402 refusal reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    InvalidPayload,
    InvalidX402Version,
    UnsupportedScheme,
    /// A facilitator's name for [`Refusal::UnsupportedScheme`].
    InvalidScheme,
    InvalidNetwork,
    InvalidPaymentRequirements,
    PayloadRecipientMismatch,
    /// A facilitator's name for a payee mismatch.
    RecipientMismatch,
    ValueMismatch,
    NotYetValid,
    Expired,
    PayloadSignature,
    /// A facilitator's name for a bad signature.
    Signature,
    NonceAlreadyUsed,
    InsufficientFunds,
    InsufficientBalance,
    SimulationFailed,
    TransactionFailed,
    UnexpectedVerifyError,
    UnexpectedSettleError,
    /// Submitted, outcome unknown: retry with the same key.
    SettlementPending,
    /// Reconciled: the authorization expired without being used on chain.
    AuthorizationExpiredUnused,
    /// Reconciled: the process stopped before the sandbox recorded the payment.
    InterruptedBeforeSettlement,
}

impl Refusal {
    pub const ALL: [Self; 23] = [
        Self::InvalidPayload,
        Self::InvalidX402Version,
        Self::UnsupportedScheme,
        Self::InvalidScheme,
        Self::InvalidNetwork,
        Self::InvalidPaymentRequirements,
        Self::PayloadRecipientMismatch,
        Self::RecipientMismatch,
        Self::ValueMismatch,
        Self::NotYetValid,
        Self::Expired,
        Self::PayloadSignature,
        Self::Signature,
        Self::NonceAlreadyUsed,
        Self::InsufficientFunds,
        Self::InsufficientBalance,
        Self::SimulationFailed,
        Self::TransactionFailed,
        Self::UnexpectedVerifyError,
        Self::UnexpectedSettleError,
        Self::SettlementPending,
        Self::AuthorizationExpiredUnused,
        Self::InterruptedBeforeSettlement,
    ];

    /// The wire name.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidX402Version => "invalid_x402_version",
            Self::UnsupportedScheme => "unsupported_scheme",
            Self::InvalidScheme => "invalid_scheme",
            Self::InvalidNetwork => "invalid_network",
            Self::InvalidPaymentRequirements => "invalid_payment_requirements",
            Self::PayloadRecipientMismatch => "invalid_exact_evm_payload_recipient_mismatch",
            Self::RecipientMismatch => "invalid_exact_evm_recipient_mismatch",
            Self::ValueMismatch => "invalid_exact_evm_payload_authorization_value_mismatch",
            Self::NotYetValid => "invalid_exact_evm_payload_authorization_valid_after",
            Self::Expired => "invalid_exact_evm_payload_authorization_valid_before",
            Self::PayloadSignature => "invalid_exact_evm_payload_signature",
            Self::Signature => "invalid_exact_evm_signature",
            Self::NonceAlreadyUsed => "invalid_exact_evm_nonce_already_used",
            Self::InsufficientFunds => "insufficient_funds",
            Self::InsufficientBalance => "invalid_exact_evm_insufficient_balance",
            Self::SimulationFailed => "invalid_exact_evm_transaction_simulation_failed",
            Self::TransactionFailed => "invalid_exact_evm_transaction_failed",
            Self::UnexpectedVerifyError => "unexpected_verify_error",
            Self::UnexpectedSettleError => "unexpected_settle_error",
            Self::SettlementPending => "settlement_pending",
            Self::AuthorizationExpiredUnused => "authorization_expired_unused",
            Self::InterruptedBeforeSettlement => "interrupted_before_settlement",
        }
    }

    /// The reason with this wire name, if it is one of ours.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_distinct_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in Refusal::ALL {
            assert!(seen.insert(r.code()), "{} twice", r.code());
            assert_eq!(Refusal::from_code(r.code()), Some(r));
        }
        assert_eq!(Refusal::from_code("made_up"), None);
    }
}
