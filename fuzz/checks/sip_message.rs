//! Checks of the `sip_message` fuzz target, shared with the corpus replay in
//! `tests/fuzz_corpus.rs` (both include this file with `#[path]`).
//!
//! Arbitrary bytes as one UDP datagram and as a TCP stream: parsing never panics; a framed length
//! is in bounds; whatever parses writes back (`to_bytes`) to bytes that frame as one message and
//! parse to an equal message, with stable bytes; every header accessor, the digest challenges,
//! the phone number of the Request-URI, `Message::response` / `Message::cancel` and the SDP of
//! the body run without a panic, and the addresses they return print back as themselves.

use agentline::telco::sip::digest::DigestRequest;
use agentline::telco::sip::message::{self, Framing, Message, NameAddr, Uri, Via};
use agentline::telco::sip::sdp::SessionDescription;

pub fn check(data: &[u8]) {
    check_message(data, Framing::Datagram);
    // The input as a stream, consumed the way a connection does: frame, parse, advance.
    let mut rest = data;
    while let Ok(Some(n)) = message::frame_len(rest) {
        assert!((1..=rest.len()).contains(&n), "frame_len {n} out of bounds for {} octets", rest.len());
        check_message(&rest[..n], Framing::Stream);
        rest = &rest[n..];
    }
}

fn check_message(frame: &[u8], framing: Framing) {
    let Ok(m) = Message::parse(frame, framing) else { return };
    let wire = m.to_bytes();
    assert_eq!(message::frame_len(&wire), Ok(Some(wire.len())), "the written message frames as one message");
    for framing in [Framing::Datagram, Framing::Stream] {
        let again = Message::parse(&wire, framing)
            .unwrap_or_else(|e| panic!("a written message must parse ({framing:?}): {e}; {m:?}"));
        assert_eq!(again, m, "parse(to_bytes(message)) == message ({framing:?})");
    }
    assert_eq!(Message::parse(&wire, Framing::Stream).map(|m| m.to_bytes()).as_ref(), Ok(&wire), "stable bytes");
    accessors(&m);
}

fn accessors(m: &Message) {
    let _ = (m.start_line(), m.is_request(), m.method(), m.status_code(), m.reason(), m.body());
    let _ = (m.call_id(), m.cseq(), m.allow(), m.supported(), m.require(), m.max_forwards());
    let _ = (m.content_type(), m.has_sdp(), m.expires(), m.session_expires(), m.min_se());
    if let Ok(vias) = m.via() {
        vias.iter().for_each(via_round_trip);
    }
    if let Ok(via) = m.top_via() {
        via_round_trip(&via);
        let _ = (via.branch(), via.received(), via.has_rport(), via.rport());
    }
    for name_addr in [m.from(), m.to()].into_iter().flatten() {
        name_addr_round_trip(&name_addr);
    }
    for list in [m.contact(), m.route(), m.record_route()].into_iter().flatten() {
        list.iter().for_each(name_addr_round_trip);
    }
    for challenges in [m.www_authenticate(), m.proxy_authenticate()].into_iter().flatten() {
        for challenge in challenges {
            let _ = challenge.to_string();
            let request = DigestRequest { method: "INVITE", uri: "sip:+14155550123@sip.example.net", body: b"" };
            let _ = challenge.respond("alice", "secret", &request, "0a4f113b", 1);
        }
    }
    if let Some(uri) = m.request_uri() {
        uri_round_trip(uri);
        let _ = (uri.phone_number(), uri.transport());
    }
    if m.has_sdp()
        && let Ok(sdp) = SessionDescription::parse(m.body())
    {
        let _ = sdp.to_bytes();
    }
    if m.is_request() {
        for to_tag in [None, Some("as5f1e2d3c")] {
            if let Ok(response) = Message::response(m, 200, "OK", to_tag) {
                let wire = response.to_bytes();
                assert_eq!(Message::parse(&wire, Framing::Stream).as_ref(), Ok(&response), "a response parses back");
            }
        }
        if let Ok(cancel) = Message::cancel(m) {
            let wire = cancel.to_bytes();
            assert_eq!(Message::parse(&wire, Framing::Stream).as_ref(), Ok(&cancel), "a CANCEL parses back");
        }
    }
}

fn uri_round_trip(uri: &Uri) {
    let text = uri.to_string();
    assert_eq!(Uri::parse(&text).as_ref(), Ok(uri), "a URI prints back as itself: {text}");
}

fn name_addr_round_trip(name_addr: &NameAddr) {
    let text = name_addr.to_string();
    assert_eq!(NameAddr::parse(&text).as_ref(), Ok(name_addr), "a name-addr prints back as itself: {text}");
    let _ = name_addr.tag();
}

fn via_round_trip(via: &Via) {
    let text = via.to_string();
    assert_eq!(Via::parse(&text).as_ref(), Ok(via), "a Via prints back as itself: {text}");
}
