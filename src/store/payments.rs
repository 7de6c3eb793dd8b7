//! Payments and their reservations: reserve (before any money moves) → settle (outside the
//! database) → commit or fail. The `(network, asset, payer, auth_nonce)` key makes a second copy
//! of an authorization fail to insert, on every node; an idempotency key returns the first
//! payment instead of charging again.

use super::calls::UnknownValue;
use super::subscriptions::{Grant, GrantRequest, TAKE_FREE_POSTGRES, TAKE_FREE_SQLITE};
use super::{Backend, Store, StoreError};
use crate::ids::SubscriptionId;

#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub x402_version: i64,
    /// CAIP-2 (`eip155:8453`).
    pub network: &'a str,
    pub asset: &'a str,
    pub payer: &'a str,
    pub pay_to: &'a str,
    pub amount: &'a str,
    /// `0x` + 64 lowercase hex.
    pub auth_nonce: &'a str,
    pub valid_before_secs: i64,
    pub signature: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved: settle, then commit or fail this payment.
    Reserved { payment_id: i64, renewal: bool },
    /// This authorization was already presented.
    Replay,
    /// No number can be given: nothing was written.
    PoolExhausted,
    /// The idempotency key names an earlier payment.
    Earlier(EarlierPayment),
}

/// Where a payment is: the stored `state` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// Reserved, being settled now.
    Settling,
    /// Submitted, outcome unknown: kept for reconciliation.
    Pending,
    /// The money moved and the subscription is recorded.
    Committed,
    /// Definitely not settled; its reservation was released.
    Failed,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Settling => "settling",
            Self::Pending => "pending",
            Self::Committed => "committed",
            Self::Failed => "failed",
        }
    }
}

impl TryFrom<String> for PaymentState {
    type Error = UnknownValue;

    fn try_from(s: String) -> Result<Self, UnknownValue> {
        match s.as_str() {
            "settling" => Ok(Self::Settling),
            "pending" => Ok(Self::Pending),
            "committed" => Ok(Self::Committed),
            "failed" => Ok(Self::Failed),
            _ => Err(UnknownValue(s)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EarlierPayment {
    pub id: i64,
    pub payer: String,
    #[sqlx(try_from = "String")]
    pub state: PaymentState,
    pub subscription_id: Option<SubscriptionId>,
    pub tx_hash: Option<String>,
    pub error: Option<String>,
}

/// The outcome of [`Store::pay_and_grant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purchase {
    Granted(Grant),
    Replay,
    PoolExhausted,
    Earlier(EarlierPayment),
}

/// A payment not yet committed or failed, for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UnsettledPayment {
    pub id: i64,
    pub payer: String,
    pub auth_nonce: String,
    pub valid_before: i64,
    #[sqlx(try_from = "String")]
    pub state: PaymentState,
    pub tx_hash: Option<String>,
    pub updated_at: i64,
}

/// A wallet's subscription, whatever its state.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WalletSubscription {
    pub id: SubscriptionId,
    pub number: String,
    pub expires_at: i64,
    /// Set once the number went back to the pool.
    pub released_at: Option<i64>,
}

/// What inserting a payment row did.
enum Inserted {
    /// A new row with this id.
    New(i64),
    /// The authorization was already presented: nothing inserted.
    Replay,
    /// The idempotency key names an earlier payment: nothing inserted.
    Earlier(EarlierPayment),
}

impl Store {
    /// Inserts a payment in `state` inside `tx`, unless its idempotency key names an earlier
    /// payment or its authorization was already presented.
    async fn insert_payment(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        p: &NewPayment<'_>,
        state: PaymentState,
    ) -> Result<Inserted, StoreError> {
        if let Some(key) = p.idempotency_key {
            let earlier = sqlx::query_as::<_, EarlierPayment>(
                "SELECT id, payer, state, subscription_id, tx_hash, error FROM payments WHERE idempotency_key = $1",
            )
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(earlier) = earlier {
                return Ok(Inserted::Earlier(earlier));
            }
        }
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO payments (x402_version, network, asset, payer, pay_to, amount, auth_nonce, valid_before, \
             signature, state, idempotency_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(p.x402_version)
        .bind(p.network)
        .bind(p.asset)
        .bind(p.payer)
        .bind(p.pay_to)
        .bind(p.amount)
        .bind(p.auth_nonce)
        .bind(p.valid_before_secs)
        .bind(p.signature)
        .bind(state.as_str())
        .bind(p.idempotency_key)
        .bind(p.now_ms)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(id.map_or(Inserted::Replay, Inserted::New))
    }

    /// For a settlement that cannot fail or wait (the sandbox): record the payment and grant
    /// the subscription in one transaction.
    pub async fn pay_and_grant(&self, p: &NewPayment<'_>, grant: &GrantRequest<'_>) -> Result<Purchase, StoreError> {
        let mut results = self.pay_and_grant_batch(&[(p.clone(), grant.clone())]).await?;
        results.pop().ok_or(StoreError::Sqlx(sqlx::Error::RowNotFound))
    }

    /// Many instant purchases in one transaction (group commit: one fsync for the batch).
    /// Results come back in input order; an item that buys nothing writes nothing.
    pub async fn pay_and_grant_batch(
        &self,
        items: &[(NewPayment<'_>, GrantRequest<'_>)],
    ) -> Result<Vec<Purchase>, StoreError> {
        // Wallet order: concurrent batches on other nodes take the per-wallet locks in the
        // same order, so they cannot deadlock.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|a, b| items[*a].1.wallet.cmp(items[*b].1.wallet));
        let mut results: Vec<Option<Purchase>> = vec![None; items.len()];
        let mut tx = self.begin_write().await?;
        for i in order {
            let (p, grant) = &items[i];
            let purchase = match Self::insert_payment(&mut tx, p, PaymentState::Committed).await? {
                Inserted::Earlier(earlier) => Purchase::Earlier(earlier),
                Inserted::Replay => Purchase::Replay,
                Inserted::New(payment_id) => match self.grant_in(&mut tx, grant, None).await? {
                    None => {
                        sqlx::query("DELETE FROM payments WHERE id = $1").bind(payment_id).execute(&mut *tx).await?;
                        Purchase::PoolExhausted
                    }
                    Some(granted) => {
                        sqlx::query(
                            "UPDATE payments SET subscription_id = $1, number = $2, renewal = $3 WHERE id = $4",
                        )
                        .bind(granted.subscription_id)
                        .bind(&granted.number)
                        .bind(i64::from(granted.renewed))
                        .bind(payment_id)
                        .execute(&mut *tx)
                        .await?;
                        Purchase::Granted(granted)
                    }
                },
            };
            results[i] = Some(purchase);
        }
        tx.commit().await?;
        Ok(results.into_iter().map(|r| r.expect("invariant: every item was processed")).collect())
    }

    pub async fn reserve_payment(&self, p: &NewPayment<'_>) -> Result<Reservation, StoreError> {
        let mut tx = self.begin_write().await?;
        let payment_id = match Self::insert_payment(&mut tx, p, PaymentState::Settling).await? {
            Inserted::Earlier(earlier) => {
                tx.rollback().await?;
                return Ok(Reservation::Earlier(earlier));
            }
            Inserted::Replay => {
                tx.rollback().await?;
                return Ok(Reservation::Replay);
            }
            Inserted::New(id) => id,
        };
        self.lock_wallet(&mut tx, p.payer).await?;
        let held = sqlx::query_as::<_, (String, Option<i64>)>(
            "SELECT number, released_at FROM subscriptions WHERE wallet = $1",
        )
        .bind(p.payer)
        .fetch_optional(&mut *tx)
        .await?;
        let (number, renewal) = match held {
            Some((number, None)) => (number, true),
            _ => {
                let take = match self.backend {
                    Backend::Sqlite => TAKE_FREE_SQLITE,
                    Backend::Postgres => TAKE_FREE_POSTGRES,
                };
                let Some(number) = sqlx::query_scalar::<_, String>(take).fetch_optional(&mut *tx).await? else {
                    tx.rollback().await?;
                    return Ok(Reservation::PoolExhausted);
                };
                sqlx::query("UPDATE numbers SET state = 'reserved' WHERE e164 = $1 AND state = 'free'")
                    .bind(&number)
                    .execute(&mut *tx)
                    .await?;
                (number, false)
            }
        };
        sqlx::query("UPDATE payments SET number = $1, renewal = $2 WHERE id = $3")
            .bind(&number)
            .bind(i64::from(renewal))
            .bind(payment_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Reservation::Reserved { payment_id, renewal })
    }

    /// The money moved: grant (or renew) the subscription with the reserved number and mark
    /// the payment committed, in one transaction. `Ok(None)` if the payment is already final.
    pub async fn commit_payment(
        &self,
        payment_id: i64,
        tx_hash: Option<&str>,
        grant: &GrantRequest<'_>,
    ) -> Result<Option<Grant>, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<_, (Option<String>, i64)>(
            "SELECT number, renewal FROM payments WHERE id = $1 AND state IN ('settling', 'pending')",
        )
        .bind(payment_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((number, renewal)) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let reserved = if renewal == 0 { number.as_deref() } else { None };
        let Some(granted) = self.grant_in(&mut tx, grant, reserved).await? else {
            // A renewal whose grace period ran out while settling, with the pool empty.
            return Err(StoreError::Invariant(format!("payment {payment_id} settled but no number is left to give")));
        };
        sqlx::query(
            "UPDATE payments SET state = 'committed', tx_hash = COALESCE($1, tx_hash), subscription_id = $2, \
             number = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(tx_hash)
        .bind(granted.subscription_id)
        .bind(&granted.number)
        .bind(grant.now_ms)
        .bind(payment_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(granted))
    }

    /// Settlement definitely failed: release the reservation.
    pub async fn fail_payment(&self, payment_id: i64, error: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<_, (Option<String>, i64)>(
            "UPDATE payments SET state = 'failed', error = $1, updated_at = $2 \
             WHERE id = $3 AND state IN ('settling', 'pending') RETURNING number, renewal",
        )
        .bind(error)
        .bind(now_ms)
        .bind(payment_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((Some(number), 0)) = row {
            sqlx::query("UPDATE numbers SET state = 'free' WHERE e164 = $1 AND state = 'reserved'")
                .bind(number)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The outcome is unknown (a receipt timed out): keep the reservation for reconciliation.
    pub async fn mark_payment_pending(
        &self,
        payment_id: i64,
        tx_hash: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE payments SET state = 'pending', tx_hash = COALESCE($1, tx_hash), updated_at = $2 \
             WHERE id = $3 AND state = 'settling'",
        )
        .bind(tx_hash)
        .bind(now_ms)
        .bind(payment_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Payments neither committed nor failed whose last change is older than `before_ms`.
    pub async fn unsettled_payments(&self, before_ms: i64) -> Result<Vec<UnsettledPayment>, StoreError> {
        Ok(sqlx::query_as::<_, UnsettledPayment>(
            "SELECT id, payer, auth_nonce, valid_before, state, tx_hash, updated_at FROM payments \
             WHERE state IN ('settling', 'pending') AND updated_at < $1 ORDER BY id",
        )
        .bind(before_ms)
        .fetch_all(&self.read)
        .await?)
    }

    /// Issues another token for a subscription (an idempotent replay of a paid subscribe, or a
    /// recovery); with `revoke_others`, every older token of the subscription dies.
    pub async fn issue_token(
        &self,
        subscription_id: SubscriptionId,
        token_hash: &[u8],
        revoke_others: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if revoke_others {
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE subscription_id = $2 AND revoked_at IS NULL")
                .bind(now_ms)
                .bind(subscription_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO tokens (subscription_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(subscription_id)
            .bind(token_hash)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The subscription of a wallet.
    pub async fn subscription_of(&self, wallet: &str) -> Result<Option<WalletSubscription>, StoreError> {
        Ok(sqlx::query_as::<_, WalletSubscription>(
            "SELECT id, number, expires_at, released_at FROM subscriptions WHERE wallet = $1",
        )
        .bind(wallet)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Stores a recovery nonce.
    pub async fn insert_auth_nonce(
        &self,
        nonce: &str,
        address: Option<&str>,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO auth_nonces (nonce, address, expires_at) VALUES ($1, $2, $3)")
            .bind(nonce)
            .bind(address)
            .bind(expires_at_ms)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Consumes a nonce once: `true` if it existed, was unused and unexpired.
    pub async fn consume_auth_nonce(&self, nonce: &str, now_ms: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE auth_nonces SET consumed_at = $1 WHERE nonce = $2 AND consumed_at IS NULL AND expires_at > $1",
        )
        .bind(now_ms)
        .bind(nonce)
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1)
    }
}
