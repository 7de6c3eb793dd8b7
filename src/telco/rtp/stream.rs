//! One outgoing RTP stream's identity and numbering (RFC 3550 §5.1): its SSRC, chosen once, the
//! sequence number that goes up by one per packet, and the timestamp that goes up by the payload's
//! duration in clock units. One [`RtpStream`] per leg and direction, owned by whoever produces the
//! frames (the call's media pipeline), so a stream is numbered in exactly one place; the RTP
//! session sends frames with the numbers they carry.
//!
//! Pure: no clock, no socket; the random start values (RFC 3550 §5.1: "SHOULD be random") are
//! drawn by [`RtpStream::random`] or passed to [`RtpStream::new`].

/// The header fields of one packet of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub ssrc: u32,
    pub sequence_number: u16,
    pub timestamp: u32,
}

/// An outgoing stream: SSRC, next sequence number, next timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpStream {
    ssrc: u32,
    sequence_number: u16,
    timestamp: u32,
}

impl RtpStream {
    /// A stream whose first packet carries `sequence_number` and `timestamp`.
    pub const fn new(ssrc: u32, sequence_number: u16, timestamp: u32) -> Self {
        Self { ssrc, sequence_number, timestamp }
    }

    /// A stream with a random SSRC, first sequence number and first timestamp.
    pub fn random() -> Self {
        Self::new(rand::random(), rand::random(), rand::random())
    }

    pub const fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The header of the next packet, whose payload lasts `duration_units` clock units (160 for
    /// 20 ms at 8000 Hz, G.722 included); the stream moves past it, both counters wrapping.
    pub fn next_packet(&mut self, duration_units: u32) -> Stamp {
        let stamp = Stamp { ssrc: self.ssrc, sequence_number: self.sequence_number, timestamp: self.timestamp };
        self.sequence_number = self.sequence_number.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(duration_units);
        stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_packets_once_and_wraps() {
        let mut stream = RtpStream::new(0xDEAD_BEEF, u16::MAX, u32::MAX - 100);
        let first = stream.next_packet(160);
        let second = stream.next_packet(160);
        assert_eq!(first, Stamp { ssrc: 0xDEAD_BEEF, sequence_number: u16::MAX, timestamp: u32::MAX - 100 });
        assert_eq!(second, Stamp { ssrc: 0xDEAD_BEEF, sequence_number: 0, timestamp: 59 });
        assert_eq!(stream.ssrc(), 0xDEAD_BEEF);
    }
}
