//! The phone network, behind traits. `SmsNetwork` is what the SMS service talks to; the
//! built-in simulator ([`sim`]) implements it today and the SMPP ESME will implement it for a
//! real carrier. A network takes submissions through [`SmsNetwork::submit`] and reports
//! everything that comes back (delivery receipts, inbound messages) as [`SmsEvent`]s on the
//! bounded channel it was built with.
//!
//! Inbound messages carry an acknowledgement: the network answers its peer (SMPP
//! `deliver_sm_resp`) only after the SMS service says the message is committed.

pub mod rtp;
pub mod sim;
pub mod sip;
pub mod smpp;
pub mod sms_encoding;
pub mod voice;

use std::time::Duration;

use tokio::sync::oneshot;

use crate::e164::E164;

pub use crate::future::BoxFuture;

/// Events queued from a network to the SMS service at most.
pub const SMS_EVENT_QUEUE: usize = 4096;

/// One outbound message handed to the network.
#[derive(Debug, Clone)]
pub struct OutboundSms {
    /// Our row id; networks may use it for logging, never as the carrier id.
    pub id: i64,
    pub from: E164,
    pub to: E164,
    pub body: String,
}

/// The network took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitAck {
    /// The ids the network will use in its receipts, one per receipt to expect (one per part on
    /// SMPP, one per message on the simulator); never empty, in canonical form.
    pub carrier_ids: Vec<String>,
    /// Parts the message was sent as.
    pub segments: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The network asked us to slow down; not a failure of the message.
    #[error("throttled by the network; retry after {retry_after:?}")]
    Throttled { retry_after: Duration },
    /// The network refused the message with a carrier error code.
    #[error("rejected by the network with code {code:#x} (permanent: {permanent})")]
    Rejected { code: u32, permanent: bool },
    /// No link to the network; nothing was sent.
    #[error("network unavailable")]
    Unavailable,
    /// The link dropped before the network answered; it most likely did not take the message.
    #[error("the link to the network dropped before it answered")]
    Interrupted,
    /// No answer in time: the message may or may not have been taken. Never resend blindly.
    #[error("no response from the network within {timeout:?}")]
    Ambiguous { timeout: Duration },
}

/// The final (or intermediate) state a receipt reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    /// Accepted by the far network, still in transit.
    Enroute,
    Delivered,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// Canonical form, as in [`SubmitAck::carrier_ids`].
    pub carrier_id: String,
    /// The same id read in another base (SMSCs mix hex and decimal); tried when `carrier_id`
    /// matches nothing.
    pub alternate_id: Option<String>,
    pub state: ReceiptState,
    pub error_code: Option<u32>,
    /// For `Failed`: another attempt may succeed (the handset was unreachable), so the message
    /// is resubmitted while it has attempts left.
    pub retryable: bool,
}

impl DeliveryReceipt {
    /// A receipt with no alternate id and no retry, as the simulator sends.
    pub fn new(carrier_id: String, state: ReceiptState, error_code: Option<u32>) -> Self {
        Self { carrier_id, alternate_id: None, state, error_code, retryable: false }
    }
}

/// What the SMS service did with an inbound message; networks map it to their ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundDisposition {
    /// Durably stored: acknowledge the peer.
    Stored,
    /// Not a number we serve: reject permanently.
    UnknownDestination,
    /// Could not store now: ask the peer to retry later.
    TemporaryFailure,
}

/// One part of a concatenated inbound message; parts are stored as they come and joined once
/// all `total` are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsPart {
    pub reference: u16,
    pub total: u8,
    /// 1-based.
    pub seq: u8,
}

#[derive(Debug)]
pub struct InboundSms {
    /// The sender as the network gave it: an E.164 number, a short code or an alphanumeric id.
    pub from: String,
    pub to: E164,
    pub body: String,
    pub carrier_id: Option<String>,
    pub received_at_ms: i64,
    /// When the network handed it over (monotonic), for the inbound latency metrics.
    pub arrived: std::time::Instant,
    /// Set when this is one part of a concatenated message.
    pub part: Option<SmsPart>,
    pub ack: oneshot::Sender<InboundDisposition>,
}

#[derive(Debug)]
pub enum SmsEvent {
    Receipt(DeliveryReceipt),
    Inbound(InboundSms),
}

/// Whether a network link can carry traffic now, for `/health/ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Up,
    Down { reason: String },
}

pub trait SmsNetwork: Send + Sync + 'static {
    /// Short name for logs and health output (`sim`, `smpp`).
    fn name(&self) -> &'static str;
    /// Hands one message to the network and answers once the network has taken it.
    fn submit(&self, sms: OutboundSms) -> BoxFuture<'_, Result<SubmitAck, SubmitError>>;
    fn link_state(&self) -> LinkState;
}

/// Whether `ip` is a public unicast address (not loopback, private, link-local, CGNAT, …).
pub fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        std::net::IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| !is_public(std::net::IpAddr::V4(v4))))
        }
    }
}
