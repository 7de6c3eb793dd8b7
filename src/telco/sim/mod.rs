//! The built-in simulated phone network, the default when no carrier is configured, so one
//! command on a fresh machine gives a working service.
//!
//! SMS: every submission is taken at once (`sim-…` carrier id). A message to one of our own
//! numbers (the on-net predicate, backed by the pool) is offered to the SMS service as inbound
//! traffic, exactly as an SMSC would deliver it; a `delivered` receipt follows after the
//! configured delay for every message. Receipts are emitted by one worker task, in submission
//! order.

pub mod voice;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::e164::E164;

use super::{
    BoxFuture, DeliveryReceipt, InboundSms, LinkState, OutboundSms, ReceiptState, SmsEvent, SmsNetwork, SubmitAck,
    SubmitError, sms_encoding,
};

/// Receipts waiting for their delivery time at most; submissions wait beyond it.
const RECEIPT_QUEUE: usize = 65_536;

/// The numbers seeded into an empty pool: `prefix` followed by `0100`, `0101`, …
pub fn seed_numbers(prefix: &str, count: u32) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{:04}", 100 + i)).collect()
}

/// Whether a number is served by this network (one of our pool's numbers).
pub type OnNet = Arc<dyn Fn(&E164) -> bool + Send + Sync>;

pub struct SimNetwork {
    events: mpsc::Sender<SmsEvent>,
    on_net: OnNet,
    receipts: mpsc::Sender<(Instant, String)>,
    next_id: AtomicU64,
    delivery_delay: Duration,
}

impl SimNetwork {
    /// Builds the network and its receipt worker. The worker ends once the network is dropped
    /// and its queue is drained.
    pub fn new(
        events: mpsc::Sender<SmsEvent>,
        on_net: OnNet,
        delivery_delay: Duration,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (receipts, rx) = mpsc::channel(RECEIPT_QUEUE);
        let worker = tokio::spawn(emit_receipts(rx, events.clone()));
        (Self { events, on_net, receipts, next_id: AtomicU64::new(1), delivery_delay }, worker)
    }
}

async fn emit_receipts(mut rx: mpsc::Receiver<(Instant, String)>, events: mpsc::Sender<SmsEvent>) {
    while let Some((due, carrier_id)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        let receipt = DeliveryReceipt::new(carrier_id, ReceiptState::Delivered, None);
        if events.send(SmsEvent::Receipt(receipt)).await.is_err() {
            return;
        }
    }
}

impl SmsNetwork for SimNetwork {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn submit(&self, sms: OutboundSms) -> BoxFuture<'_, Result<SubmitAck, SubmitError>> {
        Box::pin(async move {
            let carrier_id = format!("sim-{:016x}", self.next_id.fetch_add(1, Ordering::Relaxed));
            let (_, segments) = sms_encoding::plan(&sms.body);
            if (self.on_net)(&sms.to) {
                // The simulated far end does not wait for our storage; the ack is dropped.
                let (ack, _) = oneshot::channel();
                let inbound = InboundSms {
                    from: sms.from.into_string(),
                    to: sms.to,
                    body: sms.body,
                    carrier_id: Some(carrier_id.clone()),
                    received_at_ms: crate::clock::now_ms(),
                    arrived: std::time::Instant::now(),
                    part: None,
                    ack,
                };
                self.events.send(SmsEvent::Inbound(inbound)).await.map_err(|_| SubmitError::Unavailable)?;
            }
            let due = Instant::now() + self.delivery_delay;
            self.receipts.send((due, carrier_id.clone())).await.map_err(|_| SubmitError::Unavailable)?;
            Ok(SubmitAck { carrier_ids: vec![carrier_id], segments })
        })
    }

    fn link_state(&self) -> LinkState {
        if self.events.is_closed() {
            LinkState::Down { reason: "sms service stopped".to_owned() }
        } else {
            LinkState::Up
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_fictional_555_01xx_numbers() {
        let n = seed_numbers("+1202555", 100);
        assert_eq!(n.len(), 100);
        assert_eq!(n[0], "+12025550100");
        assert_eq!(n[99], "+12025550199");
        assert!(n.iter().all(|x| E164::parse(x).is_ok()));
    }

    #[tokio::test(start_paused = true)]
    async fn submit_offers_inbound_then_receipt_after_delay() {
        let (tx, mut rx) = mpsc::channel(16);
        let on_net: OnNet = Arc::new(|n: &E164| n.as_str() == "+12025550101");
        let (net, worker) = SimNetwork::new(tx, on_net, Duration::from_millis(200));
        let sms = |to: &str| OutboundSms {
            id: 1,
            from: E164::parse("+12025550100").expect("valid"),
            to: E164::parse(to).expect("valid"),
            body: "hi".to_owned(),
        };
        let started = Instant::now();
        let off_net = net.submit(sms("+15005550006")).await.expect("taken");
        let ack = net.submit(sms("+12025550101")).await.expect("taken");
        assert_eq!(ack.segments, 1);
        match rx.recv().await {
            Some(SmsEvent::Inbound(m)) => {
                assert_eq!(m.from, "+12025550100");
                assert_eq!(m.to.as_str(), "+12025550101");
                assert_eq!(m.carrier_id.as_deref(), Some(ack.carrier_ids[0].as_str()));
            }
            other => panic!("expected inbound, got {other:?}"),
        }
        // Off-net: a receipt only, no inbound.
        match rx.recv().await {
            Some(SmsEvent::Receipt(r)) => assert_eq!(r.carrier_id, off_net.carrier_ids[0]),
            other => panic!("expected the off-net receipt, got {other:?}"),
        }
        match rx.recv().await {
            Some(SmsEvent::Receipt(r)) => {
                assert_eq!(r.carrier_id, ack.carrier_ids[0]);
                assert_eq!(r.state, ReceiptState::Delivered);
                assert!(started.elapsed() >= Duration::from_millis(200));
            }
            other => panic!("expected receipt, got {other:?}"),
        }
        drop(net);
        worker.await.expect("worker ends");
    }
}
