//! x402 payments: the challenge, the wire codecs (v1 and v2), verification of `exact` EIP-3009
//! payments, and settlement backends. Codecs and verification are pure; settlement talks to a
//! chain or a facilitator. Subscriptions decide what a verified payment buys.

pub mod contract_wallets;
pub mod refusal;
pub mod settlement;
pub mod terms;
pub mod verify;
pub mod wire;

pub use refusal::Refusal;
pub use settlement::{ProbeError, SettleError, Settled, Settlement, SettlementKind};
pub use terms::{Network, PaymentTerms};
pub use verify::{PaymentError, VerifiedPayment, verify};
