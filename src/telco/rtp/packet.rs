//! RTP packets (RFC 3550 §5.1, §5.3.1) and the telephone-event payload (RFC 4733 §2.3), pure:
//! `&[u8]` in, a borrowed [`Rtp`] view out, and back into a caller's buffer.
//!
//! Parsing checks every length against the datagram it was given (CSRC count, header extension
//! length, padding count) and returns an [`RtpError`] instead of panicking or reading past the
//! end; nothing is allocated. Building writes into `&mut [u8]` (or appends to a `Vec`) and fails
//! with [`RtpError::BufferTooSmall`] rather than truncating.
//!
//! What this module must not do: own a socket, read a clock, pick sequence numbers or timestamps,
//! decode audio, or interpret RTCP (RFC 5761 multiplexing is the session's call, by payload type).
//!
//! A PCMU packet, marker set, seq 1, timestamp 160, SSRC 0xDEADBEEF, payload `FF FF`:
//! `80 80 00 01  00 00 00 A0  DE AD BE EF  FF FF`.

/// Octets in the fixed header (RFC 3550 §5.1), before any CSRC.
pub const HEADER_LEN: usize = 12;
/// The only RTP version there is.
pub const VERSION: u8 = 2;
/// The CSRC count is four bits.
pub const MAX_CSRC_COUNT: usize = 15;
/// Octets in a telephone-event payload (RFC 4733 §2.3).
pub const TELEPHONE_EVENT_LEN: usize = 4;

/// Why a packet could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("{len} octets cannot hold the {HEADER_LEN}-octet RTP header")]
    TooShort { len: usize },
    #[error("RTP version {version}, only version 2 exists")]
    BadVersion { version: u8 },
    #[error("{count} CSRCs need {needed} octets, the packet has {len}")]
    CsrcTruncated { count: usize, needed: usize, len: usize },
    #[error("the header extension needs {needed} octets, the packet has {len}")]
    ExtensionTruncated { needed: usize, len: usize },
    #[error("padding count {padding} does not fit in the {available} octets after the header")]
    BadPadding { padding: usize, available: usize },
    #[error("payload type {payload_type} does not fit in 7 bits")]
    PayloadTypeOutOfRange { payload_type: u8 },
    #[error("{len} CSRC octets is not a list of at most {MAX_CSRC_COUNT} 4-octet ids")]
    BadCsrcList { len: usize },
    #[error("a header extension of {len} octets is not a whole number of 32-bit words below 256 KiB")]
    BadExtensionLength { len: usize },
    #[error("the packet needs {needed} octets, the buffer has {available}")]
    BufferTooSmall { needed: usize, available: usize },
    #[error("a telephone-event payload is {TELEPHONE_EVENT_LEN} octets, got {len}")]
    TelephoneEventTooShort { len: usize },
    #[error("telephone-event volume {volume} does not fit in 6 bits")]
    VolumeOutOfRange { volume: u8 },
}

/// A header extension (RFC 3550 §5.3.1): a profile-defined id and whole 32-bit words of data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// "defined by profile": 0xBEDE for RFC 8285 one-byte headers, 0x100x for two-byte ones.
    pub profile: u16,
    /// The extension data, without its 4-octet header; a multiple of 4 octets.
    pub data: &'a [u8],
}

/// One RTP packet, borrowed from the datagram it was parsed from or to be written.
///
/// Round trip: `Rtp::parse(b)?.write_to(out)` reproduces `b`, except that padding octets other
/// than the last are written as zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtp<'a> {
    /// M: for audio, the first packet after a silence (RFC 3551 §4.1).
    pub marker: bool,
    /// PT, 7 bits: 0 PCMU, 8 PCMA, 9 G722, dynamic 96..=127 (telephone-event is usually 101).
    pub payload_type: u8,
    pub sequence_number: u16,
    /// In units of the payload's clock: 8000 Hz for G.711 and telephone-event.
    pub timestamp: u32,
    pub ssrc: u32,
    /// The CSRC list as on the wire, 4 octets per id, big-endian; see [`Rtp::csrcs`].
    pub csrc: &'a [u8],
    pub extension: Option<Extension<'a>>,
    /// Octets of padding at the end of the packet, the count octet included; 0 when P is clear.
    pub padding_len: u8,
    pub payload: &'a [u8],
}

impl<'a> Rtp<'a> {
    /// A packet with no CSRC, extension or padding: what an endpoint sends.
    pub fn new(payload_type: u8, sequence_number: u16, timestamp: u32, ssrc: u32, payload: &'a [u8]) -> Self {
        Self {
            marker: false,
            payload_type,
            sequence_number,
            timestamp,
            ssrc,
            csrc: &[],
            extension: None,
            padding_len: 0,
            payload,
        }
    }

    /// Parses one datagram. Never reads past `packet`, never panics, never allocates.
    pub fn parse(packet: &'a [u8]) -> Result<Self, RtpError> {
        let len = packet.len();
        let Some((header, rest)) = packet.split_first_chunk::<HEADER_LEN>() else {
            return Err(RtpError::TooShort { len });
        };
        let version = header[0] >> 6;
        if version != VERSION {
            return Err(RtpError::BadVersion { version });
        }
        let has_padding = header[0] & 0x20 != 0;
        let has_extension = header[0] & 0x10 != 0;
        let csrc_count = usize::from(header[0] & 0x0F);
        let marker = header[1] & 0x80 != 0;
        let payload_type = header[1] & 0x7F;
        let sequence_number = u16::from_be_bytes([header[2], header[3]]);
        let timestamp = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let ssrc = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);

        let csrc_len = csrc_count * 4;
        let Some((csrc, mut rest)) = rest.split_at_checked(csrc_len) else {
            return Err(RtpError::CsrcTruncated { count: csrc_count, needed: HEADER_LEN + csrc_len, len });
        };

        let extension = if has_extension {
            let Some((ext_header, after)) = rest.split_first_chunk::<4>() else {
                return Err(RtpError::ExtensionTruncated { needed: len - rest.len() + 4, len });
            };
            let profile = u16::from_be_bytes([ext_header[0], ext_header[1]]);
            // At most 65535 words: 256 KiB, checked against the datagram before it is used.
            let data_len = usize::from(u16::from_be_bytes([ext_header[2], ext_header[3]])) * 4;
            let Some((data, after)) = after.split_at_checked(data_len) else {
                return Err(RtpError::ExtensionTruncated { needed: len - after.len() + data_len, len });
            };
            rest = after;
            Some(Extension { profile, data })
        } else {
            None
        };

        let (payload, padding_len) = if has_padding {
            // The last octet counts the padding, itself included (RFC 3550 §5.1 "P").
            let padding = rest.last().copied().unwrap_or(0);
            let available = rest.len();
            if padding == 0 || usize::from(padding) > available {
                return Err(RtpError::BadPadding { padding: usize::from(padding), available });
            }
            (&rest[..available - usize::from(padding)], padding)
        } else {
            (rest, 0)
        };

        Ok(Self { marker, payload_type, sequence_number, timestamp, ssrc, csrc, extension, padding_len, payload })
    }

    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The octets [`write_to`](Self::write_to) will produce.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self.csrc.len()
            + self.extension.map_or(0, |e| 4 + e.data.len())
            + self.payload.len()
            + usize::from(self.padding_len)
    }

    /// Writes the packet at the start of `out`; returns the octets written.
    pub fn write_to(&self, out: &mut [u8]) -> Result<usize, RtpError> {
        self.validate()?;
        let needed = self.encoded_len();
        let Some(out) = out.get_mut(..needed) else {
            return Err(RtpError::BufferTooSmall { needed, available: out.len() });
        };
        let csrc_count = (self.csrc.len() / 4) as u8; // validated: at most 15
        out[0] =
            VERSION << 6 | u8::from(self.padding_len > 0) << 5 | u8::from(self.extension.is_some()) << 4 | csrc_count;
        out[1] = u8::from(self.marker) << 7 | self.payload_type;
        out[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut at = HEADER_LEN;
        out[at..at + self.csrc.len()].copy_from_slice(self.csrc);
        at += self.csrc.len();
        if let Some(ext) = self.extension {
            let words = (ext.data.len() / 4) as u16; // validated: at most 65535 words
            out[at..at + 2].copy_from_slice(&ext.profile.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&words.to_be_bytes());
            at += 4;
            out[at..at + ext.data.len()].copy_from_slice(ext.data);
            at += ext.data.len();
        }
        out[at..at + self.payload.len()].copy_from_slice(self.payload);
        at += self.payload.len();
        if self.padding_len > 0 {
            let padding = usize::from(self.padding_len);
            out[at..at + padding - 1].fill(0);
            out[at + padding - 1] = self.padding_len;
            at += padding;
        }
        Ok(at)
    }

    /// Appends the packet to `out` (which keeps its capacity from one packet to the next).
    pub fn append_to(&self, out: &mut Vec<u8>) -> Result<usize, RtpError> {
        self.validate()?;
        let start = out.len();
        out.resize(start + self.encoded_len(), 0);
        self.write_to(&mut out[start..])
    }

    fn validate(&self) -> Result<(), RtpError> {
        if self.payload_type > 0x7F {
            return Err(RtpError::PayloadTypeOutOfRange { payload_type: self.payload_type });
        }
        if !self.csrc.len().is_multiple_of(4) || self.csrc.len() > MAX_CSRC_COUNT * 4 {
            return Err(RtpError::BadCsrcList { len: self.csrc.len() });
        }
        if let Some(ext) = self.extension
            && (!ext.data.len().is_multiple_of(4) || ext.data.len() > usize::from(u16::MAX) * 4)
        {
            return Err(RtpError::BadExtensionLength { len: ext.data.len() });
        }
        Ok(())
    }
}

/// One RFC 4733 named telephone event (DTMF digit, flash, …) as carried in one packet.
///
/// `05 8A 03 20`: event 5, end bit set, volume 10 (-10 dBm0), duration 800 timestamp units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// 0-9 digits, 10 `*`, 11 `#`, 12-15 A-D, 16 flash (RFC 4733 §3.2).
    pub event: u8,
    /// E: this is (one of the three copies of) the last packet of the event.
    pub end: bool,
    /// Power level in -dBm0, 0..=63.
    pub volume: u8,
    /// Since the event began, in timestamp units (8000 Hz for `telephone-event/8000`).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first four octets; anything after them is ignored (RFC 4733 §2.3 defines none,
    /// and being lenient costs nothing). The reserved R bit is ignored as §2.3.4 asks.
    pub fn parse(payload: &[u8]) -> Result<Self, RtpError> {
        let Some(bytes) = payload.first_chunk::<TELEPHONE_EVENT_LEN>() else {
            return Err(RtpError::TelephoneEventTooShort { len: payload.len() });
        };
        Ok(Self {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// The four payload octets, R bit clear.
    pub fn to_bytes(&self) -> Result<[u8; TELEPHONE_EVENT_LEN], RtpError> {
        if self.volume > 0x3F {
            return Err(RtpError::VolumeOutOfRange { volume: self.volume });
        }
        let [d0, d1] = self.duration.to_be_bytes();
        Ok([self.event, u8::from(self.end) << 7 | self.volume, d0, d1])
    }

    /// The DTMF character of a digit event (0-15), `None` for other events.
    pub const fn digit(&self) -> Option<char> {
        match self.event {
            0..=9 => Some((b'0' + self.event) as char),
            10 => Some('*'),
            11 => Some('#'),
            12..=15 => Some((b'A' + self.event - 12) as char),
            _ => None,
        }
    }

    /// The event code of a DTMF character (`0-9 * # A-D`, lower case accepted).
    pub const fn event_for_digit(digit: char) -> Option<u8> {
        match digit {
            '0'..='9' => Some(digit as u8 - b'0'),
            '*' => Some(10),
            '#' => Some(11),
            'A'..='D' => Some(digit as u8 - b'A' + 12),
            'a'..='d' => Some(digit as u8 - b'a' + 12),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in the module doc.
    const PCMU_GOLDEN: [u8; 14] = [0x80, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00, 0xA0, 0xDE, 0xAD, 0xBE, 0xEF, 0xFF, 0xFF];

    /// P, X and CC=2 at once, PT 101, seq 0xFFFF: every optional part present.
    const FULL_GOLDEN: [u8; 36] = [
        0xB2, 0x65, 0xFF, 0xFF, // V=2 P=1 X=1 CC=2 | M=0 PT=101 | seq 65535
        0x12, 0x34, 0x56, 0x78, // timestamp
        0x01, 0x02, 0x03, 0x04, // SSRC
        0x00, 0x00, 0x00, 0x0A, // CSRC 10
        0x00, 0x00, 0x00, 0x0B, // CSRC 11
        0xBE, 0xDE, 0x00, 0x01, // extension profile 0xBEDE, 1 word
        0x10, 0xAA, 0x00, 0x00, // extension data
        0x05, 0x8A, 0x03, 0x20, // payload: telephone-event 5, end, volume 10, duration 800
        0x00, 0x00, 0x00, 0x04, // 4 octets of padding
    ];

    #[test]
    fn parses_a_plain_pcmu_packet() {
        let rtp = Rtp::parse(&PCMU_GOLDEN).expect("valid");
        assert!(rtp.marker);
        assert_eq!(rtp.payload_type, 0);
        assert_eq!(rtp.sequence_number, 1);
        assert_eq!(rtp.timestamp, 160);
        assert_eq!(rtp.ssrc, 0xDEAD_BEEF);
        assert_eq!(rtp.csrcs().count(), 0);
        assert_eq!(rtp.extension, None);
        assert_eq!(rtp.padding_len, 0);
        assert_eq!(rtp.payload, &[0xFF, 0xFF]);
    }

    #[test]
    fn builds_the_same_bytes() {
        let rtp = Rtp { marker: true, ..Rtp::new(0, 1, 160, 0xDEAD_BEEF, &[0xFF, 0xFF]) };
        let mut out = [0u8; 64];
        let n = rtp.write_to(&mut out).expect("fits");
        assert_eq!(&out[..n], &PCMU_GOLDEN);
        let mut vec = vec![0xAA];
        assert_eq!(rtp.append_to(&mut vec), Ok(14));
        assert_eq!(&vec[1..], &PCMU_GOLDEN);
    }

    #[test]
    fn parses_and_rebuilds_every_optional_part() {
        let rtp = Rtp::parse(&FULL_GOLDEN).expect("valid");
        assert!(!rtp.marker);
        assert_eq!(rtp.payload_type, 101);
        assert_eq!(rtp.sequence_number, 0xFFFF);
        assert_eq!(rtp.timestamp, 0x1234_5678);
        assert_eq!(rtp.ssrc, 0x0102_0304);
        assert_eq!(rtp.csrcs().collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(rtp.extension, Some(Extension { profile: 0xBEDE, data: &[0x10, 0xAA, 0x00, 0x00] }));
        assert_eq!(rtp.padding_len, 4);
        assert_eq!(rtp.payload, &[0x05, 0x8A, 0x03, 0x20]);
        assert_eq!(rtp.encoded_len(), FULL_GOLDEN.len());
        let mut out = [0u8; 36];
        assert_eq!(rtp.write_to(&mut out), Ok(36));
        assert_eq!(out, FULL_GOLDEN);
        let event = TelephoneEvent::parse(rtp.payload).expect("4 octets");
        assert_eq!(event, TelephoneEvent { event: 5, end: true, volume: 10, duration: 800 });
        assert_eq!(event.digit(), Some('5'));
    }

    #[test]
    fn one_negative_test_per_parse_error() {
        assert_eq!(Rtp::parse(&PCMU_GOLDEN[..11]), Err(RtpError::TooShort { len: 11 }));
        let mut v1 = PCMU_GOLDEN;
        v1[0] = 0x40;
        assert_eq!(Rtp::parse(&v1), Err(RtpError::BadVersion { version: 1 }));
        // CC=2 but only one CSRC present.
        assert_eq!(
            Rtp::parse(&[0x82, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(RtpError::CsrcTruncated { count: 2, needed: 20, len: 16 })
        );
        // X set, extension header cut short.
        assert_eq!(
            Rtp::parse(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE]),
            Err(RtpError::ExtensionTruncated { needed: 16, len: 14 })
        );
        // X set, extension claims 0xFFFF words.
        assert_eq!(
            Rtp::parse(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0xFF, 0xFF, 0, 0]),
            Err(RtpError::ExtensionTruncated { needed: 16 + 0xFFFF * 4, len: 18 })
        );
        // P set with a count larger than what follows the header, and with a zero count.
        assert_eq!(
            Rtp::parse(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0x03]),
            Err(RtpError::BadPadding { padding: 3, available: 2 })
        );
        assert_eq!(
            Rtp::parse(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0x00]),
            Err(RtpError::BadPadding { padding: 0, available: 2 })
        );
        assert_eq!(
            Rtp::parse(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(RtpError::BadPadding { padding: 0, available: 0 })
        );
        // Padding may take the whole payload.
        let only_padding = Rtp::parse(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]).expect("valid");
        assert_eq!((only_padding.payload, only_padding.padding_len), (&[][..], 2));
    }

    #[test]
    fn one_negative_test_per_build_error() {
        let mut out = [0u8; 64];
        let bad_pt = Rtp::new(128, 0, 0, 0, &[]);
        assert_eq!(bad_pt.write_to(&mut out), Err(RtpError::PayloadTypeOutOfRange { payload_type: 128 }));
        let bad_csrc = Rtp { csrc: &[0, 0, 0], ..Rtp::new(0, 0, 0, 0, &[]) };
        assert_eq!(bad_csrc.write_to(&mut out), Err(RtpError::BadCsrcList { len: 3 }));
        let sixteen = [0u8; 64];
        let too_many = Rtp { csrc: &sixteen, ..Rtp::new(0, 0, 0, 0, &[]) };
        assert_eq!(too_many.write_to(&mut [0u8; 128]), Err(RtpError::BadCsrcList { len: 64 }));
        let bad_ext = Rtp { extension: Some(Extension { profile: 0, data: &[1, 2] }), ..Rtp::new(0, 0, 0, 0, &[]) };
        assert_eq!(bad_ext.write_to(&mut out), Err(RtpError::BadExtensionLength { len: 2 }));
        let big = Rtp::new(0, 0, 0, 0, &[0u8; 160]);
        assert_eq!(big.write_to(&mut out), Err(RtpError::BufferTooSmall { needed: 172, available: 64 }));
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), Err(RtpError::TelephoneEventTooShort { len: 3 }));
        let loud = TelephoneEvent { event: 1, end: false, volume: 64, duration: 0 };
        assert_eq!(loud.to_bytes(), Err(RtpError::VolumeOutOfRange { volume: 64 }));
    }

    #[test]
    fn telephone_events() {
        let start = TelephoneEvent { event: 11, end: false, volume: 10, duration: 0 };
        assert_eq!(start.to_bytes(), Ok([0x0B, 0x0A, 0x00, 0x00]));
        let end = TelephoneEvent { event: 11, end: true, volume: 10, duration: 1600 };
        assert_eq!(end.to_bytes(), Ok([0x0B, 0x8A, 0x06, 0x40]));
        // The reserved bit is ignored on receipt; trailing octets too.
        assert_eq!(TelephoneEvent::parse(&[0x0B, 0xCA, 0x06, 0x40, 0xEE]), Ok(end));
        let digits: String = (0..=16).filter_map(|e| TelephoneEvent { event: e, ..start }.digit()).collect();
        assert_eq!(digits, "0123456789*#ABCD");
        for c in digits.chars() {
            let event = TelephoneEvent::event_for_digit(c).expect("a DTMF character");
            assert_eq!(TelephoneEvent { event, ..start }.digit(), Some(c));
        }
        assert_eq!(TelephoneEvent::event_for_digit('d'), Some(15));
        assert_eq!(TelephoneEvent::event_for_digit('E'), None);
    }

    use crate::test_rng::XorShift;

    #[test]
    fn arbitrary_bytes_never_panic_and_what_parses_rebuilds() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut buf = [0u8; 256];
        let mut out = [0u8; 256];
        let mut parsed = 0;
        for _ in 0..20_000 {
            let len = (rng.next() % 200) as usize;
            for b in &mut buf[..len] {
                *b = rng.next() as u8;
            }
            // Most of the time make it look like version 2, and often clear P and X, so that the
            // deeper checks and the rebuild get exercised as well as the early rejections.
            let shape = rng.next() % 4;
            if len > 0 && shape != 0 {
                buf[0] = (buf[0] & 0x3F) | 0x80;
            }
            if len > 0 && shape == 3 {
                buf[0] &= 0xC0 | (0x0F & rng.next() as u8);
            }
            let input = &buf[..len];
            let _ = TelephoneEvent::parse(input);
            let Ok(rtp) = Rtp::parse(input) else { continue };
            parsed += 1;
            assert_eq!(rtp.encoded_len(), len);
            let n = rtp.write_to(&mut out).expect("a parsed packet rebuilds");
            assert_eq!(n, len);
            // Identical up to the padding, whose octets other than the count are rewritten as zeros.
            let unpadded = len - usize::from(rtp.padding_len);
            assert_eq!(&out[..unpadded], &input[..unpadded]);
            assert_eq!(Rtp::parse(&out[..n]), Ok(rtp));
        }
        assert!(parsed > 6_000, "only {parsed} inputs parsed; the generator is too hostile");
    }
}
