//! The outbound dispatcher: takes committed `queued` messages, marks them `sending` (durably,
//! so a crash can never lead to a second submission), submits them to the network with a
//! bounded number in flight, and reports each outcome to the delivery tracker.
//!
//! Messages arrive as hints on a bounded channel right after their insert commits; a periodic
//! scan of `queued` rows is the safety net for hints that did not fit, retries, and restarts.
//! Throttling pauses and resubmits without counting an attempt; a transient rejection goes
//! back to `queued` until [`MAX_ATTEMPTS`]; a response timeout leaves the message `unknown`.
//! While the network reports its link down, messages stay `queued` and spend no attempt.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::tracker_msg::{MAX_ATTEMPTS, TrackerMsg};
use crate::clock;
use crate::e164::E164;
use crate::metrics::Metrics;
use crate::store::{MessageWriter, PendingOutbound, StatusChange, StatusKey, StatusTarget, Store};
use crate::tasks::TaskSet;
use crate::telco::{LinkState, OutboundSms, SmsNetwork, SubmitError};

/// Hints queued at most; beyond it the scan picks messages up.
pub const DISPATCH_QUEUE: usize = 16_384;
/// Submissions in flight at most.
pub const MAX_IN_FLIGHT: usize = 1024;
/// Messages per `sending` transaction at most.
const BATCH: usize = 256;
const SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// How often `sending` rows are checked for interrupted submissions, and how old they must be.
const STALE_CHECK_INTERVAL: Duration = Duration::from_secs(60);
pub const STALE_SENDING: Duration = Duration::from_secs(120);
const RETRY_BACKOFF: Duration = Duration::from_millis(500);

pub(super) struct Dispatcher {
    pub store: Store,
    pub writer: MessageWriter,
    pub network: Arc<dyn SmsNetwork>,
    pub tracker: mpsc::Sender<TrackerMsg>,
    pub metrics: Arc<Metrics>,
    pub in_flight: TaskSet,
}

impl Dispatcher {
    pub async fn run(self, mut hints: mpsc::Receiver<PendingOutbound>, mut shutdown: watch::Receiver<bool>) {
        let mut scan = tokio::time::interval(SCAN_INTERVAL);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stale_check = tokio::time::interval(STALE_CHECK_INTERVAL);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                hint = hints.recv() => {
                    let Some(first) = hint else { break };
                    batch.push(first);
                    while batch.len() < BATCH {
                        match hints.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    self.dispatch(&mut batch).await;
                }
                _ = scan.tick() => self.scan().await,
                _ = stale_check.tick() => self.settle_interrupted().await,
                _ = shutdown.changed() => break,
            }
        }
        self.in_flight.join().await;
    }

    async fn settle_interrupted(&self) {
        let now_ms = clock::now_ms();
        let stale_before = now_ms - STALE_SENDING.as_millis() as i64;
        match self.store.settle_interrupted_sends(now_ms, stale_before).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(count = n, "interrupted submissions are now 'unknown' (never resent)"),
            Err(err) => tracing::warn!(error = %err, "checking for interrupted submissions failed"),
        }
    }

    async fn scan(&self) {
        let mut after = 0;
        loop {
            match self.store.queued_outbound(after, BATCH as i64).await {
                Ok(rows) if rows.is_empty() => return,
                Ok(mut rows) => {
                    after = rows.last().map_or(after, |r| r.id);
                    let more = rows.len() == BATCH;
                    self.dispatch(&mut rows).await;
                    if !more {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "scan for queued messages failed");
                    return;
                }
            }
        }
    }

    async fn dispatch(&self, batch: &mut Vec<PendingOutbound>) {
        if let LinkState::Down { reason } = self.network.link_state() {
            // Left `queued`: the scan offers them again once the link is back, and no attempt is
            // spent on a link known to be down.
            tracing::debug!(%reason, count = batch.len(), "network down; messages stay queued");
            batch.clear();
            return;
        }
        let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
        let moved = match self.writer.mark_sending(ids, clock::now_ms()).await {
            Ok(moved) => moved,
            Err(err) => {
                // Still `queued` in the table: the next scan retries them.
                tracing::warn!(error = %err, "marking messages sending failed");
                batch.clear();
                return;
            }
        };
        for msg in batch.drain(..) {
            if moved.binary_search(&msg.id).is_err() {
                continue; // already taken by an earlier hint or scan
            }
            let job = Submission {
                network: self.network.clone(),
                writer: self.writer.clone(),
                tracker: self.tracker.clone(),
                metrics: self.metrics.clone(),
                attempt: msg.attempts + 1,
                msg,
            };
            if let Err(closed) = self.in_flight.spawn_when_room(job.run()).await {
                // Only after shutdown: the message stays `sending` and is settled at the next start.
                tracing::warn!(error = %closed, "submission not started");
            }
        }
    }
}

struct Submission {
    network: Arc<dyn SmsNetwork>,
    writer: MessageWriter,
    tracker: mpsc::Sender<TrackerMsg>,
    metrics: Arc<Metrics>,
    msg: PendingOutbound,
    /// This attempt's number (1-based), already counted in the table.
    attempt: i64,
}

impl Submission {
    async fn run(self) {
        let (Ok(from), Ok(to)) = (E164::parse(&self.msg.number), E164::parse(&self.msg.peer)) else {
            self.finish(StatusTarget::Failed, None).await;
            return;
        };
        let sms = OutboundSms { id: self.msg.id, from, to, body: self.msg.body.clone() };
        loop {
            match self.network.submit(sms.clone()).await {
                Ok(ack) => {
                    self.metrics.message("outbound", "sent");
                    let acked = TrackerMsg::Acked {
                        id: self.msg.id,
                        carrier_ids: ack.carrier_ids,
                        segments: ack.segments,
                        attempt: self.attempt,
                    };
                    if self.tracker.send(acked).await.is_err() {
                        tracing::warn!(id = self.msg.id, "delivery tracker stopped; ack not recorded");
                    }
                    return;
                }
                Err(SubmitError::Throttled { retry_after }) => {
                    tokio::time::sleep(retry_after).await;
                }
                Err(SubmitError::Rejected { code, permanent }) if permanent || self.attempt >= MAX_ATTEMPTS => {
                    tracing::info!(id = self.msg.id, code, "message rejected by the network");
                    self.finish(StatusTarget::Failed, Some(i64::from(code))).await;
                    return;
                }
                Err(err @ (SubmitError::Rejected { .. } | SubmitError::Unavailable | SubmitError::Interrupted)) => {
                    if self.attempt >= MAX_ATTEMPTS {
                        tracing::info!(id = self.msg.id, error = %err, "giving up after {MAX_ATTEMPTS} attempts");
                        self.finish(StatusTarget::Failed, None).await;
                        return;
                    }
                    tracing::debug!(id = self.msg.id, error = %err, "transient failure; requeued");
                    let code = match err {
                        SubmitError::Rejected { code, .. } => Some(i64::from(code)),
                        _ => None,
                    };
                    tokio::time::sleep(RETRY_BACKOFF * self.attempt as u32).await;
                    self.finish(StatusTarget::Retry, code).await;
                    return;
                }
                Err(SubmitError::Ambiguous { timeout }) => {
                    tracing::warn!(
                        id = self.msg.id,
                        ?timeout,
                        "no answer from the network; status unknown, not resent"
                    );
                    self.finish(StatusTarget::Unknown, None).await;
                    return;
                }
            }
        }
    }

    async fn finish(&self, target: StatusTarget, error_code: Option<i64>) {
        if target == StatusTarget::Failed {
            self.metrics.message("outbound", "failed");
        }
        let change = StatusChange {
            key: StatusKey::Id(self.msg.id),
            target,
            carrier_id: None,
            segments: None,
            error_code,
            at_ms: clock::now_ms(),
        };
        if self.writer.change_status_later(change).await.is_err() {
            tracing::warn!(id = self.msg.id, "writer stopped; status change lost");
        }
    }
}
