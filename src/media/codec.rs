//! The network audio codecs a call can carry, named once for everyone who needs them: SDP
//! negotiation (`telco::sip::sdp`: encoding name, static payload type, RTP clock), the network
//! leg (`telco::voice::Leg`) and the call's pipeline (`voice::call`: which coder, whether to
//! resample). RFC 3551 §4.5 and table 4.
//!
//! What this module must not do: parse or build SDP, or hold coder state (that is [`super::g711`]'s
//! and [`super::g722`]'s).

/// The RTP timestamp rate of every codec here: 8000, G.722 included (RFC 3551 §4.5.2 keeps RFC
/// 1890's error for compatibility).
pub const RTP_CLOCK_RATE_HZ: u32 = 8000;

/// An audio codec the network side speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, 8 kHz, PT 0.
    Pcmu,
    /// G.711 A-law, 8 kHz, PT 8.
    Pcma,
    /// G.722, PT 9: 16 kHz audio in the same 160 octets per 20 ms, on an 8000 Hz RTP clock.
    G722,
}

impl Codec {
    /// The static RTP payload type (RFC 3551 table 4).
    pub const fn static_payload_type(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
            Self::G722 => super::g722::PAYLOAD_TYPE,
        }
    }

    /// The encoding name of `a=rtpmap` (`PCMU/8000`), also what the agent is told in `connected`.
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
            Self::G722 => "G722",
        }
    }

    /// Same as [`Codec::encoding_name`].
    pub const fn name(self) -> &'static str {
        self.encoding_name()
    }

    /// The RTP timestamp rate: 8000 for all three, G.722 included.
    pub const fn clock_rate_hz(self) -> u32 {
        RTP_CLOCK_RATE_HZ
    }

    /// The audio sample rate (not the RTP clock): 16000 for G.722, 8000 for G.711.
    pub const fn sample_rate_hz(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma => 8000,
            Self::G722 => super::g722::SAMPLE_RATE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_names_and_payload_types() {
        let all = [Codec::Pcmu, Codec::Pcma, Codec::G722];
        assert_eq!(all.map(Codec::static_payload_type), [0, 8, 9]);
        assert_eq!(all.map(Codec::name), ["PCMU", "PCMA", "G722"]);
        assert_eq!(all.map(Codec::sample_rate_hz), [8000, 8000, 16_000]);
        assert_eq!(all.map(Codec::clock_rate_hz), [8000; 3]);
    }
}
