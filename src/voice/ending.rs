//! How a call ends: its final state (the stored `state` column once it is over) and the reason
//! agents see (the `end_reason` column, the stream's last `hangup` event, the presence socket's
//! `ended` event and the stream socket's close frame).
//!
//! The close code of the stream socket is derived from the same reason the call records, so an
//! agent that only sees the close frame learns exactly what the history says. Codes live in the
//! private-use range 4000-4099 (RFC 6455 §7.4.2: 4000-4999 are for applications); each reason has
//! its own, and the close frame's reason text is the reason's wire name. They are documented in
//! `docs/voice-protocol.md` and never renumbered.
//!
//! ```text
//! {"event":"hangup","reason":"remote_hangup"}   then   close 4001 "remote_hangup"
//! ```

/// The final state of a call that is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalState {
    /// It was answered, then one side hung up.
    Completed,
    Busy,
    NoAnswer,
    /// Given up before it was answered.
    Cancelled,
    Failed,
}

impl FinalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

pub use crate::store::EndReason;

impl From<FinalState> for crate::store::CallState {
    fn from(state: FinalState) -> Self {
        match state {
            FinalState::Completed => Self::Completed,
            FinalState::Busy => Self::Busy,
            FinalState::NoAnswer => Self::NoAnswer,
            FinalState::Cancelled => Self::Cancelled,
            FinalState::Failed => Self::Failed,
        }
    }
}

/// The stream socket's close code for each end reason. (The reason itself is the stored
/// vocabulary, defined with the `calls` table in the store.)
impl EndReason {
    /// The stream socket's close code for a call that ended this way (4000-4099).
    pub fn close_code(self) -> u16 {
        match self {
            Self::LocalHangup => 4000,
            Self::RemoteHangup => 4001,
            Self::Busy => 4002,
            Self::NoAnswer => 4003,
            Self::Cancelled => 4004,
            Self::Failed => 4005,
        }
    }
}

/// Why the server closed a stream socket: the call ended, or the socket was refused while the
/// call goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamClose {
    Ended(EndReason),
    /// A second socket for a call that already has one (the first keeps the call).
    AlreadyStreaming,
}

impl StreamClose {
    pub fn code(self) -> u16 {
        match self {
            Self::Ended(reason) => reason.close_code(),
            Self::AlreadyStreaming => 4090,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Self::Ended(reason) => reason.as_str(),
            Self::AlreadyStreaming => "already_streaming",
        }
    }
}

/// How a call ended: the stored final state, the reason agents see, and the SIP status that
/// ended it, when one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub state: FinalState,
    pub reason: EndReason,
    pub sip_code: Option<u16>,
}

impl Ending {
    pub const fn new(state: FinalState, reason: EndReason) -> Self {
        Self { state, reason, sip_code: None }
    }

    pub const fn with_sip_code(self, sip_code: Option<u16>) -> Self {
        Self { sip_code, ..self }
    }

    /// The network's leg failed or vanished.
    pub const FAILED: Self = Self::new(FinalState::Failed, EndReason::Failed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_close_code_in_the_application_range() {
        let mut codes: Vec<u16> = EndReason::ALL.iter().map(|r| r.close_code()).collect();
        codes.push(StreamClose::AlreadyStreaming.code());
        assert!(codes.iter().all(|c| (4000..=4099).contains(c)), "{codes:?}");
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len(), "codes collide: {codes:?}");
    }

    #[test]
    fn the_close_reason_is_the_recorded_reason() {
        for reason in EndReason::ALL {
            let close = StreamClose::Ended(reason);
            assert_eq!(close.reason(), reason.as_str());
            assert_eq!(close.code(), reason.close_code());
        }
    }
}
