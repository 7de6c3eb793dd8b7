//! Settlement backends: moving the money a verified payment authorizes.
//!
//! - [`Sandbox`]: nothing moves; for the default configuration and demos. Responses say so.
//! - [`Chain`]: our relayer submits `transferWithAuthorization` (the v, r, s overload) with
//!   alloy and waits for the receipt. A receipt that does not come in time is *pending*, never
//!   failed: the money may have moved, so the reservation is kept and reconciled later from
//!   `authorizationState(from, nonce)`.
//! - [`Facilitator`]: an x402 facilitator's `/verify` then `/settle`; `success: false` in a
//!   200 is a failure.

use std::time::Duration;

use alloy_network::EthereumWallet;
use alloy_primitives::{B256, Bytes};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, sol};
use serde_json::{Value, json};

use super::refusal::Refusal;
use super::terms::PaymentTerms;
use super::verify::VerifiedPayment;
use crate::future::BoxFuture;
use crate::wallet::{Address, Authorization};

sol! {
    /// FiatTokenV2 / EIP-3009, the v, r, s overload (selector 0xe3ee160e).
    function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s);
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
}

/// Receipt polling: first after this, then doubling up to the cap (instant-mining dev chains
/// answer within milliseconds; L2s within a block time of about 2 s).
const RECEIPT_POLL_FIRST: Duration = Duration::from_millis(5);
const RECEIPT_POLL_MAX: Duration = Duration::from_millis(500);

/// The money moved (or, in the sandbox, would have).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub transaction: Option<B256>,
    pub sandbox: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    /// Definitely not settled: the reservation can be released.
    #[error("settlement refused: {detail}")]
    Rejected { refusal: Refusal, detail: String },
    /// Maybe settled: keep the reservation and reconcile.
    #[error("settlement outcome unknown (transaction {transaction:?})")]
    Pending { transaction: Option<B256> },
}

/// Which backend settles payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementKind {
    /// [`Sandbox`]: nothing moves.
    Sandbox,
    /// [`Chain`]: our relayer submits the authorization.
    Chain,
    /// [`Facilitator`]: an x402 facilitator settles.
    Facilitator,
}

impl SettlementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "none",
            Self::Chain => "chain",
            Self::Facilitator => "facilitator",
        }
    }
}

pub trait Settlement: Send + Sync + 'static {
    fn kind(&self) -> SettlementKind;
    /// Settles at once and cannot fail or wait (the sandbox): the payment and the subscription
    /// can then be recorded in one transaction.
    fn is_instant(&self) -> bool {
        false
    }
    fn settle<'a>(&'a self, payment: &'a VerifiedPayment) -> BoxFuture<'a, Result<Settled, SettleError>>;
    /// Whether the authorization has been used on chain: `Ok(None)` when this backend cannot
    /// tell (sandbox, facilitator).
    fn authorization_used<'a>(&'a self, from: Address, nonce: B256)
    -> BoxFuture<'a, Result<Option<bool>, SettleError>>;
    /// Whether the backend answers within `timeout` (readiness, the check at start): the chain's
    /// id, the facilitator's `/supported`. The sandbox always does.
    fn probe(&self, timeout: Duration) -> BoxFuture<'_, Result<(), ProbeError>>;
}

/// Why a settlement backend does not answer, in words fit for `/health/ready` and the log:
/// never the URL, which for a hosted RPC often carries an API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The TLS handshake failed: an untrusted or misnamed certificate, a protocol mismatch.
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot connect: {0}")]
    Connect(std::io::ErrorKind),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// It answered, but not as a chain node or a facilitator would.
    #[error("unexpected answer: {0}")]
    Answer(String),
}

impl ProbeError {
    /// Classifies a failed request by the first TLS or I/O error in its source chain, looking
    /// inside I/O errors too (tokio-rustls and the HTTP connector wrap the TLS error in them, and
    /// `io::Error::source` skips the wrapped error itself).
    fn of(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut pending = vec![err];
        let mut io_kind = None;
        // Bounded: error chains are short, but a cycle must not loop forever.
        for _ in 0..32 {
            let Some(e) = pending.pop() else { break };
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                return Self::Tls(tls.to_string());
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                io_kind.get_or_insert(io.kind());
                if let Some(inner) = io.get_ref() {
                    pending.push(inner);
                }
            }
            if let Some(next) = e.source() {
                pending.push(next);
            }
        }
        Self::Connect(io_kind.unwrap_or(std::io::ErrorKind::Other))
    }
}

/// Full verification, no money moves.
pub struct Sandbox;

impl Settlement for Sandbox {
    fn kind(&self) -> SettlementKind {
        SettlementKind::Sandbox
    }

    fn is_instant(&self) -> bool {
        true
    }

    fn settle<'a>(&'a self, _: &'a VerifiedPayment) -> BoxFuture<'a, Result<Settled, SettleError>> {
        Box::pin(async { Ok(Settled { transaction: None, sandbox: true }) })
    }

    fn authorization_used<'a>(&'a self, _: Address, _: B256) -> BoxFuture<'a, Result<Option<bool>, SettleError>> {
        Box::pin(async { Ok(None) })
    }

    fn probe(&self, _: Duration) -> BoxFuture<'_, Result<(), ProbeError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Our relayer submits the authorization to the token contract.
pub struct Chain {
    provider: DynProvider,
    /// Serializes submissions from our one relayer account: each takes the account's pending
    /// nonce from the node, so two at once would collide. Held for the submission only, never
    /// while waiting for a receipt.
    submit: tokio::sync::Mutex<()>,
    token: alloy_primitives::Address,
    receipt_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ChainSetupError {
    #[error("relayer key is not a 32-byte hex private key")]
    BadKey,
    #[error("rpc url is not a URL: {0}")]
    BadUrl(String),
}

impl Chain {
    pub fn new(
        rpc_url: &str,
        http: reqwest::Client,
        relayer_key: &str,
        token: Address,
        receipt_timeout: Duration,
    ) -> Result<Self, ChainSetupError> {
        let signer: PrivateKeySigner = relayer_key.trim().parse().map_err(|_| ChainSetupError::BadKey)?;
        let url = rpc_url.parse().map_err(|_| ChainSetupError::BadUrl(rpc_url.to_owned()))?;
        // Nonces are read from the node for every submission: a cached nonce manager leaves a
        // gap (and every later transaction stuck) after a submission that failed estimation.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_reqwest(http, url)
            .erased();
        Ok(Self { provider, submit: tokio::sync::Mutex::new(()), token: token.into(), receipt_timeout })
    }

    pub fn relayer(key: &str) -> Option<Address> {
        key.trim().parse::<PrivateKeySigner>().ok().map(|s| s.address().into())
    }
}

fn calldata(auth: &Authorization, sig: &alloy_primitives::Signature) -> Bytes {
    transferWithAuthorizationCall {
        from: auth.from.into(),
        to: auth.to.into(),
        value: auth.value,
        validAfter: auth.valid_after,
        validBefore: auth.valid_before,
        nonce: auth.nonce,
        v: 27 + u8::from(sig.v()),
        r: sig.r().into(),
        s: sig.s().into(),
    }
    .abi_encode()
    .into()
}

/// The facilitator's own x402 reason when it is one of ours, else `fallback`.
fn facilitator_refusal(reason: &str, fallback: Refusal) -> Refusal {
    Refusal::from_code(reason).unwrap_or(fallback)
}

/// Whether an RPC call failed before a connection stood (refused, TLS handshake, an untrusted
/// or misnamed certificate): then no request reached the node and nothing was submitted.
fn never_connected(err: &alloy_provider::transport::TransportError) -> bool {
    err.as_transport_err()
        .and_then(|kind| kind.as_custom())
        .and_then(|custom| custom.downcast_ref::<reqwest::Error>())
        .is_some_and(reqwest::Error::is_connect)
}

/// Maps a revert seen while estimating or simulating to an x402 reason.
fn revert_refusal(message: &str) -> Refusal {
    if message.contains("exceeds balance") {
        Refusal::InsufficientFunds
    } else if message.contains("authorization is used") {
        Refusal::NonceAlreadyUsed
    } else if message.contains("invalid signature") {
        Refusal::PayloadSignature
    } else if message.contains("expired") || message.contains("not yet valid") {
        Refusal::Expired
    } else {
        Refusal::TransactionFailed
    }
}

impl Settlement for Chain {
    fn kind(&self) -> SettlementKind {
        SettlementKind::Chain
    }

    fn settle<'a>(&'a self, payment: &'a VerifiedPayment) -> BoxFuture<'a, Result<Settled, SettleError>> {
        Box::pin(async move {
            let tx = TransactionRequest::default()
                .to(self.token)
                .input(calldata(&payment.authorization, &payment.signature).into());
            // Sending estimates gas first: a revert here means nothing was submitted. A send that
            // does not answer in time may have reached the chain: pending.
            let sent = tokio::time::timeout(self.receipt_timeout, async {
                let _turn = self.submit.lock().await;
                self.provider.send_transaction(tx).await
            })
            .await;
            let pending = match sent {
                Err(_) => return Err(SettleError::Pending { transaction: None }),
                Ok(Ok(pending)) => pending,
                Ok(Err(err)) => {
                    let detail = err.to_string();
                    if err.as_error_resp().is_some() {
                        return Err(SettleError::Rejected { refusal: revert_refusal(&detail), detail });
                    }
                    if never_connected(&err) {
                        tracing::warn!(error = %detail, "chain RPC unreachable; nothing was submitted");
                        return Err(SettleError::Rejected {
                            refusal: Refusal::UnexpectedSettleError,
                            detail: format!("chain RPC unreachable: {detail}"),
                        });
                    }
                    tracing::warn!(error = %detail, "settlement transport error; outcome unknown");
                    return Err(SettleError::Pending { transaction: None });
                }
            };
            let transaction = *pending.tx_hash();
            // Poll for the receipt ourselves: a block mined before a new-block watcher starts
            // (instant mining) must not be missed.
            let receipt = tokio::time::timeout(self.receipt_timeout, async {
                let mut wait = RECEIPT_POLL_FIRST;
                loop {
                    match self.provider.get_transaction_receipt(transaction).await {
                        Ok(Some(receipt)) => return receipt,
                        Ok(None) => {}
                        Err(err) => tracing::debug!(error = %err, %transaction, "receipt poll failed"),
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RECEIPT_POLL_MAX);
                }
            })
            .await;
            match receipt {
                Ok(receipt) if receipt.status() => Ok(Settled { transaction: Some(transaction), sandbox: false }),
                Ok(_) => Err(SettleError::Rejected {
                    refusal: Refusal::TransactionFailed,
                    detail: format!("transaction {transaction} reverted"),
                }),
                Err(_) => {
                    tracing::warn!(%transaction, "no receipt in time; settlement pending");
                    Err(SettleError::Pending { transaction: Some(transaction) })
                }
            }
        })
    }

    fn authorization_used<'a>(
        &'a self,
        from: Address,
        nonce: B256,
    ) -> BoxFuture<'a, Result<Option<bool>, SettleError>> {
        Box::pin(async move {
            let call = authorizationStateCall { authorizer: from.into(), nonce };
            let tx = TransactionRequest::default().to(self.token).input(Bytes::from(call.abi_encode()).into());
            let out = tokio::time::timeout(self.receipt_timeout, self.provider.call(tx))
                .await
                .map_err(|_| SettleError::Pending { transaction: None })?
                .map_err(|_| SettleError::Pending { transaction: None })?;
            let used = authorizationStateCall::abi_decode_returns(&out)
                .map_err(|_| SettleError::Pending { transaction: None })?;
            Ok(Some(used))
        })
    }

    fn probe(&self, timeout: Duration) -> BoxFuture<'_, Result<(), ProbeError>> {
        Box::pin(async move {
            match tokio::time::timeout(timeout, self.provider.get_chain_id()).await {
                Err(_) => Err(ProbeError::Timeout(timeout)),
                Ok(Ok(_)) => Ok(()),
                Ok(Err(err)) if err.is_transport_error() => Err(ProbeError::of(&err)),
                Ok(Err(_)) => Err(ProbeError::Answer("eth_chainId failed".to_owned())),
            }
        })
    }
}

/// An x402 facilitator over HTTP.
pub struct Facilitator {
    http: reqwest::Client,
    url: String,
    terms: PaymentTerms,
}

impl Facilitator {
    /// `http` comes from [`crate::tls::TlsRoots::http_client`], with the request timeout set.
    pub fn new(url: &str, terms: PaymentTerms, http: reqwest::Client) -> Self {
        Self { http, url: url.trim_end_matches('/').to_owned(), terms }
    }

    fn body(&self, payment: &VerifiedPayment) -> Value {
        let requirements = if payment.version == 1 {
            json!({
                "scheme": "exact",
                "network": self.terms.network.v1_name().map_or_else(|| self.terms.network.caip2(), str::to_owned),
                "maxAmountRequired": self.terms.price.to_string(),
                "resource": self.terms.resource_url,
                "description": self.terms.description,
                "mimeType": "application/json",
                "payTo": super::wire::checksummed(self.terms.pay_to),
                "maxTimeoutSeconds": self.terms.max_timeout_secs,
                "asset": super::wire::checksummed(self.terms.asset),
                "extra": {"name": self.terms.token_name, "version": self.terms.token_version},
            })
        } else {
            json!({
                "scheme": "exact",
                "network": self.terms.network.caip2(),
                "amount": self.terms.price.to_string(),
                "payTo": super::wire::checksummed(self.terms.pay_to),
                "maxTimeoutSeconds": self.terms.max_timeout_secs,
                "asset": super::wire::checksummed(self.terms.asset),
                "extra": {"name": self.terms.token_name, "version": self.terms.token_version},
            })
        };
        // Legacy clients echo the challenge body's version inside a v1-shaped payload; the
        // facilitator dispatches on it, so it gets the version the shape says.
        let mut payload = payment.raw.clone();
        if let Some(fields) = payload.as_object_mut() {
            fields.insert("x402Version".to_owned(), payment.version.into());
        }
        json!({"x402Version": payment.version, "paymentPayload": payload, "paymentRequirements": requirements})
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, SettleError> {
        let resp = self.http.post(format!("{}{path}", self.url)).json(body).send().await;
        match resp {
            Ok(r) => r.json::<Value>().await.map_err(|e| SettleError::Rejected {
                refusal: Refusal::UnexpectedSettleError,
                detail: format!("facilitator {path}: {e}"),
            }),
            Err(e) if path == "/verify" => Err(SettleError::Rejected {
                refusal: Refusal::UnexpectedVerifyError,
                detail: format!("facilitator: {e}"),
            }),
            // The settle request may have reached the facilitator: unknown, not failed.
            Err(_) => Err(SettleError::Pending { transaction: None }),
        }
    }
}

impl Settlement for Facilitator {
    fn kind(&self) -> SettlementKind {
        SettlementKind::Facilitator
    }

    fn settle<'a>(&'a self, payment: &'a VerifiedPayment) -> BoxFuture<'a, Result<Settled, SettleError>> {
        Box::pin(async move {
            let body = self.body(payment);
            let verified = self.post("/verify", &body).await?;
            if verified["isValid"] != Value::Bool(true) {
                let reason = verified["invalidReason"].as_str().unwrap_or("invalid_payload");
                return Err(SettleError::Rejected {
                    refusal: facilitator_refusal(reason, Refusal::InvalidPayload),
                    detail: reason.to_owned(),
                });
            }
            let settled = self.post("/settle", &body).await?;
            if settled["success"] != Value::Bool(true) {
                let reason = settled["errorReason"].as_str().unwrap_or("unexpected_settle_error");
                let refusal = facilitator_refusal(reason, Refusal::TransactionFailed);
                return Err(SettleError::Rejected { refusal, detail: reason.to_owned() });
            }
            let transaction = settled["transaction"].as_str().and_then(|t| t.parse::<B256>().ok());
            Ok(Settled { transaction, sandbox: false })
        })
    }

    fn authorization_used<'a>(&'a self, _: Address, _: B256) -> BoxFuture<'a, Result<Option<bool>, SettleError>> {
        Box::pin(async { Ok(None) })
    }

    fn probe(&self, timeout: Duration) -> BoxFuture<'_, Result<(), ProbeError>> {
        Box::pin(async move {
            let sent = self.http.get(format!("{}/supported", self.url)).timeout(timeout).send().await;
            match sent {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(ProbeError::Answer(format!("GET /supported: HTTP {}", r.status().as_u16()))),
                Err(e) if e.is_timeout() => Err(ProbeError::Timeout(timeout)),
                Err(e) => Err(ProbeError::of(&e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calldata_uses_the_vrs_overload() {
        let auth = Authorization {
            from: Address::parse("0x77943b1693989eDF61E79172D29DC95b15bFA905").expect("a"),
            to: Address::parse("0xEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE").expect("a"),
            value: alloy_primitives::U256::from(1u8),
            valid_after: alloy_primitives::U256::ZERO,
            valid_before: alloy_primitives::U256::from(2u8),
            nonce: B256::ZERO,
        };
        let sig = crate::wallet::parse_signature("0xed6247005319afb40c2870a0ef41e03de917be4a3d7db5e3b12b08b0926ab51318b47ff8dd5a54ab0fd3725ed5bf90bc17f86e9e00777516f83b3e03aab65bbe1b").expect("sig");
        let data = calldata(&auth, &sig);
        assert_eq!(&data[..4], &[0xe3, 0xee, 0x16, 0x0e]);
        assert_eq!(data.len(), 4 + 9 * 32);
        assert_eq!(data[4 + 6 * 32 + 31], 27, "v as 27/28");
    }

    #[test]
    fn reverts_map_to_codes() {
        assert_eq!(
            revert_refusal("execution reverted: ERC20: transfer amount exceeds balance"),
            Refusal::InsufficientFunds
        );
        assert_eq!(revert_refusal("FiatTokenV2: authorization is used or canceled"), Refusal::NonceAlreadyUsed);
        assert_eq!(revert_refusal("out of gas"), Refusal::TransactionFailed);
        assert_eq!(facilitator_refusal("invalid_exact_evm_signature", Refusal::InvalidPayload), Refusal::Signature);
        assert_eq!(facilitator_refusal("<script>", Refusal::InvalidPayload), Refusal::InvalidPayload);
    }
}
