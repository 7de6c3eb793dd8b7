//! The number pool, subscriptions and bearer tokens. A grant (paid or comp) is one
//! transaction: find or create the wallet's subscription, keep its number on renewal or take
//! a free one, store the new token's hash, write the audit row if any.

use super::{AuditEntry, Backend, Store, StoreError};
use crate::ids::SubscriptionId;

/// Picks a free number; on Postgres, concurrent pickers skip each other's rows.
pub(super) const TAKE_FREE_SQLITE: &str = "SELECT e164 FROM numbers WHERE state = 'free' ORDER BY e164 LIMIT 1";
pub(super) const TAKE_FREE_POSTGRES: &str =
    "SELECT e164 FROM numbers WHERE state = 'free' ORDER BY e164 LIMIT 1 FOR UPDATE SKIP LOCKED";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionSource {
    Payment,
    Comp,
}

impl SubscriptionSource {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Payment => "payment",
            Self::Comp => "comp",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrantRequest<'a> {
    pub wallet: &'a str,
    pub payer: &'a str,
    pub plan: &'a str,
    pub duration_ms: i64,
    pub source: SubscriptionSource,
    pub token_hash: &'a [u8],
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub subscription_id: SubscriptionId,
    pub number: String,
    pub expires_at: i64,
    pub renewed: bool,
}

/// What a bearer token resolves to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuthRow {
    pub token_hash: Vec<u8>,
    pub revoked_at: Option<i64>,
    pub subscription_id: SubscriptionId,
    pub wallet: String,
    pub number: String,
    pub plan: String,
    pub payer: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub released_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NumberRow {
    pub e164: String,
    #[sqlx(try_from = "String")]
    pub state: NumberState,
    pub wallet: Option<String>,
    pub added_at: i64,
    pub released_at: Option<i64>,
}

/// Where a number of the pool is: the stored `numbers.state` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberState {
    /// Can be given to the next buyer.
    Free,
    /// Held for a payment being settled.
    Reserved,
    /// A subscription's number.
    Assigned,
    /// Released after grace, waiting out its quarantine before it is free again.
    Quarantined,
}

impl NumberState {
    pub const ALL: [Self; 4] = [Self::Free, Self::Reserved, Self::Assigned, Self::Quarantined];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Reserved => "reserved",
            Self::Assigned => "assigned",
            Self::Quarantined => "quarantined",
        }
    }
}

impl TryFrom<String> for NumberState {
    type Error = super::UnknownValue;

    fn try_from(s: String) -> Result<Self, super::UnknownValue> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or(super::UnknownValue(s))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    pub free: i64,
    /// Held for a payment that is settling.
    pub reserved: i64,
    pub assigned: i64,
    pub quarantined: i64,
}

impl PoolCounts {
    /// The count of numbers in `state`.
    pub fn of_mut(&mut self, state: NumberState) -> &mut i64 {
        match state {
            NumberState::Free => &mut self.free,
            NumberState::Reserved => &mut self.reserved,
            NumberState::Assigned => &mut self.assigned,
            NumberState::Quarantined => &mut self.quarantined,
        }
    }
}

impl Store {
    /// Grants or renews a subscription. `Ok(None)`: no free number (nothing was written).
    pub async fn grant(&self, req: &GrantRequest<'_>, audit: Option<&AuditEntry>) -> Result<Option<Grant>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(grant) = self.grant_in(&mut tx, req, None).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        if let Some(entry) = audit {
            entry.insert(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(Some(grant))
    }

    /// The grant itself, inside the caller's transaction. `reserved` is a number this grant
    /// already holds in state `reserved` (a paid subscription reserves before settling); a
    /// renewal keeps the wallet's number and frees the reservation. `Ok(None)`: no number.
    pub(super) async fn grant_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        req: &GrantRequest<'_>,
        reserved: Option<&str>,
    ) -> Result<Option<Grant>, StoreError> {
        self.lock_wallet(tx, req.wallet).await?;
        // A concurrent first grant for the same wallet (Postgres, READ COMMITTED) makes our
        // insert find its row: the second pass then renews it.
        for _ in 0..2 {
            if let Some(outcome) = self.grant_once(tx, req, reserved).await? {
                return Ok(outcome);
            }
        }
        Err(StoreError::Invariant("subscription row changed twice under a grant".into()))
    }

    /// Serializes grants for one wallet until the transaction ends, so concurrent purchases by
    /// the same wallet renew one subscription instead of each taking a number. SQLite's
    /// `BEGIN IMMEDIATE` already serializes every write transaction; Postgres takes a
    /// transaction-scoped advisory lock on the wallet.
    pub(super) async fn lock_wallet(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        wallet: &str,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS locked")
                .bind(wallet)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// One attempt; `Ok(None)` when another transaction created the wallet's row meanwhile.
    async fn grant_once(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        req: &GrantRequest<'_>,
        reserved: Option<&str>,
    ) -> Result<Option<Option<Grant>>, StoreError> {
        let existing = sqlx::query_as::<_, (i64, String, i64, Option<i64>)>(
            "SELECT id, number, expires_at, released_at FROM subscriptions WHERE wallet = $1",
        )
        .bind(req.wallet)
        .fetch_optional(&mut **tx)
        .await?;

        let grant = match existing {
            // Renewal: the number is still held; extend from the later of now and expiry.
            Some((id, number, _, None)) => {
                // Computed in the UPDATE, on the row as it is when the lock is ours: concurrent
                // renewals (Postgres, READ COMMITTED) each add their term, none is lost.
                let Some(expires_at) = sqlx::query_scalar::<_, i64>(
                    "UPDATE subscriptions SET expires_at = (CASE WHEN expires_at > $1 THEN expires_at ELSE $1 END) + $2, \
                     plan = $3, payer = $4, source = $5 WHERE id = $6 AND released_at IS NULL RETURNING expires_at",
                )
                .bind(req.now_ms)
                .bind(req.duration_ms)
                .bind(req.plan)
                .bind(req.payer)
                .bind(req.source.as_str())
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
                else {
                    // Released meanwhile: start over.
                    return Ok(None);
                };
                if let Some(spare) = reserved.filter(|r| *r != number) {
                    sqlx::query("UPDATE numbers SET state = 'free' WHERE e164 = $1 AND state = 'reserved'")
                        .bind(spare)
                        .execute(&mut **tx)
                        .await?;
                }
                Grant { subscription_id: SubscriptionId::new(id), number, expires_at, renewed: true }
            }
            // New wallet, or one whose number was released after its grace period.
            previous => {
                let number = match reserved {
                    Some(n) => n.to_owned(),
                    None => {
                        let take = match self.backend {
                            Backend::Sqlite => TAKE_FREE_SQLITE,
                            Backend::Postgres => TAKE_FREE_POSTGRES,
                        };
                        match sqlx::query_scalar::<_, String>(take).fetch_optional(&mut **tx).await? {
                            Some(n) => n,
                            None => return Ok(Some(None)),
                        }
                    }
                };
                let expires_at = req.now_ms + req.duration_ms;
                let id = match previous {
                    Some((id, ..)) => {
                        sqlx::query(
                            "UPDATE subscriptions SET number = $1, plan = $2, payer = $3, source = $4, \
                             created_at = $5, expires_at = $6, released_at = NULL WHERE id = $7",
                        )
                        .bind(&number)
                        .bind(req.plan)
                        .bind(req.payer)
                        .bind(req.source.as_str())
                        .bind(req.now_ms)
                        .bind(expires_at)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                        id
                    }
                    None => {
                        let inserted = sqlx::query_scalar::<_, i64>(
                            "INSERT INTO subscriptions (wallet, number, plan, source, payer, created_at, expires_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (wallet) DO NOTHING RETURNING id",
                        )
                        .bind(req.wallet)
                        .bind(&number)
                        .bind(req.plan)
                        .bind(req.source.as_str())
                        .bind(req.payer)
                        .bind(req.now_ms)
                        .bind(expires_at)
                        .fetch_optional(&mut **tx)
                        .await?;
                        match inserted {
                            Some(id) => id,
                            None => return Ok(None),
                        }
                    }
                };
                let from_state = if reserved.is_some() { "reserved" } else { "free" };
                let taken = sqlx::query(
                    "UPDATE numbers SET state = 'assigned', subscription_id = $1, released_at = NULL \
                     WHERE e164 = $2 AND state = $3",
                )
                .bind(id)
                .bind(&number)
                .bind(from_state)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if taken != 1 {
                    return Err(StoreError::Invariant(format!("number {number} was not {from_state} when granted")));
                }
                Grant { subscription_id: SubscriptionId::new(id), number, expires_at, renewed: false }
            }
        };

        sqlx::query("INSERT INTO tokens (subscription_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(grant.subscription_id)
            .bind(req.token_hash)
            .bind(req.now_ms)
            .execute(&mut **tx)
            .await?;
        Ok(Some(Some(grant)))
    }

    /// Resolves a token hash to its subscription.
    pub async fn token_owner(&self, token_hash: &[u8]) -> Result<Option<AuthRow>, StoreError> {
        Ok(sqlx::query_as::<_, AuthRow>(
            "SELECT t.token_hash, t.revoked_at, s.id AS subscription_id, s.wallet, s.number, s.plan, s.payer, \
             s.created_at, s.expires_at, s.released_at \
             FROM tokens t JOIN subscriptions s ON s.id = t.subscription_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Adds numbers to the pool as `free`; existing ones are left alone. Answers how many were new.
    pub async fn add_numbers(
        &self,
        numbers: &[String],
        now_ms: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut added = 0;
        for n in numbers {
            added += sqlx::query(
                "INSERT INTO numbers (e164, state, added_at) VALUES ($1, 'free', $2) ON CONFLICT (e164) DO NOTHING",
            )
            .bind(n)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if let Some(entry) = audit {
            entry.insert(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    pub async fn list_numbers(&self) -> Result<Vec<NumberRow>, StoreError> {
        Ok(sqlx::query_as::<_, NumberRow>(
            "SELECT n.e164, n.state, s.wallet, n.added_at, n.released_at \
             FROM numbers n LEFT JOIN subscriptions s ON s.id = n.subscription_id ORDER BY n.e164",
        )
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn pool_counts(&self) -> Result<PoolCounts, StoreError> {
        let rows = sqlx::query_as::<_, (String, i64)>("SELECT state, COUNT(*) FROM numbers GROUP BY state")
            .fetch_all(&self.read)
            .await?;
        let mut counts = PoolCounts::default();
        for (state, n) in rows {
            let state =
                NumberState::try_from(state).map_err(|e| StoreError::Invariant(format!("numbers.state: {e}")))?;
            *counts.of_mut(state) = n;
        }
        Ok(counts)
    }

    /// Releases numbers of subscriptions expired before `expired_before_ms` into quarantine,
    /// then frees numbers quarantined before `quarantined_before_ms`. Answers both counts.
    pub async fn recycle_numbers(
        &self,
        now_ms: i64,
        expired_before_ms: i64,
        quarantined_before_ms: i64,
    ) -> Result<(u64, u64), StoreError> {
        let mut tx = self.begin_write().await?;
        let released = sqlx::query(
            "UPDATE numbers SET state = 'quarantined', released_at = $1 WHERE state = 'assigned' \
             AND subscription_id IN (SELECT id FROM subscriptions WHERE released_at IS NULL AND expires_at < $2)",
        )
        .bind(now_ms)
        .bind(expired_before_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE subscriptions SET released_at = $1 WHERE released_at IS NULL AND expires_at < $2")
            .bind(now_ms)
            .bind(expired_before_ms)
            .execute(&mut *tx)
            .await?;
        let freed = sqlx::query(
            "UPDATE numbers SET state = 'free', subscription_id = NULL WHERE state = 'quarantined' AND released_at < $1",
        )
        .bind(quarantined_before_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((released, freed))
    }
}
