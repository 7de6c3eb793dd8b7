//! Checks of the `rtp` fuzz target, shared with the corpus replay in `tests/fuzz_corpus.rs`
//! (both include this file with `#[path]`).
//!
//! Arbitrary bytes as one RTP datagram: parsing never panics and stays within the datagram;
//! whatever parses writes back (`write_to`, `append_to`) to the same octets (the padding
//! octets before the count aside, which are written as zeros) and parses to an equal packet.
//! The datagram and its payload as a telephone event: parsing never panics and writes back the
//! same four octets with R clear. The same bytes as G.722 codes decode without a panic into
//! buffers of every size class. The bytes as a sequence of 8-octet records drive a
//! `DtmfReceiver` (receive, poll, flush, reset at arbitrary times): it never panics, reports only
//! DTMF characters with a duration a 16-bit field allows, and never more digits than packets
//! carrying a digit event.

use agentline::media::g722::G722Decoder;
use agentline::telco::rtp::dtmf::{CLOCK_RATE, Detected, DtmfReceiver};
use agentline::telco::rtp::packet::{Rtp, TELEPHONE_EVENT_LEN, TelephoneEvent};

pub fn check(data: &[u8]) {
    check_packet(data);
    check_telephone_event(data);
    check_g722(data);
    check_dtmf(data);
}

fn check_packet(data: &[u8]) {
    let Ok(rtp) = Rtp::parse(data) else { return };
    assert!(rtp.payload_type <= 0x7F && rtp.csrc.len() <= 15 * 4 && rtp.csrc.len().is_multiple_of(4));
    assert_eq!(rtp.encoded_len(), data.len(), "a parsed packet accounts for every octet");
    assert_eq!(rtp.csrcs().count() * 4, rtp.csrc.len());
    let mut out = vec![0xA5; data.len() + 3];
    let written = rtp.write_to(&mut out).unwrap_or_else(|e| panic!("a parsed packet must write: {e}; {rtp:?}"));
    assert_eq!(written, data.len());
    let padding = usize::from(rtp.padding_len);
    let body = data.len() - padding;
    assert_eq!(out[..body], data[..body], "written octets equal the datagram's");
    if padding > 0 {
        assert!(out[body..written - 1].iter().all(|&b| b == 0), "padding is zeros");
        assert_eq!(out[written - 1], rtp.padding_len, "the last octet counts the padding");
    }
    assert!(out[written..].iter().all(|&b| b == 0xA5), "nothing written past the packet");
    assert_eq!(Rtp::parse(&out[..written]).as_ref(), Ok(&rtp), "parse(write(rtp)) == rtp");
    if let Some(short) = written.checked_sub(1) {
        assert!(rtp.write_to(&mut out[..short]).is_err(), "a short buffer is refused");
    }
    let mut appended = vec![7];
    assert_eq!(rtp.append_to(&mut appended), Ok(written));
    assert_eq!(appended[1..], out[..written], "append_to writes what write_to writes");
    if rtp.payload.len() >= TELEPHONE_EVENT_LEN {
        check_telephone_event(rtp.payload);
    }
}

fn check_telephone_event(payload: &[u8]) {
    let Ok(event) = TelephoneEvent::parse(payload) else {
        assert!(payload.len() < TELEPHONE_EVENT_LEN, "four octets are always an event");
        return;
    };
    let bytes = event.to_bytes().unwrap_or_else(|e| panic!("a parsed event must write: {e}; {event:?}"));
    assert_eq!(bytes, [payload[0], payload[1] & 0xBF, payload[2], payload[3]], "written back with R clear");
    if let Some(digit) = event.digit() {
        assert_eq!(TelephoneEvent::event_for_digit(digit), Some(event.event));
    }
}

fn check_g722(data: &[u8]) {
    let mut decoder = G722Decoder::new();
    let mut out = vec![0i16; data.len() * 2];
    assert_eq!(decoder.decode(data, &mut out), data.len() * 2, "two samples per octet");
    // A short output buffer (odd length included) bounds the octets decoded.
    let mut short = vec![0i16; data.len()];
    assert_eq!(decoder.decode(data, &mut short), data.len() / 2 * 2);
    assert_eq!(decoder.decode(data, &mut []), 0);
    decoder.reset();
}

/// Records of 8 octets: `op`, `advance` (milliseconds), 2 octets of RTP timestamp, 4 octets of
/// telephone-event payload. `op & 7`: 0-3 receive, 4-5 poll, 6 flush, 7 reset; `op & 0x08`
/// puts the timestamp in the top half of the 32-bit range (wrap-around).
fn check_dtmf(data: &[u8]) {
    let mut receiver = DtmfReceiver::with_timeout_ms(u64::from(data.first().copied().unwrap_or(0)) * 4);
    let mut default = DtmfReceiver::default();
    let (mut now_ms, mut digit_packets, mut reported) = (0u64, 0usize, 0usize);
    for record in data.chunks_exact(8) {
        now_ms += u64::from(record[1]);
        let mut timestamp = u32::from(u16::from_be_bytes([record[2], record[3]]));
        if record[0] & 0x08 != 0 {
            timestamp = timestamp.wrapping_sub(0x8000);
        }
        let found: [Option<Detected>; 2] = match record[0] & 7 {
            0..=3 => {
                let event = TelephoneEvent::parse(&record[4..]).expect("four octets");
                digit_packets += usize::from(event.digit().is_some());
                [receiver.receive(now_ms, timestamp, event), default.receive(now_ms, timestamp, event)]
            }
            4 | 5 => [receiver.poll(now_ms), default.poll(now_ms)],
            6 => [receiver.flush(), default.flush()],
            _ => {
                receiver.reset();
                default.reset();
                [None, None]
            }
        };
        for detected in found.into_iter().flatten() {
            assert!("0123456789*#ABCD".contains(detected.digit), "{detected:?}");
            assert!(detected.duration_ms <= u32::from(u16::MAX) * 1000 / CLOCK_RATE, "{detected:?}");
        }
        reported += usize::from(found[0].is_some());
        assert!(reported <= digit_packets, "{reported} digits reported from {digit_packets} digit packets");
    }
    if receiver.flush().is_some() {
        reported += 1;
    }
    assert!(reported <= digit_packets, "{reported} digits reported from {digit_packets} digit packets");
}
