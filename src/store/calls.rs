//! Reads over `calls` (history, the owner of a number) and the settling of calls interrupted by
//! a stop. State changes go through the group-commit writer (`CallWrite`). The partial unique
//! index `calls_one_active` holds the "one active call per number" rule in the database, so two
//! requests (or two nodes) can never both start a call on a number.

use super::messages::HistoryCursor;
use super::{Store, StoreError};
use crate::ids::{CallId, SubscriptionId};

/// States that hold the number.
pub const ACTIVE_STATES: &str = "('initiated', 'ringing', 'in_progress')";

/// Which way a call goes; the stored `direction` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    Outbound,
    Inbound,
}

impl CallDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbound => "outbound",
            Self::Inbound => "inbound",
        }
    }
}

/// A stored value outside its column's vocabulary (the database was edited by hand).
#[derive(Debug, thiserror::Error)]
#[error("unknown stored value {0:?}")]
pub struct UnknownValue(pub String);

impl TryFrom<String> for CallDirection {
    type Error = UnknownValue;

    fn try_from(s: String) -> Result<Self, UnknownValue> {
        match s.as_str() {
            "outbound" => Ok(Self::Outbound),
            "inbound" => Ok(Self::Inbound),
            _ => Err(UnknownValue(s)),
        }
    }
}

/// Where a call stands: the stored `state` column. The first three hold the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    Initiated,
    Ringing,
    InProgress,
    /// It was answered, then one side hung up.
    Completed,
    Busy,
    NoAnswer,
    /// Given up before it was answered.
    Cancelled,
    Failed,
}

impl CallState {
    pub const ALL: [Self; 8] = [
        Self::Initiated,
        Self::Ringing,
        Self::InProgress,
        Self::Completed,
        Self::Busy,
        Self::NoAnswer,
        Self::Cancelled,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

impl TryFrom<String> for CallState {
    type Error = UnknownValue;

    fn try_from(s: String) -> Result<Self, UnknownValue> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or(UnknownValue(s))
    }
}

/// Why a call ended, as agents see it: the stored `end_reason` column. (The voice service adds
/// the stream socket's close code for each.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// This side (the agent: hangup command, closed stream, the API) hung up.
    LocalHangup,
    /// The far end hung up an answered call.
    RemoteHangup,
    /// The far end was busy, or refused.
    Busy,
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// The call was given up before it was answered.
    Cancelled,
    /// The network failed the call, or the service stopped during it.
    Failed,
}

impl EndReason {
    pub const ALL: [Self; 6] =
        [Self::LocalHangup, Self::RemoteHangup, Self::Busy, Self::NoAnswer, Self::Cancelled, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LocalHangup => "local_hangup",
            Self::RemoteHangup => "remote_hangup",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

impl TryFrom<String> for EndReason {
    type Error = UnknownValue;

    fn try_from(s: String) -> Result<Self, UnknownValue> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or(UnknownValue(s))
    }
}

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    pub id: i64,
    pub call_id: CallId,
    pub number: String,
    pub direction: CallDirection,
    pub peer: String,
    pub state: CallState,
    pub end_reason: Option<EndReason>,
    pub sip_code: Option<i64>,
    pub created_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
}

/// The columns as read, before their vocabulary is checked.
#[derive(sqlx::FromRow)]
struct RawCallRow {
    id: i64,
    call_id: String,
    number: String,
    direction: String,
    peer: String,
    state: String,
    end_reason: Option<String>,
    sip_code: Option<i64>,
    created_at: i64,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
}

impl TryFrom<RawCallRow> for CallRow {
    type Error = UnknownValue;

    fn try_from(r: RawCallRow) -> Result<Self, UnknownValue> {
        Ok(Self {
            id: r.id,
            call_id: CallId::from_stored(r.call_id),
            number: r.number,
            direction: r.direction.try_into()?,
            peer: r.peer,
            state: r.state.try_into()?,
            end_reason: r.end_reason.map(EndReason::try_from).transpose()?,
            sip_code: r.sip_code,
            created_at: r.created_at,
            answered_at: r.answered_at,
            ended_at: r.ended_at,
        })
    }
}

impl Store {
    /// Calls left active by a process that stopped: their media is gone, so they failed.
    pub async fn fail_interrupted_calls(&self, at_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE calls SET state = 'failed', end_reason = 'failed', ended_at = $1 WHERE state IN {ACTIVE_STATES}"
        )))
        .bind(at_ms)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// The subscription an assigned number belongs to.
    pub async fn number_owner(&self, number: &str) -> Result<Option<SubscriptionId>, StoreError> {
        Ok(sqlx::query_scalar::<_, SubscriptionId>(
            "SELECT subscription_id FROM numbers WHERE e164 = $1 AND state = 'assigned' \
             AND subscription_id IS NOT NULL",
        )
        .bind(number)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Where `owner`'s incoming calls go instead of its presence sockets, if anywhere.
    pub async fn inbound_sip_uri(&self, owner: SubscriptionId) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, String>("SELECT inbound_sip_uri FROM voice_routes WHERE subscription_id = $1")
            .bind(owner)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Sets (or with `None` removes) `owner`'s inbound SIP route.
    pub async fn set_inbound_sip_uri(
        &self,
        owner: SubscriptionId,
        uri: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        match uri {
            Some(uri) => {
                sqlx::query(
                    "INSERT INTO voice_routes (subscription_id, inbound_sip_uri, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (subscription_id) DO UPDATE SET inbound_sip_uri = $2, updated_at = $3",
                )
                .bind(owner)
                .bind(uri)
                .bind(now_ms)
                .execute(&self.write)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM voice_routes WHERE subscription_id = $1")
                    .bind(owner)
                    .execute(&self.write)
                    .await?;
            }
        }
        Ok(())
    }

    /// One page of `owner`'s calls, newest first, after `after` (keyset).
    pub async fn call_history(
        &self,
        owner: SubscriptionId,
        direction: Option<CallDirection>,
        after: Option<HistoryCursor>,
        limit: i64,
    ) -> Result<Vec<CallRow>, StoreError> {
        let (after_created, after_id) = after.map_or((None, None), |c| (Some(c.created_at), Some(c.id)));
        let rows = sqlx::query_as::<_, RawCallRow>(
            "SELECT id, call_id, number, direction, peer, state, end_reason, sip_code, created_at, answered_at, \
             ended_at FROM calls WHERE owner = $1 AND ($2 IS NULL OR direction = $2) \
             AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind(owner)
        .bind(direction.map(CallDirection::as_str))
        .bind(after_created)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|r| CallRow::try_from(r).map_err(|e| StoreError::Invariant(format!("calls row: {e}"))))
            .collect()
    }
}
