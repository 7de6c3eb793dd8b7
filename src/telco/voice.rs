//! The voice side of the phone network, behind [`VoiceNetwork`]. A call's network side is a
//! [`Leg`]: signalling events in ([`LegEvent`]: ringing, early media, answer, DTMF, hangup with
//! its SIP cause, codec change on re-INVITE), commands out ([`LegCommand`]), and G.711 media
//! frames both ways, 20 ms each, as RTP would carry them. The simulator ([`super::sim::voice`])
//! implements it today; the SIP bridge implements the same shape over SIP + RTP.
//!
//! Outgoing calls start with [`VoiceNetwork::dial`]; incoming calls arrive as [`IncomingCall`]s
//! on the channel the network was built with, and are rung (`Ring`), answered, or refused
//! (`Reject`) through their leg.

use tokio::sync::mpsc;

use super::LinkState;
use super::sip::endpoint_policy::EndpointError;
use crate::e164::E164;
use crate::future::BoxFuture;

/// Media frames queued per direction at most (1 s of audio); a full queue drops the newest frame.
pub const MEDIA_QUEUE: usize = 50;
/// Signalling events queued per leg at most.
pub const EVENT_QUEUE: usize = 32;
/// Octets of one 20 ms G.711 frame at 8 kHz.
pub const G711_FRAME: usize = 160;

/// The audio codec a leg carries (one type with SDP's and the media pipeline's).
pub use crate::media::Codec;

/// One 20 ms frame of encoded audio, with the RTP header fields it travels with: the stream's
/// SSRC (a new one mid-call is a new stream: the receiver's jitter buffer restarts), sequence
/// number and timestamp. Outbound, the call numbers frames with one [`crate::telco::rtp::stream::RtpStream`]
/// per leg and the RTP session sends them as numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaFrame {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub payload: [u8; G711_FRAME],
}

/// Why the network ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupCause {
    /// The far end hung up an established call (BYE).
    Normal,
    /// 486 / 600.
    Busy,
    /// 480 / 408, or no answer within the ring timeout.
    NoAnswer,
    /// 603 Decline and other refusals, or a failure of the network.
    Failed,
    /// The caller gave up before answer (CANCEL / 487).
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEvent {
    /// The far end rings (180).
    Ringing,
    /// Audio before answer (183 with SDP).
    EarlyMedia,
    Answered,
    /// A key pressed at the far end (RFC 4733 end of event, de-duplicated).
    Dtmf {
        digit: char,
        duration_ms: u32,
    },
    /// The media changed (re-INVITE); frames from now on are in this codec.
    CodecChanged(Codec),
    Hangup {
        cause: HangupCause,
        sip_code: Option<u16>,
    },
}

/// Why we refuse an incoming call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No agent takes calls on the number, or it is on another call (486).
    Busy,
    /// Not one of our numbers (404).
    NotFound,
    /// Rang out without an answer (480).
    NoAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegCommand {
    /// An incoming call is being offered to an agent (180).
    Ring,
    /// Take the incoming call (200 OK).
    Answer,
    Reject(Refusal),
    /// End the call (BYE, or CANCEL before answer).
    Hangup,
    SendDtmf(char),
}

/// A call's network side.
#[derive(Debug)]
pub struct Leg {
    pub codec: Codec,
    pub events: mpsc::Receiver<LegEvent>,
    pub commands: mpsc::Sender<LegCommand>,
    /// Frames from the far end.
    pub media_in: mpsc::Receiver<MediaFrame>,
    /// Frames to the far end.
    pub media_out: mpsc::Sender<MediaFrame>,
    /// Jitter buffer depth suited to this leg, in frames (1 on the simulator, more on RTP).
    pub jitter_frames: usize,
}

#[derive(Debug)]
pub struct IncomingCall {
    /// The caller as the network gave it.
    pub from: String,
    pub to: E164,
    pub leg: Leg,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    #[error("voice network unavailable")]
    Unavailable,
    /// Calling a SIP endpoint directly needs a SIP network (a trunk configured).
    #[error("this network cannot call SIP endpoints")]
    Unsupported,
    /// A SIP URI we will not or cannot call; the reason is for the caller.
    #[error("{0}")]
    BadTarget(EndpointError),
}

pub trait VoiceNetwork: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Starts a call; the leg's events then say whether it rings, is answered or ends.
    fn dial(&self, from: E164, to: E164) -> BoxFuture<'_, Result<Leg, DialError>>;
    /// Calls a SIP URI directly, not a phone number through the carrier: an agent's own SIP
    /// endpoint that a call is bridged to (`callback_sip_uri`, `inbound_sip_uri`).
    fn dial_uri(&self, from: E164, uri: String) -> BoxFuture<'_, Result<Leg, DialError>> {
        let _ = (from, uri);
        Box::pin(async { Err(DialError::Unsupported) })
    }
    fn link_state(&self) -> LinkState;
}
