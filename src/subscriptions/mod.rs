//! Wallets, subscriptions, the number pool and bearer tokens.
//!
//! A token is `an_` followed by 32 random alphanumerics (about 190 bits); only its SHA-256 is
//! stored, and the stored hash is compared in constant time. A subscription is usable while
//! it is active; after expiry it keeps its number (read-only use, renewal) through a grace
//! period, after which the number goes to quarantine and the tokens stop working.

mod auth_cache;
mod directory;
mod purchases;
mod recovery;
mod subscribe;
mod token;
mod waitlist;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use auth_cache::AuthCache;
pub use directory::PoolDirectory;
pub use recovery::{IssuedNonce, Recovered, RecoveryError};
pub use subscribe::{Paid, PaymentsSetup, SubscribeError};
pub use token::{Token, TokenError};
pub use waitlist::WaitlistError;

use crate::clock;
use crate::config::SubscriptionsConfig;
use crate::e164::E164;
use crate::ids::SubscriptionId;
use crate::store::{AuditEntry, Grant, GrantRequest, NumberRow, PoolCounts, Store, StoreError, SubscriptionSource};
use crate::wallet::Address;

pub(crate) const DAY_MS: i64 = 86_400_000;
const RECYCLE_INTERVAL: Duration = Duration::from_secs(60);
/// How long a resolved token is trusted without asking the database again. Changes made
/// through this process (grants, revocations) invalidate at once; changes made elsewhere
/// (another node, SQL by hand) take effect within this time.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(1);

/// What [`SubscriptionService::add_numbers`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumbersAdded {
    pub added: u64,
    pub already_present: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("no free number in the pool")]
    PoolExhausted,
    /// Numbers offered to the pool that are not E.164 (the first ten); nothing was added.
    #[error("not E.164 numbers (nothing added): {}", .0.join(", "))]
    NotE164(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing, unknown, revoked or expired token")]
    Unauthorized,
    /// The stored subscription's wallet or number does not parse: the database was edited by hand.
    #[error("subscription {subscription_id} has a malformed wallet or number in the database")]
    Corrupt { subscription_id: SubscriptionId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The subscription behind a valid bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subscription_id: SubscriptionId,
    pub wallet: Address,
    pub number: E164,
    pub plan: String,
    pub payer: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

impl Caller {
    /// Whether the subscription is paid up now (not merely in its grace period).
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
    }
}

/// A granted or renewed subscription, with the token to use it (shown once).
#[derive(Debug, Clone)]
pub struct Granted {
    pub token: Token,
    pub number: String,
    pub expires_at_ms: i64,
    pub renewed: bool,
}

#[derive(Clone)]
pub struct SubscriptionService {
    store: Store,
    config: SubscriptionsConfig,
    directory: Arc<PoolDirectory>,
    auth_cache: Arc<AuthCache>,
    payments: PaymentsSetup,
    service_name: Arc<str>,
    purchases: purchases::PurchaseQueue,
    /// The purchase queue's task, joined by [`SubscriptionService::shutdown`].
    tasks: crate::tasks::TaskSet,
    stop: tokio_util::sync::CancellationToken,
}

impl SubscriptionService {
    pub fn new(store: Store, config: SubscriptionsConfig, payments: PaymentsSetup, service_name: &str) -> Self {
        let tasks = crate::tasks::TaskSet::new("purchases");
        let stop = tokio_util::sync::CancellationToken::new();
        let purchases = purchases::PurchaseQueue::spawn(store.clone(), &tasks, stop.clone())
            .expect("invariant: a new task set is open");
        Self {
            purchases,
            tasks,
            stop,
            store,
            config,
            directory: Arc::default(),
            auth_cache: Arc::new(AuthCache::new(AUTH_CACHE_TTL)),
            payments,
            service_name: service_name.into(),
        }
    }

    /// Closes the purchase queue once the purchases already queued are recorded, and joins its
    /// task. Call it after HTTP stopped: a later purchase fails.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.join().await;
    }

    /// The terms a subscription is sold at.
    pub fn terms(&self) -> &crate::payments::PaymentTerms {
        &self.payments.terms
    }

    /// Which backend settles payments.
    pub fn settlement_kind(&self) -> crate::payments::SettlementKind {
        self.payments.settlement.kind()
    }

    /// Whether the settlement backend answers within `timeout` (readiness, the check at start).
    pub async fn probe_settlement(&self, timeout: Duration) -> Result<(), crate::payments::ProbeError> {
        self.payments.settlement.probe(timeout).await
    }

    /// Loads the pool into the in-memory directory (call once at start).
    pub async fn load_directory(&self) -> Result<(), SubscriptionError> {
        let numbers: Vec<String> = self.store.list_numbers().await?.into_iter().map(|n| n.e164).collect();
        self.directory.extend(&numbers);
        Ok(())
    }

    /// The numbers of the pool, for on-net routing.
    pub fn directory(&self) -> Arc<PoolDirectory> {
        self.directory.clone()
    }

    /// Resolves a bearer token. Tokens of the wrong shape never reach the database.
    pub async fn authenticate(&self, presented: &str) -> Result<Caller, AuthError> {
        let token = Token::parse(presented).map_err(|_| AuthError::Unauthorized)?;
        let hash = token.hash();
        let caller = match self.auth_cache.get(&hash) {
            Some(caller) => caller,
            None => {
                let row = self.store.token_owner(&hash).await?.ok_or(AuthError::Unauthorized)?;
                if !token::hashes_equal(&row.token_hash, &hash) || row.revoked_at.is_some() || row.released_at.is_some()
                {
                    return Err(AuthError::Unauthorized);
                }
                let corrupt = || AuthError::Corrupt { subscription_id: row.subscription_id };
                let caller = Caller {
                    subscription_id: row.subscription_id,
                    wallet: Address::parse(&row.wallet).map_err(|_| corrupt())?,
                    number: E164::parse(&row.number).map_err(|_| corrupt())?,
                    plan: row.plan,
                    payer: row.payer,
                    created_at_ms: row.created_at,
                    expires_at_ms: row.expires_at,
                };
                self.auth_cache.insert(hash, caller.clone());
                caller
            }
        };
        // Checked on every call, cached or not: the grace period ends on time.
        if caller.expires_at_ms + self.grace_ms() <= clock::now_ms() {
            return Err(AuthError::Unauthorized);
        }
        Ok(caller)
    }

    /// Grants `days` without payment (operator comp), with the same renewal rules as a paid
    /// plan: the same wallet keeps its number and its expiry is extended from the later of now
    /// and the current expiry.
    pub async fn grant_comp(&self, wallet: &Address, days: u32, actor: &str) -> Result<Granted, SubscriptionError> {
        let wallet = wallet.to_string();
        let now_ms = clock::now_ms();
        let token = Token::generate();
        let hash = token.hash();
        let request = GrantRequest {
            wallet: &wallet,
            payer: &wallet,
            plan: &self.config.plan,
            duration_ms: i64::from(days) * DAY_MS,
            source: SubscriptionSource::Comp,
            token_hash: &hash,
            now_ms,
        };
        let audit = AuditEntry {
            at_ms: now_ms,
            actor: actor.to_owned(),
            action: "subscriptions.grant".to_owned(),
            detail: serde_json::json!({ "wallet": wallet, "days": days }).to_string(),
        };
        let Grant { subscription_id, number, expires_at, renewed } =
            self.store.grant(&request, Some(&audit)).await?.ok_or(SubscriptionError::PoolExhausted)?;
        self.auth_cache.forget_subscription(subscription_id);
        Ok(Granted { token, number, expires_at_ms: expires_at, renewed })
    }

    pub async fn pool(&self) -> Result<PoolCounts, SubscriptionError> {
        Ok(self.store.pool_counts().await?)
    }

    /// Every number of the pool with its holder, and the counts per state.
    pub async fn numbers(&self) -> Result<(Vec<NumberRow>, PoolCounts), SubscriptionError> {
        let rows = self.store.list_numbers().await?;
        let mut counts = PoolCounts::default();
        for row in &rows {
            *counts.of_mut(row.state) += 1;
        }
        Ok((rows, counts))
    }

    /// Whether the database answers (readiness).
    pub async fn ping_store(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// Adds numbers to the pool, all or none: every one must be E.164; duplicates count once.
    pub async fn add_numbers(&self, mut numbers: Vec<String>, actor: &str) -> Result<NumbersAdded, SubscriptionError> {
        let bad: Vec<String> = numbers.iter().filter(|n| E164::parse(n).is_err()).take(10).cloned().collect();
        if !bad.is_empty() {
            return Err(SubscriptionError::NotE164(bad));
        }
        numbers.sort_unstable();
        numbers.dedup();
        let added = self.insert_numbers(&numbers, actor).await?;
        Ok(NumbersAdded { added, already_present: numbers.len() as u64 - added })
    }

    /// Inserts checked, distinct numbers; answers how many were new.
    async fn insert_numbers(&self, numbers: &[String], actor: &str) -> Result<u64, SubscriptionError> {
        let now_ms = clock::now_ms();
        let audit = AuditEntry {
            at_ms: now_ms,
            actor: actor.to_owned(),
            action: "numbers.add".to_owned(),
            detail: serde_json::json!({ "numbers": numbers }).to_string(),
        };
        let added = self.store.add_numbers(numbers, now_ms, Some(&audit)).await?;
        self.directory.extend(numbers);
        Ok(added)
    }

    /// Seeds the pool with `numbers` if it has never held any.
    pub async fn seed_if_empty(&self, numbers: &[String]) -> Result<u64, SubscriptionError> {
        let counts = self.store.pool_counts().await?;
        if counts.free + counts.reserved + counts.assigned + counts.quarantined > 0 {
            return Ok(0);
        }
        Ok(self.add_numbers(numbers.to_vec(), "seed").await?.added)
    }

    fn grace_ms(&self) -> i64 {
        i64::from(self.config.grace_days) * DAY_MS
    }

    /// One pass of number recycling: expired past grace -> quarantined -> free.
    pub async fn recycle(&self) -> Result<(u64, u64), SubscriptionError> {
        let now_ms = clock::now_ms();
        let expired_before = now_ms - self.grace_ms();
        let quarantined_before = now_ms - i64::from(self.config.quarantine_days) * DAY_MS;
        Ok(self.store.recycle_numbers(now_ms, expired_before, quarantined_before).await?)
    }

    /// Every minute until shutdown: recycles numbers, and reloads the directory so numbers
    /// added by another process (the CLI, another node) are routed too.
    pub async fn run_recycler(self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(RECYCLE_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match self.recycle().await {
                        Ok((0, 0)) => {}
                        Ok((released, freed)) => tracing::info!(released, freed, "numbers recycled"),
                        Err(err) => tracing::warn!(error = %err, "number recycling failed"),
                    }
                    if let Err(err) = self.load_directory().await {
                        tracing::warn!(error = %err, "reloading the number directory failed");
                    }
                    match self.reconcile().await {
                        Ok((0, 0)) => {}
                        Ok((committed, failed)) => tracing::info!(committed, failed, "payments reconciled"),
                        Err(err) => tracing::warn!(error = %err, "payment reconciliation failed"),
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
