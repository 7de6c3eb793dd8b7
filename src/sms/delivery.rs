//! The delivery tracker: one task that turns what the network reports into message states.
//!
//! - Acks from the dispatcher record `sent` with the carrier id (the first part's, for a
//!   multipart message; every part's id is remembered in memory).
//! - Receipts move a message to `delivered` once every part is delivered, or to `failed` when
//!   one part fails; a failure the network calls retryable sends the message again (back to
//!   `queued`) while it has attempts left. A receipt is matched through the in-memory map of
//!   parts in flight (by its id, then by the id read in the other base); if it names an unknown
//!   carrier id it is tried against the table (a message sent before a restart), and if that
//!   finds nothing it is parked until the ack arrives: SMSCs can send the receipt before we have
//!   processed `submit_sm_resp`.
//! - Inbound messages are committed, then acknowledged to the network, then the owner's
//!   waiting long-polls are woken.
//!
//! Status writes are queued to the group-commit writer in the order decided here, and every
//! transition is monotonic in SQL, so a late or duplicated event never moves a message back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::handoff::{Handed, Handoffs, Taken};
use super::tracker_msg::{MAX_ATTEMPTS, TrackerMsg};
use crate::clock;
use crate::events::InboxHub;
use crate::ids::MessageId;
use crate::metrics::Metrics;
use crate::store::{
    InboundInsert, InboundOutcome, InboundPart, MessageWriter, StatusChange, StatusKey, StatusTarget, Store,
};
use crate::tasks::TaskSet;
use crate::telco::{DeliveryReceipt, InboundDisposition, InboundSms, ReceiptState, SmsEvent};

/// Inbound messages being committed at once, at most.
const MAX_INBOUND_IN_FLIGHT: usize = 1024;
/// Receipts for unknown carrier ids kept at most, and for how long.
const MAX_PARKED: usize = 100_000;
const PARK_TTL: Duration = Duration::from_secs(600);
/// Messages in flight (acked, no final receipt) remembered at most, and for how long.
const MAX_IN_FLIGHT: usize = 1_000_000;
const IN_FLIGHT_TTL: Duration = Duration::from_secs(3600);
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

pub(super) struct Tracker {
    pub writer: MessageWriter,
    /// For undoing the claim of a hand-off whose waiter went away.
    pub store: Store,
    pub hub: Arc<InboxHub>,
    pub handoffs: Arc<Handoffs>,
    pub metrics: Arc<Metrics>,
    pub inbound_tasks: TaskSet,
    /// For re-injecting unmatched receipts.
    pub self_tx: mpsc::Sender<TrackerMsg>,
    /// Carrier id of a part in flight -> its message row.
    in_flight: HashMap<String, (i64, Instant)>,
    /// Messages in flight: what their parts still owe.
    rows: HashMap<i64, InFlight>,
    parked: HashMap<String, (DeliveryReceipt, Instant)>,
}

struct InFlight {
    carrier_ids: Vec<String>,
    /// Parts not yet reported delivered.
    remaining: usize,
    attempt: i64,
    since: Instant,
}

impl Tracker {
    pub fn new(
        writer: MessageWriter,
        store: Store,
        hub: Arc<InboxHub>,
        handoffs: Arc<Handoffs>,
        metrics: Arc<Metrics>,
        self_tx: mpsc::Sender<TrackerMsg>,
    ) -> Self {
        Self {
            writer,
            store,
            hub,
            handoffs,
            metrics,
            inbound_tasks: TaskSet::bounded("sms inbound", MAX_INBOUND_IN_FLIGHT),
            self_tx,
            in_flight: HashMap::new(),
            rows: HashMap::new(),
            parked: HashMap::new(),
        }
    }

    pub async fn run(
        mut self,
        mut msgs: mpsc::Receiver<TrackerMsg>,
        mut events: mpsc::Receiver<SmsEvent>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                Some(msg) = msgs.recv() => self.on_msg(msg).await,
                event = events.recv() => match event {
                    Some(SmsEvent::Receipt(r)) => self.on_receipt(r).await,
                    Some(SmsEvent::Inbound(m)) => self.on_inbound(m).await,
                    None => break,
                },
                _ = sweep.tick() => self.sweep(),
                _ = &mut stop => break,
            }
        }
        // Record acks that are already queued, then let inbound commits finish.
        while let Ok(msg) = msgs.try_recv() {
            self.on_msg(msg).await;
        }
        self.inbound_tasks.join().await;
    }

    async fn on_msg(&mut self, msg: TrackerMsg) {
        match msg {
            TrackerMsg::Acked { id, carrier_ids, segments, attempt } => {
                let first = carrier_ids.first().cloned();
                self.change(StatusKey::Id(id), StatusTarget::Sent, first, Some(segments), None).await;
                if self.rows.len() >= MAX_IN_FLIGHT {
                    return; // receipts will be matched through the table
                }
                let parts = carrier_ids.len();
                self.rows.insert(id, InFlight { carrier_ids, remaining: parts, attempt, since: Instant::now() });
                for k in 0..parts {
                    let Some(cid) = self.rows.get(&id).and_then(|r| r.carrier_ids.get(k)).cloned() else { return };
                    match self.take_parked(&cid) {
                        Some(receipt) => self.on_part_receipt(id, &receipt).await,
                        None => {
                            self.in_flight.insert(cid, (id, Instant::now()));
                        }
                    }
                }
            }
            TrackerMsg::Unmatched(receipt) => {
                // The ack may have arrived while the table lookup ran.
                if let Some(id) = self.take_in_flight(&receipt) {
                    self.on_part_receipt(id, &receipt).await;
                } else if self.parked.len() < MAX_PARKED {
                    let now = Instant::now();
                    if let Some(alt) = &receipt.alternate_id {
                        self.parked.insert(alt.clone(), (receipt.clone(), now));
                    }
                    self.parked.insert(receipt.carrier_id.clone(), (receipt, now));
                } else {
                    tracing::warn!(carrier_id = %receipt.carrier_id, "receipt for an unknown message dropped");
                }
            }
        }
    }

    /// Removes and answers the row of the part a receipt names, by its id or its alternate.
    fn take_in_flight(&mut self, receipt: &DeliveryReceipt) -> Option<i64> {
        if let Some((id, _)) = self.in_flight.remove(&receipt.carrier_id) {
            return Some(id);
        }
        receipt.alternate_id.as_ref().and_then(|alt| self.in_flight.remove(alt)).map(|(id, _)| id)
    }

    /// A parked receipt for `carrier_id`, under whichever of its two ids it was parked.
    fn take_parked(&mut self, carrier_id: &str) -> Option<DeliveryReceipt> {
        let (receipt, _) = self.parked.remove(carrier_id)?;
        let other =
            if receipt.carrier_id == carrier_id { receipt.alternate_id.as_deref() } else { Some(&*receipt.carrier_id) };
        if let Some(other) = other {
            self.parked.remove(other);
        }
        Some(receipt)
    }

    async fn on_receipt(&mut self, receipt: DeliveryReceipt) {
        if receipt.state == ReceiptState::Enroute {
            return;
        }
        if let Some(id) = self.take_in_flight(&receipt) {
            self.on_part_receipt(id, &receipt).await;
            return;
        }
        // Not in memory: try the table off this task; park it if nothing matches.
        let writer = self.writer.clone();
        let back = self.self_tx.clone();
        let metrics = self.metrics.clone();
        let spawned = self
            .inbound_tasks
            .spawn_when_room(async move {
                let change = receipt_change(StatusKey::CarrierId(receipt.carrier_id.clone()), &receipt);
                match writer.change_status(change).await {
                    Ok(0) => drop(back.send(TrackerMsg::Unmatched(receipt)).await),
                    Ok(_) => metrics.message("outbound", receipt_status(&receipt)),
                    Err(err) => tracing::warn!(error = %err, "receipt not recorded"),
                }
            })
            .await;
        if let Err(closed) = spawned {
            tracing::warn!(error = %closed, "receipt not recorded: shutting down");
        }
    }

    /// One part's receipt: the message is delivered when its last part is, failed (or sent
    /// again) as soon as one part fails.
    async fn on_part_receipt(&mut self, id: i64, receipt: &DeliveryReceipt) {
        let Some(row) = self.rows.get_mut(&id) else {
            // Already settled (another part failed): nothing more to record.
            return;
        };
        if receipt.state == ReceiptState::Delivered {
            row.remaining = row.remaining.saturating_sub(1);
            if row.remaining > 0 {
                return;
            }
        }
        let Some(row) = self.rows.remove(&id) else { return };
        for cid in &row.carrier_ids {
            self.in_flight.remove(cid);
        }
        if receipt.state == ReceiptState::Failed && receipt.retryable && row.attempt < MAX_ATTEMPTS {
            tracing::info!(id, attempt = row.attempt, code = ?receipt.error_code, "delivery failed; sending again");
            let error_code = receipt.error_code.map(i64::from);
            self.change(StatusKey::Id(id), StatusTarget::Resubmit, None, None, error_code).await;
            return;
        }
        self.apply_receipt(StatusKey::Id(id), receipt).await;
    }

    async fn apply_receipt(&mut self, key: StatusKey, receipt: &DeliveryReceipt) {
        self.metrics.message("outbound", receipt_status(receipt));
        if self.writer.change_status_later(receipt_change(key, receipt)).await.is_err() {
            tracing::warn!("writer stopped; receipt lost");
        }
    }

    async fn change(
        &mut self,
        key: StatusKey,
        target: StatusTarget,
        carrier_id: Option<String>,
        segments: Option<u32>,
        error_code: Option<i64>,
    ) {
        let change = StatusChange {
            key,
            target,
            carrier_id,
            segments: segments.map(i64::from),
            error_code,
            at_ms: clock::now_ms(),
        };
        if self.writer.change_status_later(change).await.is_err() {
            tracing::warn!("writer stopped; status change lost");
        }
    }

    async fn on_inbound(&mut self, sms: InboundSms) {
        // A whole message for a number with a parked long-poll is claimed for it as it is
        // stored; a part waits for its siblings, so it is not.
        let handoff = if sms.part.is_none() { self.handoffs.take(sms.to.as_str()) } else { None };
        let inbox = Inbox { writer: self.writer.clone(), store: self.store.clone(), hub: self.hub.clone() };
        let metrics = self.metrics.clone();
        if let Err(closed) = self.inbound_tasks.spawn_when_room(store_inbound(inbox, metrics, sms, handoff)).await {
            tracing::warn!(error = %closed, "inbound message not committed: shutting down");
        }
    }

    fn sweep(&mut self) {
        self.parked.retain(|_, (_, at)| at.elapsed() < PARK_TTL);
        self.in_flight.retain(|_, (_, at)| at.elapsed() < IN_FLIGHT_TTL);
        self.rows.retain(|_, row| row.since.elapsed() < IN_FLIGHT_TTL);
    }
}

fn receipt_status(receipt: &DeliveryReceipt) -> &'static str {
    match receipt.state {
        ReceiptState::Failed => "failed",
        _ => "delivered",
    }
}

fn receipt_change(key: StatusKey, receipt: &DeliveryReceipt) -> StatusChange {
    let target = match receipt.state {
        ReceiptState::Failed => StatusTarget::Failed,
        _ => StatusTarget::Delivered,
    };
    StatusChange {
        key,
        target,
        carrier_id: None,
        segments: None,
        error_code: receipt.error_code.map(i64::from),
        at_ms: clock::now_ms(),
    }
}

/// Where an inbound message goes: the table, and the owner's waiting long-polls.
struct Inbox {
    writer: MessageWriter,
    store: Store,
    hub: Arc<InboxHub>,
}

/// Commit (claimed for `handoff`'s owner when there is one), hand the message to that waiter,
/// acknowledge the network, then wake the owner's other long-polls.
async fn store_inbound(inbox: Inbox, metrics: Arc<Metrics>, sms: InboundSms, handoff: Option<Taken>) {
    let now_ms = clock::now_ms();
    let row = InboundInsert {
        message_id: MessageId::generate(),
        to: sms.to.into_string(),
        from: sms.from,
        body: sms.body,
        carrier_id: sms.carrier_id,
        received_at_ms: sms.received_at_ms,
        now_ms,
        part: sms.part.map(|p| InboundPart {
            reference: i64::from(p.reference),
            total: i64::from(p.total),
            seq: i64::from(p.seq),
        }),
        claim_for: handoff.as_ref().map(|h| h.owner),
    };
    let mut claimed = None;
    let (disposition, stored) = match inbox.writer.insert_inbound(row).await {
        Ok(InboundOutcome::Stored { id, owner, claimed: c }) => {
            claimed = c;
            (InboundDisposition::Stored, Some((id, owner)))
        }
        Ok(InboundOutcome::PartStored) => (InboundDisposition::Stored, None),
        Ok(InboundOutcome::NotOurs) => (InboundDisposition::UnknownDestination, None),
        Err(err) => {
            tracing::error!(error = %err, "inbound message not stored");
            (InboundDisposition::TemporaryFailure, None)
        }
    };
    let committed = Instant::now();
    if stored.is_some() {
        metrics.inbound_commit.observe(committed.saturating_duration_since(sms.arrived).as_secs_f64());
    }
    // Handed over before the acknowledgement: the waiter's answer need not queue behind it.
    // A refused claim or a failed insert drops the sender: the waiter looks at the table again.
    let handed = claimed.is_some();
    let orphaned = match (claimed, handoff) {
        (Some(message), Some(handoff)) => {
            handoff.tx.send(Handed { message, committed }).err().map(|back| (back.message.id, back.message.created_at))
        }
        _ => None,
    };
    // The network may have given up waiting; the message is stored either way.
    let _ = sms.ack.send(disposition);
    let Some((_, owner)) = stored else { return };
    metrics.message("inbound", "received");
    match orphaned {
        None if handed => metrics.handoff("handed"),
        Some(_) => metrics.handoff("returned"),
        None => {}
    }
    if let Some((id, claimed_at_ms)) = orphaned {
        // The waiter left between taking its slot and the commit: offer the message again.
        if let Err(err) = inbox.store.unclaim_message(id, claimed_at_ms).await {
            tracing::error!(error = %err, id, "a claimed message whose waiter left stays claimed");
        }
    }
    inbox.hub.signal(owner, committed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e164::E164;
    use crate::ids::SubscriptionId;
    use crate::metrics::WriterMetrics;

    const NUMBER: &str = "+15550100001";

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        writer: MessageWriter,
        hub: Arc<InboxHub>,
        handoffs: Arc<Handoffs>,
        metrics: Arc<Metrics>,
        owner: SubscriptionId,
    }

    impl Fixture {
        async fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let (store, grant) = crate::store::sqlite_with_a_holder(dir.path(), &[NUMBER]).await;
            let (writer, _task) = MessageWriter::spawn(store.clone(), WriterMetrics::new());
            Self {
                _dir: dir,
                store,
                writer,
                hub: Arc::new(InboxHub::default()),
                handoffs: Arc::new(Handoffs::default()),
                metrics: Arc::new(Metrics::default()),
                owner: grant.subscription_id,
            }
        }

        /// Runs one inbound message through `store_inbound`, as the tracker would.
        async fn deliver(&self, body: &str) -> InboundDisposition {
            let (ack, acked) = oneshot::channel();
            let sms = InboundSms {
                from: "+15557654321".into(),
                to: E164::parse(NUMBER).expect("e164"),
                body: body.into(),
                carrier_id: None,
                received_at_ms: 2,
                arrived: Instant::now(),
                part: None,
                ack,
            };
            let handoff = self.handoffs.take(NUMBER);
            let inbox = Inbox { writer: self.writer.clone(), store: self.store.clone(), hub: self.hub.clone() };
            store_inbound(inbox, self.metrics.clone(), sms, handoff).await;
            acked.await.expect("acknowledged")
        }

        async fn unclaimed(&self) -> Vec<String> {
            let rows = self.store.unclaimed_inbound(self.owner, 0, 100).await.expect("query");
            rows.into_iter().map(|m| m.body).collect()
        }
    }

    #[tokio::test]
    async fn a_parked_waiter_gets_the_message_claimed_in_its_own_commit() {
        let f = Fixture::new().await;
        let mut slot = f.handoffs.park(NUMBER, f.owner);
        assert_eq!(f.deliver("your code is 123456").await, InboundDisposition::Stored);
        let handed = slot.handed().await.expect("handed over");
        assert_eq!(handed.message.body, "your code is 123456");
        assert_eq!(handed.message.number, NUMBER);
        assert!(f.unclaimed().await.is_empty(), "the row is claimed");
        let again = f.store.claim_inbound(f.owner, 10, 3).await.expect("claim");
        assert!(again.is_empty(), "nobody else gets it");
        assert!(f.metrics.encode().contains("agentline_sms_longpoll_handoffs_total{outcome=\"handed\"} 1"));
    }

    #[tokio::test]
    async fn a_waiter_gone_before_the_commit_leaves_the_message_unclaimed_and_signalled() {
        let f = Fixture::new().await;
        let signal = f.hub.watch(f.owner);
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // The slot is taken (inside `deliver`) while the waiter is still there, and the waiter
        // leaves before the send: parked, taken, then dropped.
        let slot = f.handoffs.park(NUMBER, f.owner);
        let taken = f.handoffs.take(NUMBER).expect("slot");
        drop(slot);
        let (ack, acked) = oneshot::channel();
        let sms = InboundSms {
            from: "+15557654321".into(),
            to: E164::parse(NUMBER).expect("e164"),
            body: "left".into(),
            carrier_id: None,
            received_at_ms: 2,
            arrived: Instant::now(),
            part: None,
            ack,
        };
        let inbox = Inbox { writer: f.writer.clone(), store: f.store.clone(), hub: f.hub.clone() };
        store_inbound(inbox, f.metrics.clone(), sms, Some(taken)).await;
        assert_eq!(acked.await.expect("acked"), InboundDisposition::Stored);
        assert_eq!(f.unclaimed().await, ["left"], "offered again");
        tokio::time::timeout(Duration::from_secs(5), notified).await.expect("the inbox was signalled");
        assert!(f.metrics.encode().contains("agentline_sms_longpoll_handoffs_total{outcome=\"returned\"} 1"));
    }

    #[tokio::test]
    async fn a_slot_of_another_owner_is_not_claimed_for() {
        let f = Fixture::new().await;
        // A waiter of a subscription that no longer holds the number (it changed hands).
        let mut slot = f.handoffs.park(NUMBER, SubscriptionId::new(f.owner.get() + 1000));
        assert_eq!(f.deliver("not yours").await, InboundDisposition::Stored);
        assert!(slot.handed().await.is_none(), "the waiter is told to look again");
        assert_eq!(f.unclaimed().await, ["not yours"]);
    }

    #[tokio::test]
    async fn without_a_waiter_the_message_waits_unclaimed() {
        let f = Fixture::new().await;
        assert_eq!(f.deliver("plain").await, InboundDisposition::Stored);
        assert_eq!(f.unclaimed().await, ["plain"]);
        assert_eq!(f.handoffs.parked(), 0);
    }
}
