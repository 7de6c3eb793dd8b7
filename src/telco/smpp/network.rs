//! [`SmppNetwork`]: the [`SmsNetwork`] of a carrier's SMSC, over one or more SMPP binds.
//!
//! Outbound, a message is split into `submit_sm` parts ([`super::segments`]) sent in order on the
//! next bound session (round robin), with E.164 addresses as TON/NPI 1/1 and
//! `registered_delivery = 1`. Before each part the network waits out a throttling pause and the
//! configured throughput cap. `ESME_RTHROTTLED` / `ESME_RMSGQFUL` pause every session (1 s doubling
//! to 60 s, reset by the next success) and the part is sent again without counting as a failure.
//! Failures before the first part was taken go back to the dispatcher, which owns retries; once
//! a part is taken, the rest are pushed through here (a transient error is retried, a lost link
//! is waited out) so a retry never sends the first parts twice. A response timeout is ambiguous
//! and never resent.
//!
//! Inbound, receipts and MO messages become [`SmsEvent`]s. A receipt is answered at once; an MO
//! (or MO part) is answered only when the SMS service reports it committed. A full event queue is
//! answered `ESME_RX_T_APPN`, so the SMSC delivers again later and nothing waits on the reader.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::deliver::{self, Delivered, Stat};
use super::pdu::{Address, Body, CommandId, Pdu, SubmitSm, status};
use super::segments;
use super::session::{DeliverHandler, Responder, Session, SessionSettings};
use crate::e164::E164;
use crate::future::BoxFuture;
use crate::telco::{
    DeliveryReceipt, InboundDisposition, InboundSms, LinkState, OutboundSms, ReceiptState, SmsEvent, SmsNetwork,
    SmsPart, SubmitAck, SubmitError,
};

/// Ask for a receipt on final success or failure only (SMPP 3.4 §5.2.17).
const REGISTERED_DELIVERY_FINAL: u8 = 0x01;
/// Longest throttling pause.
const MAX_THROTTLE_PAUSE: Duration = Duration::from_secs(60);
/// Transient errors retried on a later part of a message before giving up.
const LATER_PART_RETRIES: u32 = 3;
/// How long a later part waits for a lost link to come back.
const LATER_PART_LINK_WAIT: Duration = Duration::from_secs(120);

/// Everything a network of binds needs, from the configuration.
#[derive(Debug, Clone)]
pub struct SmppSettings {
    /// One entry per bind to open.
    pub sessions: Vec<SessionSettings>,
    /// Parts per second at most over all binds; `None` = uncapped.
    pub throughput: Option<u32>,
    /// First pause after a throttling answer.
    pub throttle_pause: Duration,
}

pub struct SmppNetwork {
    submitters: Vec<Arc<Session>>,
    all: Vec<Arc<Session>>,
    next: AtomicUsize,
    reference: AtomicU8,
    pacing: Option<(Duration, Mutex<Instant>)>,
    throttle: Mutex<Throttle>,
    throttle_min: Duration,
}

struct Throttle {
    until: Option<Instant>,
    pause: Duration,
}

impl SmppNetwork {
    /// Starts one task per bind; they run until `stop` turns true (after the SMS service has
    /// drained), then unbind.
    pub fn start(
        settings: SmppSettings,
        events: mpsc::Sender<SmsEvent>,
        stop: watch::Receiver<bool>,
    ) -> (Arc<Self>, Vec<JoinHandle<()>>) {
        let all: Vec<Arc<Session>> = settings.sessions.into_iter().map(Session::new).collect();
        let submitters = all.iter().filter(|s| s.bind_kind().can_submit()).cloned().collect();
        let handler: Arc<dyn DeliverHandler> = Arc::new(Inbound { events });
        let tasks = all.iter().map(|s| tokio::spawn(s.clone().run(handler.clone(), stop.clone()))).collect();
        let pacing = settings
            .throughput
            .filter(|&n| n > 0)
            .map(|n| (Duration::from_secs_f64(1.0 / f64::from(n)), Mutex::new(Instant::now())));
        let network = Self {
            submitters,
            all,
            next: AtomicUsize::new(0),
            reference: AtomicU8::new(rand::random()),
            pacing,
            throttle: Mutex::new(Throttle { until: None, pause: settings.throttle_pause }),
            throttle_min: settings.throttle_pause,
        };
        (Arc::new(network), tasks)
    }

    fn pick(&self) -> Option<&Arc<Session>> {
        let n = self.submitters.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| &self.submitters[(start + i) % n]).find(|s| s.is_up())
    }

    /// Waits out a throttling pause, then for this part's slot under the throughput cap.
    async fn wait_turn(&self) {
        loop {
            let until = self.throttle.lock().unwrap_or_else(|e| e.into_inner()).until;
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        if let Some((interval, next)) = &self.pacing {
            let slot = {
                let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                let slot = (*next).max(Instant::now());
                *next = slot + *interval;
                slot
            };
            tokio::time::sleep_until(slot).await;
        }
    }

    fn throttled(&self) {
        let mut t = self.throttle.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Parts in flight together all come back throttled: one pause for all of them.
        if t.until.is_none_or(|u| u <= now) {
            t.until = Some(now + t.pause);
            tracing::info!(pause = ?t.pause, "SMSC throttling: pausing submissions");
            t.pause = (t.pause * 2).min(MAX_THROTTLE_PAUSE);
        }
    }

    fn unthrottled(&self) {
        let mut t = self.throttle.lock().unwrap_or_else(|e| e.into_inner());
        if t.pause != self.throttle_min && t.until.is_none_or(|u| u <= Instant::now()) {
            t.pause = self.throttle_min;
        }
    }

    /// Waits (bounded) until some bind can submit again. Only a later part of a message whose
    /// link dropped mid-way comes here, so a coarse poll is enough.
    async fn wait_for_link(&self) -> bool {
        let deadline = Instant::now() + LATER_PART_LINK_WAIT;
        while Instant::now() < deadline {
            if self.submitters.iter().any(|s| s.is_up()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Sends one part; answers the SMSC's canonical message id.
    async fn submit_part(&self, sm: &SubmitSm, first: bool) -> Result<String, SubmitError> {
        let mut retries_left = LATER_PART_RETRIES;
        loop {
            self.wait_turn().await;
            let result = match self.pick() {
                Some(session) => session.request(CommandId::SUBMIT_SM, Body::SubmitSm(sm.clone())).await,
                None => Err(super::session::RequestError::NotBound),
            };
            use super::session::RequestError as R;
            match result {
                Ok(Pdu { command_status: status::ESME_ROK, body: Body::SubmitSmResp { message_id }, .. }) => {
                    self.unthrottled();
                    return Ok(deliver::canonical_id(&message_id));
                }
                Ok(Pdu { command_status: status::ESME_RTHROTTLED | status::ESME_RMSGQFUL, .. }) => self.throttled(),
                Ok(Pdu { command_status: code @ (status::ESME_RSYSERR | status::ESME_RX_T_APPN), .. }) => {
                    if first {
                        return Err(SubmitError::Rejected { code, permanent: false });
                    }
                    retries_left -= 1;
                    if retries_left == 0 {
                        return Err(SubmitError::Rejected { code, permanent: true });
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                // A generic_nack or a response with status 0 but no body: refused as sent.
                Ok(Pdu { command_status, .. }) => {
                    let code = if command_status == 0 { status::ESME_RSYSERR } else { command_status };
                    return Err(SubmitError::Rejected { code, permanent: true });
                }
                Err(R::Timeout(timeout)) => return Err(SubmitError::Ambiguous { timeout }),
                Err(R::Encode(err)) => {
                    tracing::warn!(error = %err, "submit_sm not encodable");
                    return Err(SubmitError::Rejected { code: status::ESME_RINVMSGLEN, permanent: true });
                }
                Err(R::NotBound) if first => return Err(SubmitError::Unavailable),
                Err(R::ConnectionLost) if first => return Err(SubmitError::Interrupted),
                Err(R::NotBound | R::ConnectionLost) => {
                    if !self.wait_for_link().await {
                        return Err(SubmitError::Ambiguous { timeout: LATER_PART_LINK_WAIT });
                    }
                }
            }
        }
    }
}

/// `+15551230000` -> TON 1 (international), NPI 1 (E.164), digits without the `+`.
fn international(number: &E164) -> Address {
    Address { ton: 1, npi: 1, addr: number.digits().to_owned() }
}

impl SmsNetwork for SmppNetwork {
    fn name(&self) -> &'static str {
        "smpp"
    }

    fn submit(&self, sms: OutboundSms) -> BoxFuture<'_, Result<SubmitAck, SubmitError>> {
        Box::pin(async move {
            let reference = self.reference.fetch_add(1, Ordering::Relaxed);
            let encoded = segments::split(&sms.body, reference)
                .map_err(|_| SubmitError::Rejected { code: status::ESME_RINVMSGLEN, permanent: true })?;
            let segments = encoded.parts.len() as u32;
            let mut sm = SubmitSm {
                service_type: String::new(),
                source: international(&sms.from),
                dest: international(&sms.to),
                esm_class: encoded.esm_class,
                protocol_id: 0,
                priority_flag: 0,
                schedule_delivery_time: String::new(),
                validity_period: String::new(),
                registered_delivery: REGISTERED_DELIVERY_FINAL,
                replace_if_present_flag: 0,
                data_coding: encoded.data_coding,
                sm_default_msg_id: 0,
                short_message: Vec::new(),
                tlvs: Vec::new(),
            };
            let mut carrier_ids = Vec::with_capacity(encoded.parts.len());
            for (i, part) in encoded.parts.into_iter().enumerate() {
                sm.short_message = part;
                carrier_ids.push(self.submit_part(&sm, i == 0).await?);
            }
            Ok(SubmitAck { carrier_ids, segments })
        })
    }

    fn link_state(&self) -> LinkState {
        let sending = self.submitters.iter().any(|s| s.is_up());
        let receiving = self.all.iter().any(|s| s.bind_kind().can_receive() && s.is_up());
        if sending && receiving {
            return LinkState::Up;
        }
        let reason = self
            .all
            .iter()
            .find_map(|s| match s.link_state() {
                LinkState::Down { reason } => Some(reason),
                LinkState::Up => None,
            })
            .unwrap_or_else(|| "no bind".to_owned());
        LinkState::Down { reason: format!("SMSC link down: {reason}") }
    }
}

/// Turns `deliver_sm` into events.
struct Inbound {
    events: mpsc::Sender<SmsEvent>,
}

impl DeliverHandler for Inbound {
    fn on_deliver(&self, pdu: Pdu, responder: Responder) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Body::DeliverSm(sm) = pdu.body else {
                return responder.respond(status::ESME_RSYSERR).await;
            };
            match deliver::interpret(&sm) {
                Err(err) => {
                    // Asking again would not make it readable; keep it out of the SMSC's queue.
                    tracing::warn!(error = %err, "unreadable delivery receipt acknowledged and dropped");
                    responder.respond(status::ESME_ROK).await;
                }
                Ok(Delivered::Receipt(r)) => {
                    let state = match r.stat {
                        Stat::Delivered => ReceiptState::Delivered,
                        s if s.is_intermediate() => ReceiptState::Enroute,
                        _ => ReceiptState::Failed,
                    };
                    let receipt = DeliveryReceipt {
                        carrier_id: r.carrier_id,
                        alternate_id: r.alternate_id,
                        state,
                        error_code: r.error_code,
                        retryable: r.stat.is_retryable(),
                    };
                    let code = match self.events.try_send(SmsEvent::Receipt(receipt)) {
                        Ok(()) => status::ESME_ROK,
                        Err(_) => status::ESME_RX_T_APPN,
                    };
                    responder.respond(code).await;
                }
                Ok(Delivered::Mo(part)) => {
                    let Ok(to) = E164::parse(&format!("+{}", sm.dest.addr.trim_start_matches('+'))) else {
                        return responder.respond(status::ESME_RINVDSTADR).await;
                    };
                    let (ack, acked) = oneshot::channel();
                    let inbound = InboundSms {
                        from: sender(&sm.source),
                        to,
                        body: part.text,
                        carrier_id: None,
                        received_at_ms: crate::clock::now_ms(),
                        arrived: std::time::Instant::now(),
                        part: part.concat.map(|c| SmsPart { reference: c.reference, total: c.total, seq: c.seq }),
                        ack,
                    };
                    if self.events.try_send(SmsEvent::Inbound(inbound)).is_err() {
                        return responder.respond(status::ESME_RX_T_APPN).await;
                    }
                    // Answer once committed, without holding the reader up meanwhile.
                    responder.respond_when(async move {
                        match acked.await {
                            Ok(InboundDisposition::Stored) => status::ESME_ROK,
                            Ok(InboundDisposition::UnknownDestination) => status::ESME_RINVDSTADR,
                            Ok(InboundDisposition::TemporaryFailure) | Err(_) => status::ESME_RX_T_APPN,
                        }
                    });
                }
            }
        })
    }
}

/// The sender as agents should see it: `+digits` for international numbers, the address as
/// given otherwise (short codes, alphanumeric senders).
fn sender(source: &Address) -> String {
    let digits = source.addr.trim_start_matches('+');
    if source.ton == 1 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{digits}")
    } else {
        source.addr.clone()
    }
}
