//! The group-commit writer: one task that owns all hot-path message writes. It waits for a
//! job, drains whatever else is queued (up to [`MAX_BATCH`]), runs them in one transaction,
//! commits, and only then answers each caller. One fsync covers a whole batch, so durable
//! throughput grows with load instead of being capped at one commit per request.
//!
//! Jobs are applied in arrival order. If a batch fails, each of its jobs is retried in a
//! transaction of its own, so one bad job cannot fail its neighbours.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Connection};
use tokio::sync::{mpsc, oneshot};

use super::calls::{CallDirection, CallState, EndReason};
use super::{Backend, ClaimedMessage, Store, StoreError};
use crate::ids::{CallId, MessageId, SubscriptionId};
use crate::metrics::{PhaseLabels, WriterMetrics};

/// Jobs queued at most; senders wait (backpressure) beyond it.
pub const WRITER_QUEUE: usize = 8192;
/// Jobs per transaction at most.
pub const MAX_BATCH: usize = 512;
/// Rows per multi-row statement at most (8 parameters each, far below both backends' limits).
/// Statements have power-of-two row counts (see [`pow2_chunks`] and [`padded`]), so the
/// connection's statement cache (100 entries in sqlx) holds every shape the writer uses
/// instead of re-preparing one per batch size, which `perf` showed as 8 % of the server's CPU.
const INSERT_CHUNK: usize = 256;

/// How long the writer keeps the database's write connection across back-to-back batches.
/// Handing it back to the pool after every batch costs a round trip to the connection (the
/// pool tests it on release) and a wake-up of the next batch's acquire: measured 0.9 ms of each
/// 2.6 ms batch on the SMS benchmark. It is handed back as soon as the queue is empty or the
/// lease is this old, so another write (a `/sms/receive` claim, a subscription) waits at most
/// this plus one batch when the writer is saturated (SQLite has one write connection).
const LEASE: Duration = Duration::from_millis(10);

/// Splits `items` into chunks whose lengths are powers of two, at most [`INSERT_CHUNK`]:
/// 13 rows become 8 + 4 + 1.
fn pow2_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let n = items.len().min(INSERT_CHUNK);
        let size = 1 << (usize::BITS - 1 - n.leading_zeros());
        let (head, tail) = items.split_at(size);
        items = tail;
        Some(head)
    })
}

/// The row count a statement for `n` rows is padded to (the next power of two): for
/// statements where repeating the last row changes nothing (an `IN` list, the `VALUES` of an
/// idempotent `UPDATE … FROM`).
fn padded(n: usize) -> usize {
    n.next_power_of_two()
}

/// A new outbound message, `queued`.
#[derive(Debug, Clone)]
pub struct OutboundInsert {
    pub message_id: MessageId,
    pub owner: SubscriptionId,
    pub number: String,
    pub peer: String,
    pub body: String,
    pub segments: i64,
    pub now_ms: i64,
}

/// A message from the network to one of our numbers. Stored only if the number is assigned;
/// the owner is the subscription holding it at that moment.
#[derive(Debug, Clone)]
pub struct InboundInsert {
    pub message_id: MessageId,
    pub to: String,
    pub from: String,
    pub body: String,
    pub carrier_id: Option<String>,
    pub received_at_ms: i64,
    pub now_ms: i64,
    /// Set for one part of a concatenated message.
    pub part: Option<InboundPart>,
    /// Claim the stored message for this subscription in the same transaction (a long-poll of
    /// that owner is parked, waiting for it), provided it still holds the number.
    pub claim_for: Option<SubscriptionId>,
}

/// Where a part sits in its concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundPart {
    pub reference: i64,
    pub total: i64,
    /// 1-based.
    pub seq: i64,
}

/// What storing an inbound message (or part) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// The number is not assigned to anyone: nothing stored.
    NotOurs,
    /// A part was stored (or was already there); the message is not complete yet.
    PartStored,
    /// The message (or the last part, completing it) is stored as row `id` for `owner`;
    /// `claimed` is the message as handed out when it was claimed for `claim_for`.
    Stored { id: i64, owner: SubscriptionId, claimed: Option<ClaimedMessage> },
}

/// Where an outbound message moves. Transitions are monotonic: each target names the states
/// it may leave from, so a late or repeated event never moves a message backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusTarget {
    /// Accepted by the network (`carrier_id` recorded).
    Sent,
    Delivered,
    Failed,
    /// A transient failure: back to `queued` for another attempt.
    Retry,
    /// A failed receipt that another attempt may cure: `sent` back to `queued`.
    Resubmit,
    /// The network may or may not have taken it (a response timeout): never resent blindly.
    Unknown,
}

/// Which message a status change is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusKey {
    Id(i64),
    CarrierId(String),
}

#[derive(Debug, Clone)]
pub struct StatusChange {
    pub key: StatusKey,
    pub target: StatusTarget,
    pub carrier_id: Option<String>,
    pub segments: Option<i64>,
    pub error_code: Option<i64>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the message writer has stopped")]
pub struct WriterStopped;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Outbound(OutboundInsert, Reply<i64>),
    Inbound(InboundInsert, Reply<InboundOutcome>),
    /// `queued` -> `sending` for these ids; answers the ids that moved.
    MarkSending(Vec<i64>, i64, Reply<Vec<i64>>),
    Status(StatusChange, Option<Reply<u64>>),
    /// A call's state change (`calls`), batched with everything else.
    Call(CallWrite, Reply<u64>),
}

/// One write to `calls`; answers the rows it changed (0 for an insert refused because the
/// number already has an active call).
#[derive(Debug, Clone)]
pub enum CallWrite {
    Insert {
        call_id: CallId,
        owner: SubscriptionId,
        number: String,
        direction: CallDirection,
        peer: String,
        state: CallState,
        end_reason: Option<EndReason>,
        now_ms: i64,
    },
    Ringing {
        call_id: CallId,
    },
    Answered {
        call_id: CallId,
        at_ms: i64,
    },
    End {
        call_id: CallId,
        state: CallState,
        reason: EndReason,
        sip_code: Option<i64>,
        at_ms: i64,
    },
}

/// Cloneable handle to the writer task.
#[derive(Clone)]
pub struct MessageWriter {
    tx: mpsc::Sender<Job>,
}

impl MessageWriter {
    /// Starts the writer task. It ends when every handle is dropped, after draining its queue.
    ///
    /// On SQLite the task runs on a thread of its own (a single-threaded runtime): every
    /// statement is a round trip to SQLite's worker thread, and on the shared runtime each
    /// answer waited for a turn behind the HTTP and SMPP tasks before the next statement could
    /// go out. On Postgres it is a task on the caller's runtime, where its connections live.
    pub fn spawn(store: Store, metrics: WriterMetrics) -> (Self, tokio::task::JoinHandle<()>) {
        if store.backend == Backend::Sqlite {
            match Self::spawn_on_thread(store.clone(), metrics.clone()) {
                Ok(started) => return started,
                Err(err) => tracing::warn!(error = %err, "no thread for the message writer; it shares the runtime"),
            }
        }
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        (Self { tx }, tokio::spawn(run(store, rx, metrics)))
    }

    /// The writer on a new thread with a single-threaded runtime; the task returned ends when
    /// the thread does.
    fn spawn_on_thread(store: Store, metrics: WriterMetrics) -> std::io::Result<(Self, tokio::task::JoinHandle<()>)> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let (done, done_rx) = oneshot::channel::<()>();
        std::thread::Builder::new().name("agentline-writer".into()).spawn(move || {
            runtime.block_on(run(store, rx, metrics));
            drop(done);
        })?;
        // Resolves (with an error, nothing is sent) when the thread drops `done`.
        let task = tokio::spawn(async move {
            let _ = done_rx.await;
        });
        Ok((Self { tx }, task))
    }

    /// Inserts a `queued` outbound message; answers its row id once committed.
    pub async fn insert_outbound(&self, row: OutboundInsert) -> Result<i64, StoreError> {
        self.call_job(|reply| Job::Outbound(row, reply)).await
    }

    /// Inserts an inbound message, or stores one part and joins the message once every part is
    /// in; answers once committed.
    pub async fn insert_inbound(&self, row: InboundInsert) -> Result<InboundOutcome, StoreError> {
        self.call_job(|reply| Job::Inbound(row, reply)).await
    }

    pub async fn mark_sending(&self, ids: Vec<i64>, at_ms: i64) -> Result<Vec<i64>, StoreError> {
        self.call_job(|reply| Job::MarkSending(ids, at_ms, reply)).await
    }

    /// Applies a status change and answers how many rows moved.
    pub async fn change_status(&self, change: StatusChange) -> Result<u64, StoreError> {
        self.call_job(|reply| Job::Status(change, Some(reply))).await
    }

    /// Applies a call state change in the next batch and answers the rows changed once committed.
    pub async fn call(&self, write: CallWrite) -> Result<u64, StoreError> {
        self.call_job(|reply| Job::Call(write, reply)).await
    }

    /// Queues a status change without waiting for its commit; changes apply in queue order.
    pub async fn change_status_later(&self, change: StatusChange) -> Result<(), WriterStopped> {
        self.tx.send(Job::Status(change, None)).await.map_err(|_| WriterStopped)
    }

    async fn call_job<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(job(reply)).await.map_err(|_| WriterStopped)?;
        rx.await.map_err(|_| WriterStopped)?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, metrics: WriterMetrics) {
    let execute_seconds = metrics.batch_seconds.get_or_create(&PhaseLabels { phase: "execute" }).clone();
    let commit_seconds = metrics.batch_seconds.get_or_create(&PhaseLabels { phase: "commit" }).clone();
    let acquire_seconds = metrics.batch_seconds.get_or_create(&PhaseLabels { phase: "acquire" }).clone();
    let single_seconds = metrics.batch_seconds.get_or_create(&PhaseLabels { phase: "single" }).clone();
    let timing = BatchTiming { execute: &execute_seconds, commit: &commit_seconds, single: &single_seconds };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut lease: Option<(PoolConnection<Any>, Instant)> = None;
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics.batch_jobs.observe(batch.len() as f64);
        let waiting_since = Instant::now();
        let (mut conn, since) = match lease.take() {
            Some(held) => held,
            None => match store.write.acquire().await {
                Ok(conn) => {
                    let now = Instant::now();
                    acquire_seconds.observe(now.saturating_duration_since(waiting_since).as_secs_f64());
                    (conn, now)
                }
                Err(err) => {
                    tracing::warn!(error = %err, jobs = batch.len(), "no database connection for the batch");
                    for job in batch.drain(..) {
                        fail(job, same_error(&err));
                    }
                    continue;
                }
            },
        };
        match execute(&mut conn, store.backend, &batch, Some(&timing)).await {
            Ok(results) => {
                answer(batch.drain(..), results);
                // Kept for the next batch while jobs are waiting, within the lease.
                if !rx.is_empty() && since.elapsed() < LEASE {
                    lease = Some((conn, since));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, jobs = batch.len(), "batch failed; retrying jobs one by one");
                // Back to the pool: the failed transaction's rollback runs before the connection's
                // next use (and on Postgres the pool tests it before lending it again).
                drop(conn);
                for job in batch.drain(..) {
                    let single = std::slice::from_ref(&job);
                    let result = match store.write.acquire().await {
                        Ok(mut conn) => execute(&mut conn, store.backend, single, None).await,
                        Err(err) => Err(err),
                    };
                    match result {
                        Ok(results) => answer(std::iter::once(job), results),
                        Err(err) => fail(job, err),
                    }
                }
            }
        }
    }
}

/// A copy of a pool error for each job it failed (`sqlx::Error` is not `Clone`).
fn same_error(err: &sqlx::Error) -> sqlx::Error {
    match err {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// Bind placeholders for the writer's multi-row statements, bound in order of appearance.
/// SQLite gets anonymous `?`s: it treats `$N` as a named parameter, looked up by a linear scan
/// of the statement's parameter list when it is parsed and again (by sqlx) when it is bound,
/// which made a 250-row statement quadratic (`perf`: 5 % of the server's CPU on the SMS path).
/// Postgres needs `$N`.
struct Params {
    backend: Backend,
    next: usize,
}

impl Params {
    fn new(backend: Backend) -> Self {
        Self { backend, next: 1 }
    }

    /// Appends `n` comma-separated placeholders.
    fn list(&mut self, sql: &mut String, n: usize) {
        for k in 0..n {
            if k > 0 {
                sql.push_str(", ");
            }
            match self.backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    write!(sql, "${}", self.next).expect("invariant: writing to a String cannot fail");
                }
            }
            self.next += 1;
        }
    }
}

/// What a job produced, in job order.
enum Outcome {
    Id(i64),
    Inbound(InboundOutcome),
    Ids(Vec<i64>),
    Rows(u64),
}

/// Where a batch's phases are timed.
struct BatchTiming<'a> {
    execute: &'a Histogram,
    commit: &'a Histogram,
    /// A batch of one statement run without BEGIN/COMMIT: statement and commit together.
    single: &'a Histogram,
}

async fn execute(
    conn: &mut AnyConnection,
    backend: Backend,
    batch: &[Job],
    timing: Option<&BatchTiming<'_>>,
) -> Result<Vec<Outcome>, sqlx::Error> {
    let started = Instant::now();
    // A lone whole inbound message (an MO arriving by itself, the usual case) is one statement:
    // run it on its own, where the statement is its transaction. BEGIN and COMMIT would be two
    // more round trips to the connection (on SQLite, to its worker thread, each a cross-thread
    // wake-up) on the path an agent waiting for a one-time code is timed on.
    if let [Job::Inbound(row @ InboundInsert { part: None, .. }, _)] = batch {
        let outcome = insert_inbound(conn, row, &row.body).await?;
        if let Some(timing) = timing {
            timing.single.observe(started.elapsed().as_secs_f64());
        }
        return Ok(vec![Outcome::Inbound(outcome)]);
    }
    let mut tx = match backend.begin_write_sql() {
        Some(sql) => conn.begin_with(sql).await?,
        None => conn.begin().await?,
    };
    let mut outcomes: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();

    // Outbound inserts first, as multi-row INSERTs; RETURNING order is unspecified, so rows
    // are matched back to jobs through their unique message_id.
    let outbound: Vec<(usize, &OutboundInsert)> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, j)| match j {
            Job::Outbound(row, _) => Some((i, row)),
            _ => None,
        })
        .collect();
    for chunk in pow2_chunks(&outbound) {
        let mut sql = String::from(
            "INSERT INTO messages (message_id, owner, number, direction, peer, body, status, segments, \
             created_at, updated_at) VALUES ",
        );
        let mut params = Params::new(backend);
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            params.list(&mut sql, 3);
            sql.push_str(", 'sent', ");
            params.list(&mut sql, 2);
            sql.push_str(", 'queued', ");
            params.list(&mut sql, 3);
            sql.push(')');
        }
        sql.push_str(" RETURNING id, message_id");
        let mut q = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(sql));
        for (_, row) in chunk {
            q = q
                .bind(&row.message_id)
                .bind(row.owner)
                .bind(&row.number)
                .bind(&row.peer)
                .bind(&row.body)
                .bind(row.segments)
                .bind(row.now_ms)
                .bind(row.now_ms);
        }
        let returned: HashMap<String, i64> = q.fetch_all(&mut *tx).await?.into_iter().map(|(id, m)| (m, id)).collect();
        for (i, row) in chunk {
            let id = returned.get(row.message_id.as_str()).copied().ok_or(sqlx::Error::RowNotFound)?;
            outcomes[*i] = Some(Outcome::Id(id));
        }
    }

    for (i, job) in batch.iter().enumerate() {
        let outcome = match job {
            Job::Outbound(..) => continue,
            Job::Inbound(row, _) => Outcome::Inbound(match row.part {
                None => insert_inbound(&mut tx, row, &row.body).await?,
                Some(part) => insert_inbound_part(&mut tx, row, part).await?,
            }),
            Job::MarkSending(ids, at_ms, _) => {
                let mut moved = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(INSERT_CHUNK) {
                    let mut params = Params::new(backend);
                    let mut sql =
                        String::from("UPDATE messages SET status = 'sending', attempts = attempts + 1, updated_at = ");
                    params.list(&mut sql, 1);
                    sql.push_str(" WHERE status = 'queued' AND id IN (");
                    let rows = padded(chunk.len());
                    params.list(&mut sql, rows);
                    sql.push_str(") RETURNING id");
                    let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(*at_ms);
                    for k in 0..rows {
                        q = q.bind(chunk[k.min(chunk.len() - 1)]);
                    }
                    moved.extend(q.fetch_all(&mut *tx).await?);
                }
                moved.sort_unstable();
                Outcome::Ids(moved)
            }
            // Keyed by id: applied below, many rows per statement.
            Job::Status(StatusChange { key: StatusKey::Id(_), .. }, _) => continue,
            Job::Status(change, _) => Outcome::Rows(apply_status(&mut tx, change).await?),
            Job::Call(write, _) => Outcome::Rows(apply_call(&mut tx, write).await?),
        };
        outcomes[i] = Some(outcome);
    }

    // Status changes by id, one multi-row UPDATE per target. Transitions are monotonic, so
    // applying the targets in this fixed order gives the same result as arrival order.
    for target in [
        StatusTarget::Sent,
        StatusTarget::Delivered,
        StatusTarget::Failed,
        StatusTarget::Resubmit,
        StatusTarget::Retry,
        StatusTarget::Unknown,
    ] {
        let group: Vec<(usize, i64, &StatusChange)> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, j)| match j {
                Job::Status(c @ StatusChange { key: StatusKey::Id(id), .. }, _) if c.target == target => {
                    Some((i, *id, c))
                }
                _ => None,
            })
            .collect();
        for chunk in group.chunks(INSERT_CHUNK) {
            // Queued changes (`change_status_later`) answer nobody: no RETURNING rows for them.
            let answered = chunk.iter().any(|(i, ..)| matches!(batch[*i], Job::Status(_, Some(_))));
            let moved = apply_status_by_id(&mut tx, backend, target, chunk, answered).await?;
            for (i, id, _) in chunk {
                outcomes[*i] = Some(Outcome::Rows(u64::from(moved.binary_search(id).is_ok())));
            }
        }
    }
    let executed = Instant::now();
    tx.commit().await?;
    if let Some(timing) = timing {
        timing.execute.observe((executed - started).as_secs_f64());
        timing.commit.observe(executed.elapsed().as_secs_f64());
    }
    outcomes.into_iter().map(|o| o.ok_or(sqlx::Error::RowNotFound)).collect()
}

impl StatusTarget {
    /// The stored status this target sets.
    fn status(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Retry | Self::Resubmit => "queued",
            Self::Unknown => "unknown",
        }
    }

    /// The states a message may leave for this target.
    fn leaves_from(self) -> &'static str {
        match self {
            Self::Sent => "('queued', 'sending', 'unknown')",
            Self::Delivered | Self::Failed => "('queued', 'sending', 'sent', 'unknown')",
            Self::Retry | Self::Unknown => "('sending')",
            Self::Resubmit => "('sent')",
        }
    }
}

/// One statement, so it is atomic on its own as well as inside the caller's transaction.
async fn insert_inbound(
    conn: &mut AnyConnection,
    row: &InboundInsert,
    body: &str,
) -> Result<InboundOutcome, sqlx::Error> {
    // `delivered_at` is the claim: set only when the number's holder is the one waiting.
    let stored = sqlx::query_as::<_, (i64, SubscriptionId, Option<i64>)>(
        "INSERT INTO messages (message_id, owner, number, direction, peer, body, status, carrier_id, \
         created_at, updated_at, received_at, delivered_at) \
         SELECT $1, n.subscription_id, n.e164, 'received', $2, $3, NULL, $4, $5, $5, $6, \
         CASE WHEN n.subscription_id = $8 THEN $5 END \
         FROM numbers n WHERE n.e164 = $7 AND n.state = 'assigned' AND n.subscription_id IS NOT NULL \
         RETURNING id, owner, delivered_at",
    )
    .bind(&row.message_id)
    .bind(&row.from)
    .bind(body)
    .bind(&row.carrier_id)
    .bind(row.now_ms)
    .bind(row.received_at_ms)
    .bind(&row.to)
    .bind(row.claim_for)
    .fetch_optional(conn)
    .await?;
    let Some((id, owner, delivered_at)) = stored else { return Ok(InboundOutcome::NotOurs) };
    let claimed = delivered_at.map(|_| ClaimedMessage {
        id,
        message_id: row.message_id.clone(),
        number: row.to.clone(),
        peer: row.from.clone(),
        body: body.to_owned(),
        created_at: row.now_ms,
        received_at: Some(row.received_at_ms),
    });
    Ok(InboundOutcome::Stored { id, owner, claimed })
}

/// Stores one part; when that completes the set, joins the parts in order into one message and
/// deletes them, all in the caller's transaction.
async fn insert_inbound_part(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    row: &InboundInsert,
    part: InboundPart,
) -> Result<InboundOutcome, sqlx::Error> {
    let assigned = sqlx::query_scalar::<_, i64>(
        "SELECT 1 FROM numbers WHERE e164 = $1 AND state = 'assigned' AND subscription_id IS NOT NULL",
    )
    .bind(&row.to)
    .fetch_optional(&mut **tx)
    .await?;
    if assigned.is_none() {
        return Ok(InboundOutcome::NotOurs);
    }
    sqlx::query(
        "INSERT INTO inbound_parts (number, sender, reference, total, seq, body, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (number, sender, reference, total, seq) DO NOTHING",
    )
    .bind(&row.to)
    .bind(&row.from)
    .bind(part.reference)
    .bind(part.total)
    .bind(part.seq)
    .bind(&row.body)
    .bind(row.received_at_ms)
    .execute(&mut **tx)
    .await?;
    let parts = sqlx::query_as::<_, (String, i64)>(
        "SELECT body, received_at FROM inbound_parts \
         WHERE number = $1 AND sender = $2 AND reference = $3 AND total = $4 ORDER BY seq",
    )
    .bind(&row.to)
    .bind(&row.from)
    .bind(part.reference)
    .bind(part.total)
    .fetch_all(&mut **tx)
    .await?;
    if (parts.len() as i64) < part.total {
        return Ok(InboundOutcome::PartStored);
    }
    let body: String = parts.iter().map(|(b, _)| b.as_str()).collect();
    let first_received = parts.iter().map(|(_, at)| *at).min().unwrap_or(row.received_at_ms);
    let whole = InboundInsert { received_at_ms: first_received, ..row.clone() };
    let outcome = insert_inbound(tx, &whole, &body).await?;
    sqlx::query("DELETE FROM inbound_parts WHERE number = $1 AND sender = $2 AND reference = $3 AND total = $4")
        .bind(&row.to)
        .bind(&row.from)
        .bind(part.reference)
        .bind(part.total)
        .execute(&mut **tx)
        .await?;
    Ok(outcome)
}

/// One status change keyed by carrier id (a receipt for a message not in memory).
async fn apply_status(tx: &mut sqlx::Transaction<'_, sqlx::Any>, c: &StatusChange) -> Result<u64, sqlx::Error> {
    let StatusKey::CarrierId(carrier_id) = &c.key else {
        return Err(sqlx::Error::Protocol("status change by id must go through the batch path".into()));
    };
    let sql = format!(
        "UPDATE messages SET status = '{}', segments = COALESCE($1, segments), error_code = COALESCE($2, error_code), \
         updated_at = $3 WHERE carrier_id = $4 AND direction = 'sent' AND status IN {}",
        c.target.status(),
        c.target.leaves_from()
    );
    let q = sqlx::query(AssertSqlSafe(sql)).bind(c.segments).bind(c.error_code).bind(c.at_ms).bind(carrier_id.as_str());
    Ok(q.execute(&mut **tx).await?.rows_affected())
}

/// Many status changes to one target, keyed by id, in one statement; answers the ids moved
/// when `returning` (otherwise none). `changes` is not empty.
async fn apply_status_by_id(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    target: StatusTarget,
    changes: &[(usize, i64, &StatusChange)],
    returning: bool,
) -> Result<Vec<i64>, sqlx::Error> {
    let rows = padded(changes.len());
    let mut params = Params::new(backend);
    let mut sql = String::from("WITH v(id, cid, seg, err, at) AS (VALUES ");
    for k in 0..rows {
        if k > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        params.list(&mut sql, 5);
        sql.push(')');
    }
    write!(
        sql,
        ") UPDATE messages SET status = '{}', carrier_id = COALESCE(v.cid, messages.carrier_id), \
         segments = COALESCE(v.seg, messages.segments), error_code = COALESCE(v.err, messages.error_code), \
         updated_at = v.at FROM v WHERE messages.id = v.id AND messages.direction = 'sent' \
         AND messages.status IN {}",
        target.status(),
        target.leaves_from()
    )
    .expect("invariant: writing to a String cannot fail");
    if returning {
        sql.push_str(" RETURNING messages.id");
    }
    let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql));
    // Padding repeats the last change: the same row set to the same values.
    for k in 0..rows {
        let (_, id, c) = changes[k.min(changes.len() - 1)];
        q = q.bind(id).bind(c.carrier_id.as_deref()).bind(c.segments).bind(c.error_code).bind(c.at_ms);
    }
    if !returning {
        // No RETURNING clause: the statement yields no row; this runs it to completion.
        q.fetch_optional(&mut **tx).await?;
        return Ok(Vec::new());
    }
    let mut moved = q.fetch_all(&mut **tx).await?;
    moved.sort_unstable();
    moved.dedup();
    Ok(moved)
}

fn answer(jobs: impl Iterator<Item = Job>, results: Vec<Outcome>) {
    for (job, outcome) in jobs.zip(results) {
        // A caller that stopped waiting is not an error: its write is committed regardless.
        match (job, outcome) {
            (Job::Outbound(_, reply), Outcome::Id(id)) => drop(reply.send(Ok(id))),
            (Job::Inbound(_, reply), Outcome::Inbound(row)) => drop(reply.send(Ok(row))),
            (Job::MarkSending(_, _, reply), Outcome::Ids(ids)) => drop(reply.send(Ok(ids))),
            (Job::Status(_, Some(reply)), Outcome::Rows(n)) => drop(reply.send(Ok(n))),
            (Job::Call(_, reply), Outcome::Rows(n)) => drop(reply.send(Ok(n))),
            (Job::Status(_, None), _) => {}
            (job, _) => fail(job, sqlx::Error::Protocol("writer outcome mismatch".into())),
        }
    }
}

fn fail(job: Job, err: sqlx::Error) {
    tracing::error!(error = %err, "message write failed");
    match job {
        Job::Outbound(_, reply) => drop(reply.send(Err(err.into()))),
        Job::Inbound(_, reply) => drop(reply.send(Err(err.into()))),
        Job::MarkSending(_, _, reply) => drop(reply.send(Err(err.into()))),
        Job::Status(_, Some(reply)) => drop(reply.send(Err(err.into()))),
        Job::Status(_, None) => {}
        Job::Call(_, reply) => drop(reply.send(Err(err.into()))),
    }
}

async fn apply_call(tx: &mut sqlx::Transaction<'_, sqlx::Any>, w: &CallWrite) -> Result<u64, sqlx::Error> {
    let done =
        match w {
            CallWrite::Insert { call_id, owner, number, direction, peer, state, end_reason, now_ms } => sqlx::query(
                "INSERT INTO calls (call_id, owner, number, direction, peer, state, end_reason, created_at, ended_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(call_id.as_str())
            .bind(*owner)
            .bind(number.as_str())
            .bind(direction.as_str())
            .bind(peer.as_str())
            .bind(state.as_str())
            .bind(end_reason.map(EndReason::as_str))
            .bind(*now_ms)
            .bind(end_reason.map(|_| *now_ms))
            .execute(&mut **tx)
            .await?,
            CallWrite::Ringing { call_id } => {
                sqlx::query("UPDATE calls SET state = 'ringing' WHERE call_id = $1 AND state = 'initiated'")
                    .bind(call_id.as_str())
                    .execute(&mut **tx)
                    .await?
            }
            CallWrite::Answered { call_id, at_ms } => {
                sqlx::query(
                    "UPDATE calls SET state = 'in_progress', answered_at = $2 \
                 WHERE call_id = $1 AND state IN ('initiated', 'ringing')",
                )
                .bind(call_id.as_str())
                .bind(*at_ms)
                .execute(&mut **tx)
                .await?
            }
            CallWrite::End { call_id, state, reason, sip_code, at_ms } => {
                sqlx::query(
                    "UPDATE calls SET state = $2, end_reason = $3, sip_code = $4, ended_at = $5 \
                 WHERE call_id = $1 AND state IN ('initiated', 'ringing', 'in_progress')",
                )
                .bind(call_id.as_str())
                .bind(state.as_str())
                .bind(reason.as_str())
                .bind(*sip_code)
                .bind(*at_ms)
                .execute(&mut **tx)
                .await?
            }
        };
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::WriterMetrics;

    #[test]
    fn chunks_are_powers_of_two_in_order_and_cover_everything() {
        for n in 0..=1100usize {
            let items: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = pow2_chunks(&items).collect();
            assert!(chunks.iter().all(|c| c.len().is_power_of_two() && c.len() <= INSERT_CHUNK), "n={n}");
            assert_eq!(chunks.concat(), items, "n={n}");
        }
        let sizes: Vec<usize> = pow2_chunks(&[0u8; 13]).map(<[u8]>::len).collect();
        assert_eq!(sizes, [8, 4, 1]);
    }

    /// The writer keeps SQLite's one write connection across back-to-back batches, but only
    /// for a lease: a write through the pool while the writer is saturated gets its turn long
    /// before the writer's queue drains.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_saturated_writer_lends_the_write_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(&format!("sqlite://{}/w.db", dir.path().display()), 2).await.expect("store");
        store.migrate().await.expect("migrate");
        let (writer, task) = MessageWriter::spawn(store.clone(), WriterMetrics::new());
        let row = |k: usize| OutboundInsert {
            message_id: MessageId::from_stored(format!("msg_{k}")),
            owner: SubscriptionId::new(1),
            number: "+15550100000".into(),
            peer: "+15557654321".into(),
            body: "x".repeat(100),
            segments: 1,
            now_ms: 1,
        };
        let first = writer.insert_outbound(row(0)).await.expect("first insert");

        const FLOOD: usize = 20_000;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut flood = tokio::task::JoinSet::new();
        for k in 1..=FLOOD {
            let (writer, done) = (writer.clone(), done.clone());
            flood.spawn(async move {
                writer.insert_outbound(row(k)).await.expect("flood insert");
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
        }
        // Wait until the flood is being written, then write through the pool.
        while done.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        store.settle_interrupted_sends(2, 1).await.expect("a write through the pool");
        let written_meanwhile = done.load(std::sync::atomic::Ordering::Relaxed);
        assert!(written_meanwhile < FLOOD, "the pool write waited for the whole flood ({written_meanwhile})");
        while flood.join_next().await.is_some() {}
        assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), FLOOD);
        assert!(first > 0);
        drop(writer);
        task.await.expect("writer ends when its handles are dropped");
    }

    /// A lone whole inbound message is stored by one statement without BEGIN/COMMIT (the MO
    /// path); it must be as atomic and as selective as the transactional path: stored and
    /// claimed for the number's holder, nothing for an unassigned number, and parts still
    /// joined in a transaction.
    #[tokio::test]
    async fn a_lone_inbound_message_is_one_statement_and_still_atomic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, grant) = crate::store::sqlite_with_a_holder(dir.path(), &["+15550100001", "+15550100002"]).await;
        let (ours, other) = if grant.number == "+15550100001" {
            ("+15550100001", "+15550100002")
        } else {
            ("+15550100002", "+15550100001")
        };
        let metrics = WriterMetrics::new();
        let (writer, task) = MessageWriter::spawn(store.clone(), metrics.clone());
        let mo = |id: &str, to: &str, body: &str, part: Option<InboundPart>| InboundInsert {
            message_id: MessageId::from_stored(id.into()),
            to: to.into(),
            from: "+15557654321".into(),
            body: body.into(),
            carrier_id: None,
            received_at_ms: 5,
            now_ms: 6,
            part,
            claim_for: Some(grant.subscription_id),
        };

        let stored = writer.insert_inbound(mo("mo-1", ours, "code 123456", None)).await.expect("stored");
        let InboundOutcome::Stored { id, owner, claimed: Some(claimed) } = stored else {
            panic!("not stored and claimed: {stored:?}")
        };
        assert_eq!((owner, claimed.id, claimed.body.as_str()), (grant.subscription_id, id, "code 123456"));
        assert_eq!(
            writer.insert_inbound(mo("mo-2", other, "not ours", None)).await.expect("ran"),
            InboundOutcome::NotOurs
        );
        for (seq, body) in [(1, "first "), (2, "second")] {
            let part = InboundPart { reference: 9, total: 2, seq };
            writer.insert_inbound(mo(&format!("mo-3.{seq}"), ours, body, Some(part))).await.expect("part");
        }

        let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT message_id, body, delivered_at FROM messages WHERE direction = 'received' ORDER BY id",
        )
        .fetch_all(&store.read)
        .await
        .expect("rows");
        assert_eq!(
            rows,
            [
                ("mo-1".to_owned(), "code 123456".to_owned(), Some(6)),
                ("mo-3.2".to_owned(), "first second".to_owned(), Some(6))
            ]
        );
        // Each call waited for its answer, so each was a batch of its own: the two lone whole
        // messages took the single-statement path, the two parts a transaction each.
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("batch", "", metrics.batch_seconds.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for phase in ["single", "commit"] {
            let line = format!("batch_count{{phase=\"{phase}\"}} 2");
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        drop(writer);
        task.await.expect("writer ends");
    }

    #[test]
    fn padding_rounds_up_to_a_power_of_two() {
        assert_eq!([1, 2, 3, 5, 8, 9, 200, 256].map(padded), [1, 2, 4, 8, 8, 16, 256, 256]);
    }

    #[test]
    fn placeholders_follow_the_backend() {
        let mut sql = String::new();
        let mut p = Params::new(Backend::Sqlite);
        p.list(&mut sql, 3);
        assert_eq!(sql, "?, ?, ?");
        let mut sql = String::from("(");
        let mut p = Params::new(Backend::Postgres);
        p.list(&mut sql, 2);
        sql.push_str("), (");
        p.list(&mut sql, 2);
        sql.push(')');
        assert_eq!(sql, "($1, $2), ($3, $4)");
    }
}
