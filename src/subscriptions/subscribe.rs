//! Paid subscriptions over x402: decode and verify the payment, reserve (replay key and a
//! number) before any money moves, settle, then commit the subscription, or release the
//! reservation if settlement definitely failed. A settlement whose outcome is unknown keeps its
//! reservation and is reconciled from the chain later.
//!
//! Settlement and commit run in their own task: a client that disconnects mid-payment cannot
//! leave money moved and no subscription recorded.

use std::sync::Arc;
use std::time::Duration;

use super::{DAY_MS, SubscriptionService, Token};
use crate::clock;
use crate::payments::wire::{self, SettlementResponse, checksummed};
use crate::payments::{PaymentError, Refusal, SettleError, Settlement, SettlementKind, verify};
use crate::store::{GrantRequest, NewPayment, PaymentState, Purchase, Reservation, SubscriptionSource};

/// Payments left unsettled for longer than this are reconciled.
pub const RECONCILE_AFTER: Duration = Duration::from_secs(60);

/// A subscription bought (or renewed), with what the client is told.
#[derive(Debug, Clone)]
pub struct Paid {
    pub token: Token,
    pub number: String,
    pub expires_at_ms: i64,
    pub renewed: bool,
    pub settlement: SettlementResponse,
    pub sandbox: bool,
}

/// Why a payment header cannot be read at all (400, not a 402 challenge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undecodable {
    /// Not base64 JSON of an x402 payload.
    Payload,
    /// An idempotency key outside 16 to 128 characters of `A-Z a-z 0-9 _ -`.
    IdempotencyKey,
}

impl Undecodable {
    /// The wire code: x402's `invalid_payload`, or the contract's `invalid_request`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Payload => Refusal::InvalidPayload.code(),
            Self::IdempotencyKey => "invalid_request",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The payment header cannot be decoded (400).
    #[error("{message}")]
    Undecodable { reason: Undecodable, message: String },
    /// The payment was refused (402 with a fresh challenge).
    #[error("{message}")]
    Refused { refusal: Refusal, message: String },
    #[error("no free number in the pool")]
    PoolExhausted,
    /// The same idempotency key's first payment is still settling (409).
    #[error("the first attempt with this idempotency key is still settling; retry shortly")]
    InProgress,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The settlement task panicked or was cancelled (a bug: the payment stays reserved and is
    /// reconciled).
    #[error("settlement task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<PaymentError> for SubscribeError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::InvalidPayload => Self::Undecodable { reason: Undecodable::Payload, message: e.to_string() },
            _ => Self::Refused { refusal: e.refusal(), message: e.to_string() },
        }
    }
}

fn refused(refusal: Refusal, message: impl Into<String>) -> SubscribeError {
    SubscribeError::Refused { refusal, message: message.into() }
}

impl SubscriptionService {
    /// Buys or renews a subscription with the payment in `header` (`PAYMENT-SIGNATURE` or
    /// `X-PAYMENT`). `idempotency_key` comes from the `Idempotency-Key` header; the payment's
    /// own `payment-identifier` extension takes precedence.
    pub async fn subscribe(&self, header: &str, idempotency_key: Option<&str>) -> Result<Paid, SubscribeError> {
        let payment = wire::decode_payment(header)
            .map_err(|e| SubscribeError::Undecodable { reason: Undecodable::Payload, message: e.to_string() })?;
        let terms = &self.payments.terms;
        let now_ms = clock::now_ms();
        let verified = verify(&payment, terms, u64::try_from(now_ms / 1000).unwrap_or(0))?;
        let payer = verified.payer.to_string();
        let key = match verified.payment_identifier.as_deref().or(idempotency_key) {
            Some(k) if crate::payments::verify::valid_payment_identifier(k) => Some(format!("{payer}:{k}")),
            Some(_) => {
                return Err(SubscribeError::Undecodable {
                    reason: Undecodable::IdempotencyKey,
                    message: "idempotency key must be 16 to 128 characters of A-Z a-z 0-9 _ -".to_owned(),
                });
            }
            None => None,
        };
        let auth = &verified.authorization;
        let amount = auth.value.to_string();
        let nonce = format!("{:#x}", auth.nonce);
        let signature = format!("0x{}", alloy_primitives::hex::encode(verified.signature.as_bytes()));
        let caip2 = terms.network.caip2();
        let asset = terms.asset.to_string();
        let pay_to = terms.pay_to.to_string();
        let row = NewPayment {
            x402_version: i64::from(verified.version),
            network: &caip2,
            asset: &asset,
            payer: &payer,
            pay_to: &pay_to,
            amount: &amount,
            auth_nonce: &nonce,
            valid_before_secs: i64::try_from(auth.valid_before).unwrap_or(i64::MAX),
            signature: &signature,
            idempotency_key: key.as_deref(),
            now_ms,
        };
        let response_network = if verified.version == 1 {
            terms.network.v1_name().map_or_else(|| caip2.clone(), str::to_owned)
        } else {
            caip2.clone()
        };
        let payer_checksummed = checksummed(verified.payer);
        let settlement_response =
            |success: bool, transaction: Option<String>, error: Option<String>| SettlementResponse {
                success,
                transaction: transaction.unwrap_or_default(),
                network: response_network.clone(),
                payer: payer_checksummed.clone(),
                error_reason: error,
            };
        let replayed = || {
            refused(
                Refusal::NonceAlreadyUsed,
                "this authorization was already presented; sign a new one (or retry with the same payment-identifier)",
            )
        };
        if self.payments.settlement.is_instant() {
            let token = Token::generate();
            let job = super::purchases::PurchaseJob {
                x402_version: row.x402_version,
                network: caip2.clone(),
                asset: asset.clone(),
                payer: payer.clone(),
                pay_to: pay_to.clone(),
                amount: amount.clone(),
                auth_nonce: nonce.clone(),
                valid_before_secs: row.valid_before_secs,
                signature: signature.clone(),
                idempotency_key: key.clone(),
                plan: self.config.plan.clone(),
                duration_ms: i64::from(self.config.plan_days) * DAY_MS,
                token_hash: token.hash(),
                now_ms,
            };
            return match self.purchases.buy(job).await? {
                Purchase::Granted(granted) => {
                    self.auth_cache.forget_subscription(granted.subscription_id);
                    tracing::debug!(payer, number = %granted.number, "sandbox subscription: verified, nothing settled");
                    Ok(Paid {
                        token,
                        number: granted.number,
                        expires_at_ms: granted.expires_at,
                        renewed: granted.renewed,
                        settlement: settlement_response(true, None, None),
                        sandbox: true,
                    })
                }
                Purchase::Replay => Err(replayed()),
                Purchase::PoolExhausted => Err(SubscribeError::PoolExhausted),
                Purchase::Earlier(earlier) => {
                    self.answer_earlier(earlier, &payer, now_ms, settlement_response(true, None, None)).await
                }
            };
        }
        let payment_id = match self.store.reserve_payment(&row).await? {
            Reservation::Reserved { payment_id, .. } => payment_id,
            Reservation::Replay => return Err(replayed()),
            Reservation::PoolExhausted => return Err(SubscribeError::PoolExhausted),
            Reservation::Earlier(earlier) => {
                let response = settlement_response(true, earlier.tx_hash.clone(), None);
                return self.answer_earlier(earlier, &payer, now_ms, response).await;
            }
        };

        // From here on the work finishes even if the client goes away.
        let service = self.clone();
        let settlement = self.payments.settlement.clone();
        let handle = tokio::spawn(async move {
            let outcome = settlement.settle(&verified).await;
            service.finish_payment(payment_id, &verified.payer.to_string(), outcome).await
        });
        let (token, granted, settled) = handle.await??;
        let transaction = settled.transaction.map(|t| format!("{t:#x}"));
        Ok(Paid {
            token,
            number: granted.number,
            expires_at_ms: granted.expires_at,
            renewed: granted.renewed,
            settlement: settlement_response(true, transaction, None),
            sandbox: settled.sandbox,
        })
    }

    /// A retry under an idempotency key whose first payment is known.
    async fn answer_earlier(
        &self,
        earlier: crate::store::EarlierPayment,
        payer: &str,
        now_ms: i64,
        settlement: SettlementResponse,
    ) -> Result<Paid, SubscribeError> {
        match (earlier.state, earlier.subscription_id) {
            (PaymentState::Committed, Some(subscription_id)) => {
                // The first attempt paid; hand out the subscription again, never charge twice.
                let token = Token::generate();
                self.store.issue_token(subscription_id, &token.hash(), false, now_ms).await?;
                let held = self.store.subscription_of(payer).await?.ok_or(SubscribeError::InProgress)?;
                Ok(Paid {
                    token,
                    number: held.number,
                    expires_at_ms: held.expires_at,
                    renewed: true,
                    settlement,
                    sandbox: self.payments.settlement.is_instant(),
                })
            }
            (PaymentState::Failed, _) => Err(refused(
                earlier.error.as_deref().and_then(Refusal::from_code).unwrap_or(Refusal::TransactionFailed),
                "the first payment with this idempotency key failed; sign a new payment with a new key",
            )),
            _ => Err(SubscribeError::InProgress),
        }
    }

    async fn finish_payment(
        &self,
        payment_id: i64,
        payer: &str,
        outcome: Result<crate::payments::Settled, SettleError>,
    ) -> Result<(Token, crate::store::Grant, crate::payments::Settled), SubscribeError> {
        let now_ms = clock::now_ms();
        match outcome {
            Ok(settled) => {
                let token = Token::generate();
                let hash = token.hash();
                let tx_hash = settled.transaction.map(|t| format!("{t:#x}"));
                let grant = self.payment_grant(payer, &hash, now_ms);
                let granted = self
                    .store
                    .commit_payment(payment_id, tx_hash.as_deref(), &grant)
                    .await?
                    .ok_or(SubscribeError::InProgress)?;
                self.auth_cache.forget_subscription(granted.subscription_id);
                if settled.sandbox {
                    tracing::info!(payer, number = %granted.number, "sandbox subscription: payment verified, nothing settled");
                } else {
                    tracing::info!(payer, number = %granted.number, tx = ?tx_hash, "subscription paid");
                }
                Ok((token, granted, settled))
            }
            Err(SettleError::Rejected { refusal, detail }) => {
                tracing::info!(payer, code = refusal.code(), detail = %detail, "settlement refused; reservation released");
                self.store.fail_payment(payment_id, refusal.code(), now_ms).await?;
                Err(refused(refusal, format!("settlement failed: {detail}")))
            }
            Err(SettleError::Pending { transaction }) => {
                let tx = transaction.map(|t| format!("{t:#x}"));
                tracing::warn!(payer, tx = ?tx, "settlement outcome unknown; payment pending reconciliation");
                self.store.mark_payment_pending(payment_id, tx.as_deref(), now_ms).await?;
                Err(refused(
                    Refusal::SettlementPending,
                    "the payment was submitted but not yet confirmed; retry with the same payment-identifier or \
                     Idempotency-Key to collect the subscription, or recover the token with your wallet later",
                ))
            }
        }
    }

    fn payment_grant<'a>(&'a self, payer: &'a str, token_hash: &'a [u8], now_ms: i64) -> GrantRequest<'a> {
        GrantRequest {
            wallet: payer,
            payer,
            plan: &self.config.plan,
            duration_ms: i64::from(self.config.plan_days) * DAY_MS,
            source: SubscriptionSource::Payment,
            token_hash,
            now_ms,
        }
    }

    /// Settles the fate of payments left `settling` or `pending` (a crash, a receipt timeout):
    /// used on chain -> the subscription is committed (its owner recovers a token with the
    /// wallet); provably unused and expired, or never submitted in the sandbox -> released.
    pub async fn reconcile(&self) -> Result<(u64, u64), SubscribeError> {
        let now_ms = clock::now_ms();
        let before = now_ms - RECONCILE_AFTER.as_millis() as i64;
        let (mut committed, mut failed) = (0, 0);
        for p in self.store.unsettled_payments(before).await? {
            let Ok(from) = crate::wallet::Address::parse(&p.payer) else { continue };
            let Ok(nonce) = p.auth_nonce.parse() else { continue };
            match self.payments.settlement.authorization_used(from, nonce).await {
                Ok(Some(true)) => {
                    let hash = Token::generate().hash();
                    let grant = self.payment_grant(&p.payer, &hash, now_ms);
                    if self.store.commit_payment(p.id, p.tx_hash.as_deref(), &grant).await?.is_some() {
                        committed += 1;
                    }
                }
                Ok(Some(false)) if p.valid_before <= now_ms / 1000 => {
                    self.store.fail_payment(p.id, Refusal::AuthorizationExpiredUnused.code(), now_ms).await?;
                    failed += 1;
                }
                Ok(None) if self.payments.settlement.kind() == SettlementKind::Sandbox => {
                    self.store.fail_payment(p.id, Refusal::InterruptedBeforeSettlement.code(), now_ms).await?;
                    failed += 1;
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(payment = p.id, error = %err, "reconciliation check failed"),
            }
        }
        Ok((committed, failed))
    }
}

/// What the payment side of subscriptions needs: the terms and the settlement backend.
#[derive(Clone)]
pub struct PaymentsSetup {
    pub terms: crate::payments::PaymentTerms,
    pub settlement: Arc<dyn Settlement>,
    /// ERC-1271 checks for contract wallets, when an RPC is configured.
    pub contract_wallets: Option<Arc<crate::payments::contract_wallets::ContractWallets>>,
}
