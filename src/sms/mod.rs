//! SMS: accepting outbound messages, tracking their delivery, and handing inbound ones to
//! their owner.
//!
//! `send` validates and commits a `queued` message through the group-commit writer and
//! returns; the [`dispatcher`] submits it to the network; the [`delivery`] tracker records
//! receipts and commits inbound messages, then wakes long-polls waiting in `receive`.
//! Messages belong to a subscription (`owner`), not to a number, so a number's next owner
//! never sees the previous owner's messages.

mod delivery;
mod dispatcher;
mod handoff;
pub mod otp;
mod tracker_msg;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use handoff::{Handed, Handoffs};

use crate::clock;
use crate::e164::E164;
use crate::e164::E164Error;
use crate::events::InboxHub;
use crate::ids::{MessageId, SubscriptionId};
use crate::metrics::Metrics;
use crate::store::{
    ClaimedMessage, Direction, HistoryCursor, HistoryFilter, HistoryRow, MessageWriter, OutboundInsert,
    PendingOutbound, Store, StoreError,
};
use crate::subscriptions::Caller;
use crate::telco::{SmsEvent, SmsNetwork, sms_encoding};

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("direction must be sent, received or both")]
    BadDirection,
    #[error("since must not be after until")]
    BadTimeRange,
    #[error("from must be a sender of at most {MAX_SENDER_FILTER} characters")]
    BadSender,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a message was not accepted for sending. Every edge (REST, MCP) refuses with these.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("to: {0} (E.164, like +15555550123)")]
    BadDestination(E164Error),
    #[error("body must not be empty")]
    EmptyBody,
    #[error("body exceeds {max_chars} characters")]
    BodyTooLong { max_chars: usize },
    /// Expired (in its grace period): the number is kept, but nothing is sent until renewal.
    #[error("subscription expired; renew it (POST /sms/subscribe, or the subscribe tool) to send")]
    NotActive,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The limits `send` applies (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct SmsSettings {
    /// Longest body accepted, in characters (Unicode scalar values); longer texts are refused,
    /// shorter ones are segmented.
    pub max_body_chars: usize,
}

/// A page of the history, and the cursor of the next page when there is one.
#[derive(Debug)]
pub struct HistoryPage {
    pub rows: Vec<HistoryRow>,
    pub next: Option<HistoryCursor>,
}

/// `direction` of a history query: absent, empty or `both` -> both; `sent`; `received`.
pub fn parse_direction(raw: Option<&str>) -> Result<Option<Direction>, SmsError> {
    match raw {
        None | Some("") | Some("both") => Ok(None),
        Some("sent") => Ok(Some(Direction::Sent)),
        Some("received") => Ok(Some(Direction::Received)),
        Some(_) => Err(SmsError::BadDirection),
    }
}

/// A message accepted for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub id: i64,
    pub message_id: MessageId,
    pub segments: u32,
    pub created_at_ms: i64,
}

#[derive(Clone)]
pub struct SmsService {
    store: Store,
    writer: MessageWriter,
    hub: Arc<InboxHub>,
    handoffs: Arc<Handoffs>,
    metrics: Arc<Metrics>,
    network: Arc<dyn SmsNetwork>,
    dispatch: mpsc::Sender<PendingOutbound>,
    shutdown: watch::Receiver<bool>,
    settings: SmsSettings,
}

/// The background tasks of the SMS service; await `join` after signalling shutdown.
pub struct SmsTasks {
    dispatcher: tokio::task::JoinHandle<()>,
    tracker: tokio::task::JoinHandle<()>,
}

impl SmsTasks {
    pub async fn join(self) {
        let _ = self.dispatcher.await;
        let _ = self.tracker.await;
    }
}

impl SmsService {
    /// Starts the dispatcher and the delivery tracker. `events` is the receiving end of the
    /// channel the network was built with.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        settings: SmsSettings,
        store: Store,
        writer: MessageWriter,
        network: Arc<dyn SmsNetwork>,
        events: mpsc::Receiver<SmsEvent>,
        hub: Arc<InboxHub>,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, SmsTasks) {
        let (tracker_tx, tracker_rx) = mpsc::channel(tracker_msg::TRACKER_QUEUE);
        let handoffs = Arc::new(Handoffs::default());
        let tracker = delivery::Tracker::new(
            writer.clone(),
            store.clone(),
            hub.clone(),
            handoffs.clone(),
            metrics.clone(),
            tracker_tx.clone(),
        );
        // The tracker stops only after the dispatcher has drained its in-flight submissions, so
        // no ack of a message already submitted is lost at shutdown.
        let (stop_tracker, tracker_stop) = oneshot::channel();
        let tracker = tokio::spawn(tracker.run(tracker_rx, events, tracker_stop));

        let (dispatch, hints) = mpsc::channel(dispatcher::DISPATCH_QUEUE);
        let dispatcher = dispatcher::Dispatcher {
            store: store.clone(),
            writer: writer.clone(),
            network: network.clone(),
            tracker: tracker_tx,
            metrics: metrics.clone(),
            in_flight: crate::tasks::TaskSet::bounded("sms submissions", dispatcher::MAX_IN_FLIGHT),
        };
        let dispatcher_shutdown = shutdown.clone();
        let dispatcher = tokio::spawn(async move {
            dispatcher.run(hints, dispatcher_shutdown).await;
            let _ = stop_tracker.send(());
        });
        let service = Self { store, writer, hub, handoffs, metrics, network, dispatch, shutdown, settings };
        (service, SmsTasks { dispatcher, tracker })
    }

    pub fn network(&self) -> &Arc<dyn SmsNetwork> {
        &self.network
    }

    /// Sends `body` from the caller's number to `to`: checks the destination, the body and that
    /// the subscription is paid up, commits a `queued` message and hands it to the dispatcher.
    pub async fn send(&self, caller: &Caller, to: &str, body: String) -> Result<Queued, SendError> {
        let to = E164::parse(to.trim()).map_err(SendError::BadDestination)?;
        if body.is_empty() {
            return Err(SendError::EmptyBody);
        }
        let max_chars = self.settings.max_body_chars;
        if body.chars().count() > max_chars {
            return Err(SendError::BodyTooLong { max_chars });
        }
        let now_ms = clock::now_ms();
        if !caller.is_active(now_ms) {
            return Err(SendError::NotActive);
        }
        self.queue(caller.subscription_id, &caller.number, &to, body, now_ms).await
    }

    /// Commits a `queued` message and hands it to the dispatcher.
    async fn queue(
        &self,
        owner: SubscriptionId,
        from: &E164,
        to: &E164,
        body: String,
        now_ms: i64,
    ) -> Result<Queued, SendError> {
        let message_id = MessageId::generate();
        let (_, segments) = sms_encoding::plan(&body);
        let row = OutboundInsert {
            message_id: message_id.clone(),
            owner,
            number: from.as_str().to_owned(),
            peer: to.as_str().to_owned(),
            body,
            segments: i64::from(segments),
            now_ms,
        };
        let hint_body = row.body.clone();
        let id = self.writer.insert_outbound(row).await?;
        self.metrics.message("outbound", "queued");
        let hint = PendingOutbound {
            id,
            number: from.as_str().to_owned(),
            peer: to.as_str().to_owned(),
            body: hint_body,
            attempts: 0,
        };
        // A full queue is not an error: the message is committed and the scan will find it.
        let _ = self.dispatch.try_send(hint);
        Ok(Queued { id, message_id, segments, created_at_ms: now_ms })
    }

    /// Claims up to `limit` unclaimed inbound messages of `owner` (who holds `number`); with a
    /// `wait`, long-polls until at least one arrives, the wait ends, or the server shuts down.
    /// Also answers how long after its commit the wake-up was served, when a wake-up delivered
    /// the messages. While parked, a message arriving for `number` is claimed for this call as
    /// it is stored and handed over directly ([`handoff`]).
    pub async fn receive(
        &self,
        owner: SubscriptionId,
        number: &str,
        limit: i64,
        wait: Duration,
    ) -> Result<Received, SmsError> {
        let deadline = tokio::time::Instant::now() + wait;
        let signal = self.hub.watch(owner);
        let mut shutdown = self.shutdown.clone();
        let mut woken = false;
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let messages = self.store.claim_inbound(owner, limit, clock::now_ms()).await?;
            if !messages.is_empty() {
                let wakeup = if woken { signal.last_commit().map(|at| at.elapsed()) } else { None };
                if let Some(latency) = wakeup {
                    self.metrics.longpoll_wakeup.observe(latency.as_secs_f64());
                }
                return Ok(Received { messages, wakeup });
            }
            if wait.is_zero() || tokio::time::Instant::now() >= deadline || *shutdown.borrow() {
                return Ok(Received { messages, wakeup: None });
            }
            let parked = Parked::new(&self.metrics.longpoll_waiting);
            // Parked after the empty claim: a message that committed in between has signalled
            // `notified`, so it is not missed; one that arrives from here on is handed over.
            let mut slot = self.handoffs.park(number, owner);
            let handed = tokio::select! {
                handed = slot.handed() => handed,
                _ = &mut notified => {
                    woken = true;
                    slot.withdraw()
                }
                _ = tokio::time::sleep_until(deadline) => {
                    woken = false;
                    slot.withdraw()
                }
                _ = shutdown.changed() => {
                    woken = false;
                    slot.withdraw()
                }
            };
            drop(parked);
            if let Some(Handed { message, committed }) = handed {
                let latency = committed.elapsed();
                self.metrics.longpoll_wakeup.observe(latency.as_secs_f64());
                return Ok(Received { messages: vec![message], wakeup: Some(latency) });
            }
        }
    }

    /// Messages already handed out after `after` (a repeated MCP `receive_sms` whose answer was lost).
    pub async fn received_after(
        &self,
        owner: SubscriptionId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedMessage>, SmsError> {
        Ok(self.store.claimed_after(owner, after, limit).await?)
    }

    /// The next unclaimed inbound message carrying a one-time code (from `from`, if given):
    /// claims that message only and answers its code; long-polls up to `wait` for one to arrive.
    /// Messages without a code are left for `receive`.
    pub async fn wait_for_code(
        &self,
        owner: SubscriptionId,
        from: Option<&str>,
        wait: Duration,
    ) -> Result<Option<Code>, SmsError> {
        let from = from.map(str::trim).filter(|f| !f.is_empty());
        if from.is_some_and(|f| f.len() > MAX_SENDER_FILTER) {
            return Err(SmsError::BadSender);
        }
        let deadline = tokio::time::Instant::now() + wait;
        let signal = self.hub.watch(owner);
        let mut shutdown = self.shutdown.clone();
        let mut after = 0;
        let mut woken = false;
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            loop {
                let rows = self.store.unclaimed_inbound(owner, after, CODE_SCAN_BATCH).await?;
                let more = rows.len() as i64 == CODE_SCAN_BATCH;
                for m in rows {
                    after = m.id;
                    if from.is_some_and(|f| !same_sender(f, &m.peer)) {
                        continue;
                    }
                    let Some(code) = otp::extract(&m.body) else { continue };
                    if self.store.claim_message(m.id, clock::now_ms()).await? {
                        if woken && let Some(at) = signal.last_commit() {
                            self.metrics.code_wakeup.observe(at.elapsed().as_secs_f64());
                        }
                        return Ok(Some(Code { code, message: m }));
                    }
                }
                if !more {
                    break;
                }
            }
            if wait.is_zero() || tokio::time::Instant::now() >= deadline || *shutdown.borrow() {
                return Ok(None);
            }
            let parked = Parked::new(&self.metrics.longpoll_waiting);
            tokio::select! {
                _ = &mut notified => woken = true,
                _ = tokio::time::sleep_until(deadline) => woken = false,
                _ = shutdown.changed() => woken = false,
            }
            drop(parked);
        }
    }

    /// One page of `owner`'s history, newest first: at most `limit` rows after `filter.after`.
    pub async fn history(
        &self,
        owner: SubscriptionId,
        filter: &HistoryFilter,
        limit: i64,
    ) -> Result<HistoryPage, SmsError> {
        if let (Some(since), Some(until)) = (filter.since_ms, filter.until_ms)
            && since > until
        {
            return Err(SmsError::BadTimeRange);
        }
        // One row beyond the page says whether another page exists.
        let mut rows = self.store.history(owner, filter, limit + 1).await?;
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| HistoryCursor { created_at: r.created_at, id: r.id })
        } else {
            None
        };
        Ok(HistoryPage { rows, next })
    }
}

/// Longest sender filter of `wait_for_code` (E.164 is 16 characters, alphanumeric senders 11).
pub const MAX_SENDER_FILTER: usize = 32;

/// Unclaimed messages examined per query while looking for a code.
const CODE_SCAN_BATCH: i64 = 100;

/// A one-time code and the message that carried it (now claimed).
#[derive(Debug)]
pub struct Code {
    pub code: String,
    pub message: ClaimedMessage,
}

/// Whether a sender filter names this sender: numbers compare with or without `+`,
/// alphanumeric senders case-insensitively.
fn same_sender(filter: &str, sender: &str) -> bool {
    let f = filter.trim();
    f.eq_ignore_ascii_case(sender) || (!f.starts_with('+') && sender.strip_prefix('+') == Some(f))
}

#[derive(Debug)]
pub struct Received {
    pub messages: Vec<ClaimedMessage>,
    pub wakeup: Option<Duration>,
}

/// Counts a parked long-poll for as long as it lives, including when the client goes away
/// and the request future is dropped mid-wait.
struct Parked<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> Parked<'a> {
    fn new(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
