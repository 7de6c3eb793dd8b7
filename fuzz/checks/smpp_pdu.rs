//! Checks of the `smpp_pdu` fuzz target, shared with the corpus replay in
//! `tests/fuzz_corpus.rs` (both include this file with `#[path]`).
//!
//! Arbitrary bytes as an SMPP stream: framing never panics and stays in bounds, every framed PDU
//! decodes or is refused without a panic, whatever decodes re-encodes and decodes back to itself,
//! and a decoded `deliver_sm` is interpreted (receipt or MO) without a panic.

use agentline::telco::smpp::deliver;
use agentline::telco::smpp::pdu::{self, Body, HEADER_LEN, Header, MAX_PDU_LEN};

pub fn check(data: &[u8]) {
    let _ = Header::peek(data);
    // The input itself as one PDU, whatever its command_length says.
    check_pdu(data);
    // The input as a stream, consumed the way a session does: frame, decode, advance.
    let mut rest = data;
    while let Ok(Some(n)) = pdu::frame_len(rest) {
        assert!((HEADER_LEN..=rest.len().min(MAX_PDU_LEN)).contains(&n), "frame_len {n} out of bounds");
        check_pdu(&rest[..n]);
        rest = &rest[n..];
    }
}

fn check_pdu(frame: &[u8]) {
    let Ok(p) = pdu::decode(frame) else { return };
    let wire = pdu::encode(&p).unwrap_or_else(|e| panic!("a decoded PDU must re-encode: {e}; {p:?}"));
    assert_eq!(pdu::frame_len(&wire), Ok(Some(wire.len())), "re-encoded PDU frames as one whole PDU");
    let again = pdu::decode(&wire).unwrap_or_else(|e| panic!("a re-encoded PDU must decode: {e}; {p:?}"));
    assert_eq!(again, p, "decode(encode(pdu)) == pdu");
    assert_eq!(pdu::encode(&again).as_ref(), Ok(&wire), "encoding is stable");
    // DeliverSm and SubmitSm share a layout; interpreting both reaches more of `deliver`.
    if let Body::DeliverSm(sm) | Body::SubmitSm(sm) = &p.body {
        let _ = deliver::interpret(sm);
    }
}
