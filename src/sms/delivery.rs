//! The delivery tracker: one task that turns what the network reports into message states.
//!
//! - Acks from the dispatcher record `sent` with the carrier id.
//! - Receipts move a message to `delivered` or `failed`. A receipt is matched through the
//!   in-memory map of messages in flight; if it names an unknown carrier id it is tried against
//!   the table (a message sent before a restart), and if that finds nothing it is parked until
//!   the ack arrives: SMSCs can send the receipt before we have processed `submit_sm_resp`.
//! - Inbound messages are committed, then acknowledged to the network, then the owner's
//!   waiting long-polls are woken.
//!
//! Status writes are queued to the group-commit writer in the order decided here, and every
//! transition is monotonic in SQL, so a late or duplicated event never moves a message back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{BoundedTasks, new_message_id};
use crate::clock;
use crate::events::InboxHub;
use crate::metrics::Metrics;
use crate::store::{InboundInsert, MessageWriter, StatusChange, StatusKey, StatusTarget};
use crate::telco::{DeliveryReceipt, InboundDisposition, InboundSms, ReceiptState, SmsEvent};

/// Tracker messages queued at most.
pub const TRACKER_QUEUE: usize = 16_384;
/// Inbound messages being committed at once, at most.
const MAX_INBOUND_IN_FLIGHT: u32 = 1024;
/// Receipts for unknown carrier ids kept at most, and for how long.
const MAX_PARKED: usize = 100_000;
const PARK_TTL: Duration = Duration::from_secs(600);
/// Messages in flight (acked, no final receipt) remembered at most, and for how long.
const MAX_IN_FLIGHT: usize = 1_000_000;
const IN_FLIGHT_TTL: Duration = Duration::from_secs(3600);
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum TrackerMsg {
    Acked {
        id: i64,
        carrier_id: String,
        segments: u32,
    },
    /// A receipt whose carrier id matched no row in the table.
    Unmatched(DeliveryReceipt),
}

pub(super) struct Tracker {
    pub writer: MessageWriter,
    pub hub: Arc<InboxHub>,
    pub metrics: Arc<Metrics>,
    pub inbound_tasks: BoundedTasks,
    /// For re-injecting unmatched receipts.
    pub self_tx: mpsc::Sender<TrackerMsg>,
    in_flight: HashMap<String, (i64, Instant)>,
    parked: HashMap<String, (DeliveryReceipt, Instant)>,
}

impl Tracker {
    pub fn new(
        writer: MessageWriter,
        hub: Arc<InboxHub>,
        metrics: Arc<Metrics>,
        self_tx: mpsc::Sender<TrackerMsg>,
    ) -> Self {
        Self {
            writer,
            hub,
            metrics,
            inbound_tasks: BoundedTasks::new(MAX_INBOUND_IN_FLIGHT),
            self_tx,
            in_flight: HashMap::new(),
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
        self.inbound_tasks.drain().await;
    }

    async fn on_msg(&mut self, msg: TrackerMsg) {
        match msg {
            TrackerMsg::Acked { id, carrier_id, segments } => {
                self.change(StatusKey::Id(id), StatusTarget::Sent, Some(carrier_id.clone()), Some(segments), None)
                    .await;
                if let Some((receipt, _)) = self.parked.remove(&carrier_id) {
                    self.apply_receipt(StatusKey::Id(id), &receipt).await;
                } else if self.in_flight.len() < MAX_IN_FLIGHT {
                    self.in_flight.insert(carrier_id, (id, Instant::now()));
                }
            }
            TrackerMsg::Unmatched(receipt) => {
                // The ack may have arrived while the table lookup ran.
                if let Some((id, _)) = self.in_flight.remove(&receipt.carrier_id) {
                    self.apply_receipt(StatusKey::Id(id), &receipt).await;
                } else if self.parked.len() < MAX_PARKED {
                    self.parked.insert(receipt.carrier_id.clone(), (receipt, Instant::now()));
                } else {
                    tracing::warn!(carrier_id = %receipt.carrier_id, "receipt for an unknown message dropped");
                }
            }
        }
    }

    async fn on_receipt(&mut self, receipt: DeliveryReceipt) {
        if receipt.state == ReceiptState::Enroute {
            return;
        }
        if let Some((id, _)) = self.in_flight.remove(&receipt.carrier_id) {
            self.apply_receipt(StatusKey::Id(id), &receipt).await;
            return;
        }
        // Not in memory: try the table off this task; park it if nothing matches.
        let writer = self.writer.clone();
        let back = self.self_tx.clone();
        let metrics = self.metrics.clone();
        self.inbound_tasks
            .spawn(async move {
                let change = receipt_change(StatusKey::CarrierId(receipt.carrier_id.clone()), &receipt);
                match writer.change_status(change).await {
                    Ok(0) => drop(back.send(TrackerMsg::Unmatched(receipt)).await),
                    Ok(_) => metrics.message("outbound", receipt_status(&receipt)),
                    Err(err) => tracing::warn!(error = %err, "receipt not recorded"),
                }
            })
            .await;
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
        let writer = self.writer.clone();
        let hub = self.hub.clone();
        let metrics = self.metrics.clone();
        self.inbound_tasks.spawn(store_inbound(writer, hub, metrics, sms)).await;
    }

    fn sweep(&mut self) {
        self.parked.retain(|_, (_, at)| at.elapsed() < PARK_TTL);
        self.in_flight.retain(|_, (_, at)| at.elapsed() < IN_FLIGHT_TTL);
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

/// Commit, then acknowledge the network, then wake the owner's long-polls.
async fn store_inbound(writer: MessageWriter, hub: Arc<InboxHub>, metrics: Arc<Metrics>, sms: InboundSms) {
    let now_ms = clock::now_ms();
    let row = InboundInsert {
        message_id: new_message_id(),
        to: sms.to.into_string(),
        from: sms.from,
        body: sms.body,
        carrier_id: sms.carrier_id,
        received_at_ms: sms.received_at_ms,
        now_ms,
    };
    let (disposition, owner) = match writer.insert_inbound(row).await {
        Ok(Some((_, owner))) => (InboundDisposition::Stored, Some((owner, Instant::now()))),
        Ok(None) => (InboundDisposition::UnknownDestination, None),
        Err(err) => {
            tracing::error!(error = %err, "inbound message not stored");
            (InboundDisposition::TemporaryFailure, None)
        }
    };
    // The network may have given up waiting; the message is stored either way.
    let _ = sms.ack.send(disposition);
    if let Some((owner, committed)) = owner {
        metrics.message("inbound", "received");
        hub.signal(owner, committed);
    }
}
