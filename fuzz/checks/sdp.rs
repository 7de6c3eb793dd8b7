//! Checks of the `sdp` fuzz target, shared with the corpus replay in `tests/fuzz_corpus.rs`
//! (both include this file with `#[path]`).
//!
//! Arbitrary bytes as a session description: parsing never panics; whatever parses writes back
//! (`to_bytes`) to bytes that parse to an equal description, with stable bytes; the accessors run;
//! `answer` and `accept_answer` with fixed local media never panic; an answer has as many m-lines
//! as the offer, round-trips, and reads back through `accept_answer` with the codec it chose.

use agentline::telco::sip::sdp::{
    self, AddrType, Codec, Connection, DEFAULT_TELEPHONE_EVENT_PT, Direction, LocalMedia, Origin, SessionDescription,
};

pub fn check(data: &[u8]) {
    let Ok(offer) = SessionDescription::parse(data) else { return };
    let wire = round_trip(&offer);
    let _ = (offer.is_hold(), wire.len());
    for media in &offer.media {
        let _ = (offer.direction_of(media), offer.connection_of(media).and_then(Connection::ip));
        let _ = (media.ptime_ms(), media.direction(), media.rtcp(), media.telephone_event());
        for pt in media.payload_types() {
            let _ = (media.rtpmap(pt), media.fmtp(pt));
        }
    }
    for local in locals() {
        if let Ok((answer, negotiated)) = sdp::answer(&offer, &local) {
            assert_eq!(answer.media.len(), offer.media.len(), "an answer has as many m-lines as the offer");
            assert!(negotiated.media_index < offer.media.len());
            assert!(local.codecs.contains(&negotiated.codec));
            round_trip(&answer);
            let read = sdp::accept_answer(&answer, &local)
                .unwrap_or_else(|e| panic!("our own answer must be acceptable: {e}; {answer:?}"));
            assert_eq!(
                (read.media_index, read.codec, read.payload_type, read.telephone_event_pt),
                (negotiated.media_index, negotiated.codec, negotiated.payload_type, negotiated.telephone_event_pt),
                "our own answer reads back as negotiated"
            );
        }
        if let Ok(negotiated) = sdp::accept_answer(&offer, &local) {
            assert!(negotiated.media_index < offer.media.len());
            assert!(local.codecs.contains(&negotiated.codec));
        }
    }
}

/// `parse(to_bytes(sdp)) == sdp` and the bytes are stable; returns them.
fn round_trip(sdp: &SessionDescription) -> Vec<u8> {
    let wire = sdp.to_bytes();
    let again =
        SessionDescription::parse(&wire).unwrap_or_else(|e| panic!("a written description must parse: {e}; {sdp:?}"));
    assert_eq!(&again, sdp, "parse(to_bytes(sdp)) == sdp");
    assert_eq!(again.to_bytes(), wire, "stable bytes");
    wire
}

/// The bridge's usual media (G.722 first, telephone-event on 101) and a G.711-only one without
/// telephone-event that puts the peer on hold.
fn locals() -> [LocalMedia; 2] {
    let origin = Origin {
        username: "agentline".to_owned(),
        session_id: "4242".to_owned(),
        session_version: "1".to_owned(),
        addr_type: AddrType::Ip4,
        address: "198.51.100.7".to_owned(),
    };
    let connection = Connection::new("198.51.100.7".parse().expect("literal"));
    [
        LocalMedia {
            origin: origin.clone(),
            session_name: "agentline".to_owned(),
            connection: connection.clone(),
            port: 40000,
            codecs: vec![Codec::G722, Codec::Pcmu, Codec::Pcma],
            telephone_event_pt: Some(DEFAULT_TELEPHONE_EVENT_PT),
            ptime_ms: 20,
            direction: Direction::SendRecv,
        },
        LocalMedia {
            origin,
            session_name: "-".to_owned(),
            connection,
            port: 40002,
            codecs: vec![Codec::Pcma, Codec::Pcmu],
            telephone_event_pt: None,
            ptime_ms: 30,
            direction: Direction::SendOnly,
        },
    ]
}
