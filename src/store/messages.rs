//! Reads and claims over `messages`: the atomic inbound claim behind `/sms/receive`, the
//! keyset-paginated history behind `/sms/messages`, and the outbound rows the dispatcher
//! must (re)submit after a restart.

use super::{Backend, Store, StoreError};
use crate::ids::{MessageId, SubscriptionId};

/// Claim on SQLite: a single write statement holds the write lock, so it is atomic as is.
const CLAIM_SQLITE: &str = "UPDATE messages SET delivered_at = $1 WHERE id IN (\
    SELECT id FROM messages WHERE owner = $2 AND direction = 'received' AND delivered_at IS NULL \
    ORDER BY id LIMIT $3) \
    RETURNING id, message_id, number, peer, body, created_at, received_at";
/// Claim on Postgres: without SKIP LOCKED a blocked UPDATE re-evaluates only its target row
/// and hands the same message to two callers (measured: 2.9-3.5x duplication).
const CLAIM_POSTGRES: &str = "UPDATE messages SET delivered_at = $1 WHERE id IN (\
    SELECT id FROM messages WHERE owner = $2 AND direction = 'received' AND delivered_at IS NULL \
    ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
    RETURNING id, message_id, number, peer, body, created_at, received_at";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedMessage {
    pub id: i64,
    pub message_id: MessageId,
    /// Our number (the recipient).
    pub number: String,
    /// The sender.
    pub peer: String,
    pub body: String,
    pub created_at: i64,
    pub received_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Received => "received",
        }
    }
}

impl TryFrom<String> for Direction {
    type Error = super::calls::UnknownValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "sent" => Ok(Self::Sent),
            "received" => Ok(Self::Received),
            _ => Err(super::calls::UnknownValue(s)),
        }
    }
}

/// Outbound delivery states as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    Unknown,
}

impl OutboundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

/// Position in the history, newest first: rows strictly older than `(created_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    pub created_at: i64,
    pub id: i64,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub direction: Option<Direction>,
    /// Inclusive bounds on `created_at`, unix ms.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub after: Option<HistoryCursor>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRow {
    pub id: i64,
    pub message_id: MessageId,
    pub number: String,
    #[sqlx(try_from = "String")]
    pub direction: Direction,
    pub peer: String,
    pub body: String,
    pub status: Option<String>,
    pub segments: i64,
    pub error_code: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
    pub received_at: Option<i64>,
}

/// An outbound message waiting to be submitted to the network.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingOutbound {
    pub id: i64,
    pub number: String,
    pub peer: String,
    pub body: String,
    pub attempts: i64,
}

impl Store {
    /// Claims up to `limit` unclaimed inbound messages of `owner`, oldest first. Concurrent
    /// callers never receive the same message.
    pub async fn claim_inbound(
        &self,
        owner: SubscriptionId,
        limit: i64,
        now_ms: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => CLAIM_POSTGRES,
        };
        let mut rows = sqlx::query_as::<_, ClaimedMessage>(sql)
            .bind(now_ms)
            .bind(owner)
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        rows.sort_unstable_by_key(|m| m.id);
        Ok(rows)
    }

    /// Unclaimed inbound messages of `owner` with ids above `after_id`, oldest first.
    pub async fn unclaimed_inbound(
        &self,
        owner: SubscriptionId,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        Ok(sqlx::query_as::<_, ClaimedMessage>(
            "SELECT id, message_id, number, peer, body, created_at, received_at FROM messages \
             WHERE owner = $1 AND direction = 'received' AND delivered_at IS NULL AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(owner)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Inbound messages of `owner` already handed out, with ids above `after_id`, oldest first.
    pub async fn claimed_after(
        &self,
        owner: SubscriptionId,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        Ok(sqlx::query_as::<_, ClaimedMessage>(
            "SELECT id, message_id, number, peer, body, created_at, received_at FROM messages \
             WHERE owner = $1 AND direction = 'received' AND delivered_at IS NOT NULL AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(owner)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Claims one inbound message if nobody has: `false` when another caller got it first.
    pub async fn claim_message(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE messages SET delivered_at = $1 WHERE id = $2 AND delivered_at IS NULL")
            .bind(now_ms)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Undoes the claim made at `claimed_at_ms` on message `id` (a direct hand-off found its
    /// waiter gone), so the message is offered again; `false` if that claim is not there.
    pub async fn unclaim_message(&self, id: i64, claimed_at_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE messages SET delivered_at = NULL WHERE id = $1 AND direction = 'received' AND delivered_at = $2",
        )
        .bind(id)
        .bind(claimed_at_ms)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One page of `owner`'s history, newest first; fetches `limit` rows.
    pub async fn history(
        &self,
        owner: SubscriptionId,
        filter: &HistoryFilter,
        limit: i64,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let direction = filter.direction.map(Direction::as_str);
        let (after_created, after_id) = match filter.after {
            Some(c) => (Some(c.created_at), Some(c.id)),
            None => (None, None),
        };
        // NULL parameters switch their condition off, so one statement serves every filter.
        let rows = sqlx::query_as::<_, HistoryRow>(
            "SELECT id, message_id, number, direction, peer, body, status, segments, error_code, \
             created_at, updated_at, delivered_at, received_at FROM messages \
             WHERE owner = $1 \
             AND ($2 IS NULL OR direction = $2) \
             AND ($3 IS NULL OR created_at >= $3) \
             AND ($4 IS NULL OR created_at <= $4) \
             AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6)) \
             ORDER BY created_at DESC, id DESC LIMIT $7",
        )
        .bind(owner)
        .bind(direction)
        .bind(filter.since_ms)
        .bind(filter.until_ms)
        .bind(after_created)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows)
    }

    /// Outbound messages still `queued`, oldest first, for the dispatcher.
    pub async fn queued_outbound(&self, after_id: i64, limit: i64) -> Result<Vec<PendingOutbound>, StoreError> {
        Ok(sqlx::query_as::<_, PendingOutbound>(
            "SELECT id, number, peer, body, attempts FROM messages \
             WHERE status = 'queued' AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// A message `sending` since before `stale_before_ms` was interrupted (its process stopped
    /// mid-submission) and may have reached the network: it becomes `unknown` (a receipt can
    /// still settle it) and is never resent. Live submissions finish far sooner, so this is safe
    /// with several nodes on one database.
    pub async fn settle_interrupted_sends(&self, now_ms: i64, stale_before_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE messages SET status = 'unknown', updated_at = $1 WHERE status = 'sending' AND updated_at < $2",
        )
        .bind(now_ms)
        .bind(stale_before_ms)
        .execute(&self.write)
        .await?
        .rows_affected())
    }
}
