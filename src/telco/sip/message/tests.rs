//! Golden messages and the parser's negative cases, one per [`SipError`] variant.

use super::*;
use crate::e164::E164;

/// An inbound call as a trunk sends it over UDP: two Record-Routes, a display name that is
/// the caller's number, session timer, an early offer with PCMU/PCMA/G.722 + telephone-event.
const INVITE_GOLDEN: &str = "INVITE sip:+14155550123@203.0.113.10:5060;transport=udp SIP/2.0\r\n\
    Via: SIP/2.0/UDP 192.76.120.10:5060;branch=z9hG4bK-524287-1---8f7a3c0e5c4b2d1a;rport\r\n\
    Max-Forwards: 69\r\n\
    Record-Route: <sip:192.76.120.10;lr;r2=on>\r\n\
    Record-Route: <sip:10.13.0.5;lr;r2=on>\r\n\
    From: \"+12125550199\" <sip:+12125550199@sip.telnyx.com>;tag=as5f1e7c3d\r\n\
    To: <sip:+14155550123@203.0.113.10>\r\n\
    Call-ID: 9c1e2f3a-4b5d-4e6f-8a9b-0c1d2e3f4a5b\r\n\
    CSeq: 102 INVITE\r\n\
    Contact: <sip:+12125550199@192.76.120.10:5060;transport=udp>\r\n\
    Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE, PRACK\r\n\
    Supported: timer, replaces, 100rel\r\n\
    Session-Expires: 1800;refresher=uac\r\n\
    Min-SE: 90\r\n\
    User-Agent: Telnyx SIP Proxy\r\n\
    Content-Type: application/sdp\r\n\
    Content-Length: 283\r\n\
    \r\n\
    v=0\r\n\
    o=- 1700000000 1700000000 IN IP4 192.76.120.20\r\n\
    s=Telnyx\r\n\
    c=IN IP4 192.76.120.20\r\n\
    t=0 0\r\n\
    m=audio 23456 RTP/AVP 0 8 9 101\r\n\
    a=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:8 PCMA/8000\r\n\
    a=rtpmap:9 G722/8000\r\n\
    a=rtpmap:101 telephone-event/8000\r\n\
    a=fmtp:101 0-16\r\n\
    a=ptime:20\r\n\
    a=sendrecv\r\n\
    a=rtcp:23457\r\n";

/// A registrar's challenge to our REGISTER.
const CHALLENGE_GOLDEN: &str = "SIP/2.0 401 Unauthorized\r\n\
    Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK7f3a2b1c;rport=5060;received=203.0.113.10\r\n\
    From: <sip:agentline@sip.telnyx.com>;tag=8f2c1a\r\n\
    To: <sip:agentline@sip.telnyx.com>;tag=SDf8a9s7\r\n\
    Call-ID: reg-5b1f0c2e@198.51.100.7\r\n\
    CSeq: 1 REGISTER\r\n\
    WWW-Authenticate: Digest realm=\"sip.telnyx.com\", nonce=\"YjM5ZDQ4NmEtZjA2Mi00\", qop=\"auth\", algorithm=MD5\r\n\
    WWW-Authenticate: Digest realm=\"sip.telnyx.com\", nonce=\"c2hhMjU2\", qop=\"auth\", algorithm=SHA-256\r\n\
    Content-Length: 0\r\n\
    \r\n";

/// A 180 in compact form, as size-conscious proxies send it.
const RINGING_COMPACT: &str = "SIP/2.0 180 Ringing\r\n\
    v: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKa1b2c3;rport=62001;received=203.0.113.10\r\n\
    f: <sip:+14155550123@sip.telnyx.com>;tag=9fxced76sl\r\n\
    t: <sip:+12125550199@sip.telnyx.com>;tag=314159\r\n\
    i: 3848276298220188511@198.51.100.7\r\n\
    CSeq: 1 INVITE\r\n\
    m: <sip:+12125550199@192.76.120.10:5060>\r\n\
    k: 100rel, timer\r\n\
    x: 600\r\n\
    l: 0\r\n\
    \r\n";

/// Folding, LWS around colons and slashes, odd case, multiple Vias in one line and across
/// lines, a Contact list whose display name and user part contain commas; LF-only endings.
const FOLDED: &str = "OPTIONS sip:agentline@198.51.100.7 SIP/2.0\n\
    Via: SIP/2.0/TCP proxy2.example.net:5060;branch=z9hG4bK721e418c4.1, SIP/2.0/UDP\n  \
    proxy1.example.net;branch=z9hG4bK-2\n\
    Via  : SIP / 2.0 / UDP 192.0.2.4:5070;branch=z9hG4bK-uac;received=192.0.2.99;rport=40000\n\
    TO :\n <sip:agentline@198.51.100.7>\n\
    from: \"Carol \\\"C\\\" Example\" <sip:carol@example.net;user=phone>\n\t;tag=1928301774\n\
    Call-ID: a84b4c76e66710@pc33.example.net\n\
    cSeq: 63104 OPTIONS\n\
    Contact: \"Carol, at home\" <sip:carol,home@192.0.2.4>;q=0.7, <sip:carol@mobile.example.net>;expires=60,\n \
    sip:carol@192.0.2.5;q=0.1\n\
    Max-Forwards: 70\n\
    Accept: application/sdp\n\
    Content-Length: 0\n\
    \n";

fn parse_udp(text: &str) -> Message {
    Message::parse(text.as_bytes(), Framing::Datagram).expect("golden message parses")
}

fn assert_round_trip(message: &Message) {
    let bytes = message.to_bytes();
    assert_eq!(frame_len(&bytes), Ok(Some(bytes.len())));
    assert_eq!(Message::parse(&bytes, Framing::Stream).as_ref(), Ok(message));
    assert_eq!(Message::parse(&bytes, Framing::Datagram).as_ref(), Ok(message));
}

#[test]
fn golden_invite_from_a_trunk() {
    let invite = parse_udp(INVITE_GOLDEN);
    assert_eq!(invite.method(), Some(&Method::Invite));
    let uri = invite.request_uri().expect("a request");
    assert_eq!(
        (uri.scheme, uri.user.as_deref(), uri.host.as_str()),
        (Scheme::Sip, Some("+14155550123"), "203.0.113.10")
    );
    assert_eq!((uri.port, uri.transport()), (Some(5060), Some("udp")));
    assert_eq!(uri.phone_number().map(E164::into_string), Ok("+14155550123".to_owned()));
    assert_eq!(invite.call_id(), Ok("9c1e2f3a-4b5d-4e6f-8a9b-0c1d2e3f4a5b"));
    assert_eq!(invite.cseq(), Ok((102, Method::Invite)));
    let from = invite.from().expect("From parses");
    assert_eq!((from.display.as_deref(), from.tag()), (Some("+12125550199"), Some("as5f1e7c3d")));
    assert_eq!(from.uri.phone_number().map(E164::into_string), Ok("+12125550199".to_owned()));
    assert_eq!(invite.to().expect("To parses").tag(), None);
    let via = invite.via().expect("Via parses");
    assert_eq!(via.len(), 1);
    assert_eq!((via[0].transport.as_str(), via[0].host.as_str(), via[0].port), ("UDP", "192.76.120.10", Some(5060)));
    assert_eq!(via[0].branch(), Some("z9hG4bK-524287-1---8f7a3c0e5c4b2d1a"));
    assert!(via[0].has_rport());
    assert_eq!((via[0].rport(), via[0].received()), (None, None));
    let rr = invite.record_route().expect("Record-Route parses");
    assert_eq!(rr.iter().map(|r| r.uri.host.as_str()).collect::<Vec<_>>(), ["192.76.120.10", "10.13.0.5"]);
    assert!(rr[0].uri.param("lr").is_some());
    assert_eq!(invite.contact().expect("Contact parses")[0].uri.port, Some(5060));
    let allow = invite.allow().expect("Allow parses");
    assert_eq!(allow.len(), 10);
    assert_eq!((allow.first(), allow.last()), (Some(&Method::Invite), Some(&Method::Prack)));
    assert_eq!(invite.supported(), ["timer", "replaces", "100rel"]);
    assert_eq!(
        invite.session_expires(),
        Ok(Some(SessionExpires { delta_secs: 1800, refresher: Some(Refresher::Uac) }))
    );
    assert_eq!(invite.min_se(), Ok(Some(90)));
    assert_eq!(invite.max_forwards(), Ok(Some(69)));
    assert_eq!(invite.expires(), Ok(None));
    assert!(invite.has_sdp());
    assert_eq!(invite.body().len(), 283);
    assert!(invite.body().starts_with(b"v=0\r\n") && invite.body().ends_with(b"a=rtcp:23457\r\n"));
    assert_eq!(invite.header("content-length"), None, "Content-Length is framing, not a header");
    // Canonical input: the writer reproduces it byte for byte.
    assert_eq!(String::from_utf8(invite.to_bytes()).expect("UTF-8"), INVITE_GOLDEN);
    assert_round_trip(&invite);
}

#[test]
fn golden_challenge() {
    let challenge = parse_udp(CHALLENGE_GOLDEN);
    assert_eq!((challenge.status_code(), challenge.reason()), (Some(401), Some("Unauthorized")));
    assert_eq!(challenge.cseq(), Ok((1, Method::Register)));
    let via = challenge.top_via().expect("Via parses");
    assert_eq!((via.rport(), via.received()), (Some(5060), Some("203.0.113.10")));
    let challenges = challenge.www_authenticate().expect("challenges parse");
    assert_eq!(challenges.len(), 2);
    assert_eq!(challenges[0].nonce, "YjM5ZDQ4NmEtZjA2Mi00");
    assert_eq!(challenges[1].algorithm, super::super::digest::Algorithm::Sha256);
    assert_eq!(challenge.proxy_authenticate(), Ok(vec![]));
    assert!(challenge.body().is_empty() && !challenge.has_sdp());
    assert_eq!(String::from_utf8(challenge.to_bytes()).expect("UTF-8"), CHALLENGE_GOLDEN);
    assert_round_trip(&challenge);
}

#[test]
fn golden_ringing_with_compact_headers() {
    let ringing = parse_udp(RINGING_COMPACT);
    assert_eq!(ringing.status_code(), Some(180));
    assert_eq!(ringing.call_id(), Ok("3848276298220188511@198.51.100.7"));
    assert_eq!(ringing.from().expect("f").tag(), Some("9fxced76sl"));
    assert_eq!(ringing.to().expect("t").tag(), Some("314159"));
    assert_eq!(ringing.top_via().expect("v").rport(), Some(62001));
    assert_eq!(ringing.contact().expect("m")[0].uri.user.as_deref(), Some("+12125550199"));
    assert_eq!(ringing.supported(), ["100rel", "timer"]);
    assert_eq!(ringing.session_expires(), Ok(Some(SessionExpires { delta_secs: 600, refresher: None })));
    assert_eq!(ringing.header("Call-ID"), ringing.header("i"));
    assert_eq!(ringing.headers().get("I"), Some("3848276298220188511@198.51.100.7"));
    // Compact names are kept as sent; `l` is rewritten as Content-Length.
    let text = String::from_utf8(ringing.to_bytes()).expect("UTF-8");
    assert!(
        text.contains("\r\ni: 3848276298220188511@198.51.100.7\r\n") && text.ends_with("\r\nContent-Length: 0\r\n\r\n")
    );
    assert_round_trip(&ringing);
}

#[test]
fn golden_folded_headers_and_via_lists() {
    let options = parse_udp(FOLDED);
    assert_eq!(options.method(), Some(&Method::Options));
    let via = options.via().expect("Via parses");
    let hosts: Vec<_> = via.iter().map(|v| (v.transport.as_str(), v.host.as_str(), v.port)).collect();
    assert_eq!(
        hosts,
        [
            ("TCP", "proxy2.example.net", Some(5060)),
            ("UDP", "proxy1.example.net", None),
            ("UDP", "192.0.2.4", Some(5070))
        ]
    );
    assert_eq!(via[1].branch(), Some("z9hG4bK-2"));
    assert_eq!((via[2].received(), via[2].rport()), (Some("192.0.2.99"), Some(40000)));
    assert_eq!(options.to().expect("folded To").uri.user.as_deref(), Some("agentline"));
    let from = options.from().expect("folded From");
    assert_eq!((from.display.as_deref(), from.tag()), (Some("Carol \"C\" Example"), Some("1928301774")));
    assert_eq!(from.uri.param("user").and_then(|p| p.value.as_deref()), Some("phone"));
    assert_eq!(options.cseq(), Ok((63104, Method::Options)));
    let contacts = options.contact().expect("Contact list");
    assert_eq!(contacts.len(), 3);
    assert_eq!(contacts[0].display.as_deref(), Some("Carol, at home"));
    assert_eq!(contacts[0].uri.user.as_deref(), Some("carol,home"));
    assert_eq!(contacts[0].param("q").and_then(|p| p.value.as_deref()), Some("0.7"));
    assert_eq!(contacts[1].param("expires").and_then(|p| p.value.as_deref()), Some("60"));
    // addr-spec form: `;q=0.1` is a header parameter, not a URI parameter.
    assert_eq!((contacts[2].uri.params.len(), contacts[2].param("q").is_some()), (0, true));
    assert_eq!(
        options.headers().get("Via"),
        Some(
            "SIP/2.0/TCP proxy2.example.net:5060;branch=z9hG4bK721e418c4.1, SIP/2.0/UDP proxy1.example.net;branch=z9hG4bK-2"
        )
    );
    assert_round_trip(&options);
}

#[test]
fn stream_framing() {
    let invite = INVITE_GOLDEN.as_bytes();
    let ringing = RINGING_COMPACT.as_bytes();
    let mut stream = b"\r\n\r\n".to_vec();
    stream.extend_from_slice(invite);
    stream.extend_from_slice(ringing);
    assert_eq!(keepalive_len(&stream), 4);
    // Every strict prefix of the first message needs more bytes.
    for cut in 0..4 + invite.len() {
        assert_eq!(frame_len(&stream[..cut]), Ok(None), "cut at {cut}");
    }
    let first = frame_len(&stream).expect("valid").expect("complete");
    assert_eq!(first, 4 + invite.len());
    assert_eq!(Message::parse(&stream[..first], Framing::Stream), Ok(parse_udp(INVITE_GOLDEN)));
    let rest = &stream[first..];
    assert_eq!(frame_len(rest), Ok(Some(ringing.len())));
    assert_eq!(frame_len(b"\r\n\r\n"), Ok(None));
    assert_eq!(frame_len(b""), Ok(None));
}

#[test]
fn datagram_body_rules() {
    // No Content-Length: the body is the rest of the datagram.
    let no_length = "MESSAGE sip:a@b.example SIP/2.0\r\nCall-ID: x\r\n\r\nhello";
    let message = Message::parse(no_length.as_bytes(), Framing::Datagram).expect("valid");
    assert_eq!(message.body(), b"hello");
    assert_eq!(message.method(), Some(&Method::Message));
    // Octets past Content-Length are discarded (§18.3).
    let padded = "MESSAGE sip:a@b.example SIP/2.0\r\nContent-Length: 2\r\n\r\nhello";
    assert_eq!(Message::parse(padded.as_bytes(), Framing::Datagram).expect("valid").body(), b"he");
    // The same is an error on a stream.
    assert_eq!(Message::parse(padded.as_bytes(), Framing::Stream), Err(SipError::TrailingBytes { count: 3 }));
    // Extension methods and empty reasons survive.
    let odd = parse_udp("FOO sip:a@b.example SIP/2.0\r\n\r\n");
    assert_eq!(odd.method(), Some(&Method::Other("FOO".to_owned())));
    let bare = parse_udp("SIP/2.0 200\r\n\r\n");
    assert_eq!((bare.status_code(), bare.reason()), (Some(200), Some("")));
    assert_round_trip(&bare);
}

#[test]
fn uris() {
    let cases = [
        "sip:alice@atlanta.com",
        "sips:alice:secretword@atlanta.com;transport=tcp",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sip:alice@192.0.2.4:5061",
        "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
        "sip:alice;day=tuesday@atlanta.com",
        "sip:[2001:db8::10]:5070;transport=udp;lr",
        "sip:[2001:db8::10]",
        "tel:+1-201-555-0123;phone-context=example.com",
        "sip:biloxi.com?subject=project%20x&priority=urgent",
    ];
    for case in cases {
        let uri = Uri::parse(case).expect(case);
        assert_eq!(uri.to_string(), case);
    }
    let v6 = Uri::parse("sip:[2001:db8::10]:5070;transport=udp;lr").expect("valid");
    assert_eq!((v6.host.as_str(), v6.port, v6.transport()), ("[2001:db8::10]", Some(5070), Some("udp")));
    let pw = Uri::parse("sips:alice:secretword@atlanta.com").expect("valid");
    assert_eq!(
        (pw.scheme, pw.user.as_deref(), pw.password.as_deref()),
        (Scheme::Sips, Some("alice"), Some("secretword"))
    );
    let headers = Uri::parse("sip:biloxi.com?subject=project%20x&priority=urgent").expect("valid");
    assert_eq!(
        headers.headers,
        vec![Param::new("subject", Some("project%20x")), Param::new("priority", Some("urgent"))]
    );
    assert_eq!(Uri::parse("SIP:Alice@Atlanta.COM").expect("valid").to_string(), "sip:Alice@Atlanta.COM");
    assert_eq!(
        Uri::sip(Some("bob"), "b.example").with_port(5080).with_param("transport", Some("tcp")).to_string(),
        "sip:bob@b.example:5080;transport=tcp"
    );
}

#[test]
fn e164_normalisation() {
    for (user, expected) in [
        ("+14155550123", "+14155550123"),
        ("14155550123", "+14155550123"),
        ("+1-415-555-0123", "+14155550123"),
        ("+1(415)555.0123", "+14155550123"),
        ("+14155550123;npdi;rn=+14155550000", "+14155550123"),
        ("4915112345678", "+4915112345678"),
    ] {
        assert_eq!(normalize_e164(user).map(E164::into_string), Ok(expected.to_owned()), "{user}");
    }
    for (user, source) in [
        ("alice", E164Error::NotDigits),
        ("+1415555012a", E164Error::NotDigits),
        ("004915112345678", E164Error::LeadingZero),
        ("+1234567", E164Error::BadLength),
        ("", E164Error::BadLength),
        ("++14155550123", E164Error::NotDigits),
    ] {
        assert_eq!(normalize_e164(user), Err(SipError::NotAPhoneNumber { source }), "{user}");
    }
    let tel = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").expect("valid");
    assert_eq!(tel.phone_number().map(E164::into_string), Ok("+12015550123".to_owned()));
    assert_eq!(
        Uri::parse("sip:b.example").expect("valid").phone_number(),
        Err(SipError::NotAPhoneNumber { source: E164Error::BadLength })
    );
}

fn our_head() -> RequestHead {
    RequestHead {
        uri: Uri::parse("sip:+14155550123@sip.telnyx.com").expect("valid"),
        via: Via::new("UDP", "198.51.100.7", Some(5060), "z9hG4bK74bf9").with_rport(),
        from: NameAddr::new(Uri::sip(Some("+12125550199"), "198.51.100.7"))
            .with_display("Agent")
            .with_tag("9fxced76sl"),
        to: NameAddr::new(Uri::sip(Some("+14155550123"), "sip.telnyx.com")),
        call_id: "3848276298220188511@198.51.100.7".to_owned(),
        cseq: 1,
        max_forwards: DEFAULT_MAX_FORWARDS,
        route: vec![NameAddr::new(Uri::sip(None, "edge.telnyx.com").with_param("lr", None))],
        contact: Some(NameAddr::new(Uri::sip(Some("agentline"), "198.51.100.7").with_port(5060))),
    }
}

#[test]
fn builds_an_invite_byte_for_byte() {
    let sdp = b"v=0\r\n".to_vec();
    let invite = Message::invite(&our_head(), Some(sdp)).expect("valid head");
    let expected = "INVITE sip:+14155550123@sip.telnyx.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK74bf9;rport\r\n\
        Max-Forwards: 70\r\n\
        Route: <sip:edge.telnyx.com;lr>\r\n\
        From: \"Agent\" <sip:+12125550199@198.51.100.7>;tag=9fxced76sl\r\n\
        To: <sip:+14155550123@sip.telnyx.com>\r\n\
        Call-ID: 3848276298220188511@198.51.100.7\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:agentline@198.51.100.7:5060>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 5\r\n\
        \r\n\
        v=0\r\n";
    assert_eq!(String::from_utf8(invite.to_bytes()).expect("UTF-8"), expected);
    assert_round_trip(&invite);
    assert_eq!(Message::invite(&our_head(), None).expect("late offer").body(), b"");
}

#[test]
fn builds_cancel_and_acks() {
    let mut invite = Message::invite(&our_head(), None).expect("valid");
    invite.headers_mut().push("Proxy-Authorization", "Digest username=\"u\"").expect("valid header");
    let cancel = Message::cancel(&invite).expect("cancel");
    assert_eq!(cancel.method(), Some(&Method::Cancel));
    assert_eq!(cancel.request_uri(), invite.request_uri());
    assert_eq!(cancel.top_via().expect("Via").branch(), Some("z9hG4bK74bf9"), "same branch as the INVITE");
    assert_eq!(cancel.cseq(), Ok((1, Method::Cancel)));
    for name in ["From", "To", "Call-ID", "Route"] {
        assert_eq!(cancel.header(name), invite.header(name), "{name}");
    }
    assert_eq!(cancel.header("Contact"), None);
    assert_round_trip(&cancel);

    let terminated = "SIP/2.0 487 Request Terminated\r\n\
        Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK74bf9;rport=5060\r\n\
        From: \"Agent\" <sip:+12125550199@198.51.100.7>;tag=9fxced76sl\r\n\
        To: <sip:+14155550123@sip.telnyx.com>;tag=8321234356\r\n\
        Call-ID: 3848276298220188511@198.51.100.7\r\n\
        CSeq: 1 INVITE\r\n\
        Content-Length: 0\r\n\r\n";
    let terminated = parse_udp(terminated);
    let ack = Message::ack_non_2xx(&invite, &terminated).expect("ack");
    assert_eq!(ack.top_via().expect("Via").branch(), Some("z9hG4bK74bf9"));
    assert_eq!(ack.to().expect("To").tag(), Some("8321234356"));
    assert_eq!(ack.cseq(), Ok((1, Method::Ack)));
    assert_eq!(ack.request_uri(), invite.request_uri());
    assert_eq!(ack.header("Proxy-Authorization"), None);

    let ok = "SIP/2.0 200 OK\r\n\
        Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK74bf9;rport=5060\r\n\
        Record-Route: <sip:edge.telnyx.com;lr>, <sip:core.telnyx.com;lr>\r\n\
        Record-Route: <sip:media.telnyx.com;lr>\r\n\
        From: \"Agent\" <sip:+12125550199@198.51.100.7>;tag=9fxced76sl\r\n\
        To: <sip:+14155550123@sip.telnyx.com>;tag=8321234356\r\n\
        Call-ID: 3848276298220188511@198.51.100.7\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:+14155550123@192.76.120.10:5060;transport=udp>\r\n\
        Content-Length: 0\r\n\r\n";
    let ok = parse_udp(ok);
    let new_via = Via::new("UDP", "198.51.100.7", Some(5060), "z9hG4bKack2").with_rport();
    let ack = Message::ack_2xx(&invite, &ok, &new_via, None).expect("ack");
    assert_eq!(
        ack.request_uri().map(ToString::to_string).as_deref(),
        Some("sip:+14155550123@192.76.120.10:5060;transport=udp")
    );
    assert_eq!(ack.top_via().expect("Via").branch(), Some("z9hG4bKack2"));
    let routes: Vec<_> = ack.route().expect("Route").into_iter().map(|r| r.uri.host).collect();
    assert_eq!(routes, ["media.telnyx.com", "core.telnyx.com", "edge.telnyx.com"], "Record-Route reversed");
    assert_eq!(ack.header("Proxy-Authorization"), Some("Digest username=\"u\""));
    assert_eq!(ack.cseq(), Ok((1, Method::Ack)));
    assert_round_trip(&ack);

    assert_eq!(Message::ack_non_2xx(&invite, &ok), Err(SipError::WrongMessage { expected: "a 3xx-6xx response" }));
    assert_eq!(
        Message::ack_2xx(&invite, &terminated, &new_via, None),
        Err(SipError::WrongMessage { expected: "a 2xx response" })
    );
    assert_eq!(Message::cancel(&cancel), Err(SipError::WrongMessage { expected: "an INVITE request" }));
    let mut no_contact = ok.clone();
    no_contact.headers_mut().remove("Contact");
    assert_eq!(
        Message::ack_2xx(&invite, &no_contact, &new_via, None),
        Err(SipError::MissingHeader { name: "Contact" })
    );
}

#[test]
fn builds_responses() {
    let invite = parse_udp(INVITE_GOLDEN);
    let trying = Message::response(&invite, 100, reason_phrase(100), None).expect("100");
    assert_eq!(trying.to().expect("To").tag(), None);
    assert_eq!(trying.header("Record-Route"), None);
    let ringing = Message::response(&invite, 180, reason_phrase(180), Some("a6c85cf")).expect("180");
    assert_eq!(ringing.to().expect("To").tag(), Some("a6c85cf"));
    assert_eq!(ringing.header("To"), Some("<sip:+14155550123@203.0.113.10>;tag=a6c85cf"));
    assert_eq!(ringing.via(), invite.via());
    assert_eq!(ringing.headers().get_all("Record-Route").count(), 2);
    for name in ["From", "Call-ID", "CSeq"] {
        assert_eq!(ringing.header(name), invite.header(name), "{name}");
    }
    let expected = "SIP/2.0 180 Ringing\r\n\
        Via: SIP/2.0/UDP 192.76.120.10:5060;branch=z9hG4bK-524287-1---8f7a3c0e5c4b2d1a;rport\r\n\
        From: \"+12125550199\" <sip:+12125550199@sip.telnyx.com>;tag=as5f1e7c3d\r\n\
        To: <sip:+14155550123@203.0.113.10>;tag=a6c85cf\r\n\
        Call-ID: 9c1e2f3a-4b5d-4e6f-8a9b-0c1d2e3f4a5b\r\n\
        CSeq: 102 INVITE\r\n\
        Record-Route: <sip:192.76.120.10;lr;r2=on>\r\n\
        Record-Route: <sip:10.13.0.5;lr;r2=on>\r\n\
        Content-Length: 0\r\n\r\n";
    assert_eq!(String::from_utf8(ringing.to_bytes()).expect("UTF-8"), expected);
    // An in-dialog request keeps its To tag.
    let ringing_request =
        parse_udp(RINGING_COMPACT.replace("SIP/2.0 180 Ringing", "BYE sip:a@b.example SIP/2.0").as_str());
    let ok = Message::response(&ringing_request, 200, "OK", Some("other")).expect("200");
    assert_eq!(ok.to().expect("To").tag(), Some("314159"));
    assert_eq!(ok.header("Record-Route"), None);
    // Errors.
    assert_eq!(Message::response(&ok, 200, "OK", None), Err(SipError::WrongMessage { expected: "a request" }));
    assert_eq!(Message::response(&invite, 99, "", None), Err(SipError::BadStatusCode));
    assert_eq!(
        Message::response(&invite, 200, "OK", Some("a b")),
        Err(SipError::Unsendable { what: "a To tag that is not a token" })
    );
    assert_eq!(
        Message::response(&invite, 200, "OK\r\nX: y", None),
        Err(SipError::Unsendable { what: "a reason phrase with a control character" })
    );
}

#[test]
fn builds_register_bye_options() {
    let mut head = our_head();
    head.uri = Uri::sip(None, "sip.telnyx.com");
    let register = Message::register(&head, 3600).expect("register");
    assert_eq!((register.expires(), register.cseq()), (Ok(Some(3600)), Ok((1, Method::Register))));
    assert_round_trip(&register);
    assert_eq!(Message::options(&head).expect("options").method(), Some(&Method::Options));
    assert_eq!(Message::bye(&head), Err(SipError::Unsendable { what: "a BYE without the peer's To tag" }));
    head.to = head.to.with_tag("8321234356");
    head.cseq = 2;
    let bye = Message::bye(&head).expect("bye");
    assert_eq!((bye.cseq(), bye.to().expect("To").tag()), (Ok((2, Method::Bye)), Some("8321234356")));

    let mut bad = our_head();
    bad.contact = None;
    assert_eq!(Message::invite(&bad, None), Err(SipError::Unsendable { what: "an INVITE without a Contact" }));
    assert_eq!(Message::register(&bad, 60), Err(SipError::Unsendable { what: "a REGISTER without a Contact" }));
    let mut bad = our_head();
    bad.via = Via::new("UDP", "h", None, "74bf9");
    assert_eq!(
        Message::options(&bad),
        Err(SipError::Unsendable { what: "a Via whose branch does not start with z9hG4bK" })
    );
    let mut bad = our_head();
    bad.from.params.clear();
    assert_eq!(Message::options(&bad), Err(SipError::Unsendable { what: "a From without a tag" }));
    let mut bad = our_head();
    bad.call_id = "a b".to_owned();
    assert_eq!(Message::options(&bad), Err(SipError::Unsendable { what: "an empty Call-ID or one with whitespace" }));
    let mut bad = our_head();
    bad.cseq = 1 << 31;
    assert_eq!(Message::options(&bad), Err(SipError::Unsendable { what: "a CSeq of 2^31 or more" }));
    let mut bad = our_head();
    bad.to.display = Some("evil\r\nX-Injected: 1".to_owned());
    assert_eq!(Message::options(&bad), Err(SipError::Unsendable { what: "a header value with a control character" }));
    let mut bad = our_head();
    bad.uri.user = Some("a b".to_owned());
    assert_eq!(
        Message::options(&bad),
        Err(SipError::Unsendable { what: "a Request-URI that does not print as itself" })
    );
    assert_eq!(
        Message::new_request(Method::Other("A B".to_owned()), Uri::sip(None, "h")),
        Err(SipError::Unsendable { what: "a method that is not a token" })
    );
}

#[test]
fn headers_container() {
    let mut headers = Headers::default();
    headers.push("Supported", "timer").expect("valid");
    headers.push("k", "100rel").expect("valid");
    headers.push("Subject", "  padded  ").expect("valid");
    assert_eq!(headers.list("supported"), ["timer", "100rel"]);
    assert_eq!(headers.get("s"), Some("padded"));
    headers.set("SUPPORTED", "replaces").expect("valid");
    assert_eq!(headers.list("Supported"), ["replaces"]);
    assert_eq!(headers.len(), 2);
    assert_eq!(headers.remove("Subject"), 1);
    assert_eq!(headers.iter().map(Header::name).collect::<Vec<_>>(), ["SUPPORTED"]);
    assert_eq!(headers.push("Bad Name", "x"), Err(SipError::Unsendable { what: "a header name that is not a token" }));
    assert_eq!(
        headers.push("l", "5"),
        Err(SipError::Unsendable { what: "Content-Length, which is derived from the body" })
    );
    assert_eq!(full_header_name("X"), "Session-Expires");
    assert_eq!(full_header_name("q"), "q");
    assert_eq!(split_list(r#""a,\"b" <sip:x,y@h>;p="1,2", , c"#), [r#""a,\"b" <sip:x,y@h>;p="1,2""#, "c"]);
    let mut message = Message::new_response(200, "OK").expect("valid");
    message.set_body("application/sdp", b"v=0\r\n".to_vec()).expect("small");
    assert!(message.has_sdp());
    message.set_body("application/sdp", Vec::new()).expect("empty");
    assert_eq!(message.content_type(), None);
    assert_eq!(
        message.set_body("text/plain", vec![0; MAX_BODY_LEN + 1]),
        Err(SipError::BodyTooLarge { len: MAX_BODY_LEN + 1 })
    );
}

fn parse_err(text: &str, framing: Framing) -> SipError {
    Message::parse(text.as_bytes(), framing).expect_err(text)
}

#[test]
fn err_header_section_too_large() {
    let mut big = b"OPTIONS sip:a@b.example SIP/2.0\r\n".to_vec();
    while big.len() <= MAX_HEADER_LEN {
        big.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    assert_eq!(frame_len(&big), Err(SipError::HeaderSectionTooLarge));
    big.extend_from_slice(b"\r\n");
    assert_eq!(Message::parse(&big, Framing::Datagram), Err(SipError::HeaderSectionTooLarge));
}

#[test]
fn err_body_too_large() {
    let text = format!("SIP/2.0 200 OK\r\nContent-Length: {}\r\n\r\n", MAX_BODY_LEN + 1);
    assert_eq!(frame_len(text.as_bytes()), Err(SipError::BodyTooLarge { len: MAX_BODY_LEN + 1 }));
    let mut datagram = b"SIP/2.0 200 OK\r\n\r\n".to_vec();
    datagram.resize(datagram.len() + MAX_BODY_LEN + 1, b'x');
    assert_eq!(Message::parse(&datagram, Framing::Datagram), Err(SipError::BodyTooLarge { len: MAX_BODY_LEN + 1 }));
}

#[test]
fn err_empty() {
    assert_eq!(parse_err("", Framing::Datagram), SipError::Empty);
    assert_eq!(parse_err("\r\n\r\n", Framing::Stream), SipError::Empty);
}

#[test]
fn err_unterminated_headers() {
    assert_eq!(parse_err("SIP/2.0 200 OK\r\nCall-ID: x\r\n", Framing::Datagram), SipError::UnterminatedHeaders);
}

#[test]
fn err_body_truncated() {
    assert_eq!(
        parse_err("SIP/2.0 200 OK\r\nl: 10\r\n\r\nabc", Framing::Datagram),
        SipError::BodyTruncated { declared: 10, available: 3 }
    );
}

#[test]
fn err_missing_content_length() {
    assert_eq!(parse_err("SIP/2.0 200 OK\r\n\r\n", Framing::Stream), SipError::MissingContentLength);
    assert_eq!(frame_len(b"SIP/2.0 200 OK\r\n\r\n"), Err(SipError::MissingContentLength));
}

#[test]
fn err_conflicting_content_length() {
    assert_eq!(
        parse_err("SIP/2.0 200 OK\r\nContent-Length: 0\r\nl: 1\r\n\r\nx", Framing::Datagram),
        SipError::ConflictingContentLength { first: 0, second: 1 }
    );
    // Repeating the same value is harmless.
    assert!(Message::parse(b"SIP/2.0 200 OK\r\nContent-Length: 1\r\nl: 1\r\n\r\nx", Framing::Stream).is_ok());
}

#[test]
fn err_trailing_bytes() {
    assert_eq!(parse_err("SIP/2.0 200 OK\r\nl: 0\r\n\r\nxy", Framing::Stream), SipError::TrailingBytes { count: 2 });
}

#[test]
fn err_bad_start_line() {
    for line in ["INVITE sip:a@b.example\r\n\r\n", "INVITE sip:a@b.example SIP/2.0 extra\r\n\r\n", "SIP/2.0\r\n\r\n"] {
        assert_eq!(parse_err(line, Framing::Datagram), SipError::BadStartLine, "{line:?}");
    }
}

#[test]
fn err_bad_version() {
    assert_eq!(parse_err("INVITE sip:a@b.example SIP/3.0\r\n\r\n", Framing::Datagram), SipError::BadVersion);
    assert_eq!(parse_err("SIP/1.0 200 OK\r\n\r\n", Framing::Datagram), SipError::BadVersion);
    // The version compares case-insensitively (§7.1).
    assert!(Message::parse(b"sip/2.0 200 OK\r\n\r\n", Framing::Datagram).is_ok());
}

#[test]
fn err_bad_method() {
    assert_eq!(parse_err("INV@ITE sip:a@b.example SIP/2.0\r\n\r\n", Framing::Datagram), SipError::BadMethod);
    assert_eq!(Method::parse(""), Err(SipError::BadMethod));
}

#[test]
fn err_bad_status_code() {
    for line in ["SIP/2.0 2000 OK", "SIP/2.0 099 Low", "SIP/2.0 700 High", "SIP/2.0 OK"] {
        assert_eq!(parse_err(&format!("{line}\r\n\r\n"), Framing::Datagram), SipError::BadStatusCode, "{line}");
    }
}

#[test]
fn err_bad_header_line() {
    assert_eq!(parse_err("SIP/2.0 200 OK\r\nno colon\r\n\r\n", Framing::Datagram), SipError::BadHeaderLine { line: 2 });
    assert_eq!(parse_err("SIP/2.0 200 OK\r\n: empty\r\n\r\n", Framing::Datagram), SipError::BadHeaderLine { line: 2 });
    assert_eq!(
        parse_err("SIP/2.0 200 OK\r\nA: 1\r\nBad Name: x\r\n\r\n", Framing::Datagram),
        SipError::BadHeaderLine { line: 3 }
    );
}

#[test]
fn err_fold_without_header() {
    assert_eq!(
        parse_err("SIP/2.0 200 OK\r\n folded\r\n\r\n", Framing::Datagram),
        SipError::FoldWithoutHeader { line: 2 }
    );
}

#[test]
fn err_control_character() {
    assert_eq!(
        parse_err("SIP/2.0 200 OK\r\nSubject: a\rb\r\n\r\n", Framing::Datagram),
        SipError::ControlCharacter { line: 2 }
    );
    assert_eq!(parse_err("SIP/2.0 200 O\x00K\r\n\r\n", Framing::Datagram), SipError::ControlCharacter { line: 1 });
}

#[test]
fn err_not_utf8() {
    assert_eq!(
        Message::parse(b"SIP/2.0 200 OK\r\nSubject: caf\xe9\r\n\r\n", Framing::Datagram),
        Err(SipError::NotUtf8 { line: 2 })
    );
    // UTF-8 display names are fine.
    let ok = parse_udp("SIP/2.0 200 OK\r\nFrom: \"Jos\u{e9}\" <sip:jose@b.example>;tag=1\r\n\r\n");
    assert_eq!(ok.from().expect("From").display.as_deref(), Some("Jos\u{e9}"));
}

#[test]
fn err_missing_header() {
    let bare = parse_udp("SIP/2.0 200 OK\r\n\r\n");
    assert_eq!(bare.call_id(), Err(SipError::MissingHeader { name: "Call-ID" }));
    assert_eq!(bare.cseq(), Err(SipError::MissingHeader { name: "CSeq" }));
    assert_eq!(bare.from(), Err(SipError::MissingHeader { name: "From" }));
    assert_eq!(bare.to(), Err(SipError::MissingHeader { name: "To" }));
    assert_eq!(bare.via(), Err(SipError::MissingHeader { name: "Via" }));
    assert_eq!(bare.top_via(), Err(SipError::MissingHeader { name: "Via" }));
    assert_eq!(bare.contact(), Ok(vec![]));
    assert_eq!(
        (bare.max_forwards(), bare.expires(), bare.session_expires(), bare.min_se()),
        (Ok(None), Ok(None), Ok(None), Ok(None))
    );
    let request = parse_udp("OPTIONS sip:a@b.example SIP/2.0\r\n\r\n");
    assert_eq!(Message::response(&request, 200, "OK", None), Err(SipError::MissingHeader { name: "Via" }));
    let request = parse_udp("OPTIONS sip:a@b.example SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n");
    assert_eq!(Message::response(&request, 200, "OK", None), Err(SipError::MissingHeader { name: "From" }));
}

#[test]
fn err_bad_header_value() {
    let with = |header: &str| parse_udp(&format!("SIP/2.0 200 OK\r\n{header}\r\n\r\n"));
    fn bad<T>(name: &'static str, reason: &'static str) -> Result<T, SipError> {
        Err(SipError::BadHeaderValue { name, reason })
    }
    assert_eq!(with("Call-ID: a b").call_id(), bad("Call-ID", "empty or contains whitespace"));
    assert_eq!(with("CSeq: 1").cseq(), bad("CSeq", "not `number METHOD`"));
    assert_eq!(with("CSeq: x INVITE").cseq(), bad("CSeq", "not a decimal number"));
    assert_eq!(with("CSeq: 4294967296 INVITE").cseq(), bad("CSeq", "does not fit 32 bits"));
    assert_eq!(with("CSeq: 1 IN/VITE").cseq(), bad("CSeq", "the method is not a token"));
    assert_eq!(with("Max-Forwards: 256").max_forwards(), bad("Max-Forwards", "above 255"));
    assert_eq!(with("Expires: soon").expires(), bad("Expires", "not a decimal number"));
    assert_eq!(with("x: 90;refresher=both").session_expires(), bad("Session-Expires", "refresher is not uac or uas"));
    assert_eq!(with("x: 90 refresher").session_expires(), bad("Session-Expires", "not a decimal number"));
    assert_eq!(with("Allow: INVITE, B@D").allow(), bad("Allow", "not a method"));
    assert_eq!(with("Contact: *").contact(), bad("Contact", "the wildcard '*' is not an address"));
    assert_eq!(with("From: \"open <sip:a@b>").from(), bad("From", "an unterminated quoted display name"));
    assert_eq!(with("From: \"A\" sip:a@b").from(), bad("From", "a quoted display name is not followed by <URI>"));
    assert_eq!(with("To: A\" <sip:a@b>").to(), bad("To", "a malformed display name"));
    assert_eq!(with("To: <sip:a@b").to(), bad("To", "no '>' closes the URI"));
    assert_eq!(with("To: <sip:a@b> tag=1").to(), bad("To", "expected ';' before a parameter"));
    assert_eq!(with("To: <sip:a@b>;=1").to(), bad("To", "an empty parameter name"));
    assert_eq!(with("To: <sip:a@b>;tag=").to(), bad("To", "an empty parameter value"));
    assert_eq!(with("To: <sip:a@b>;tag=\"x").to(), bad("To", "an unterminated quoted parameter value"));
    assert_eq!(with("Via: SIP/2.0").via(), bad("Via", "no sent-protocol"));
    assert_eq!(with("Via: SIP/3.0/UDP h").via(), bad("Via", "the protocol is not SIP/2.0"));
    assert_eq!(with("Via: SIP/2.0/UDP").via(), bad("Via", "no sent-by"));
    assert_eq!(with("Via: SIP/2.0/U@P h").via(), bad("Via", "the transport is not a token"));
    assert_eq!(with("Via: SIP/2.0/UDP h:99999").via(), bad("Via", "a malformed sent-by"));
    assert_eq!(with("Via: SIP/2.0/UDP h;branch").top_via().map(|v| v.branch().is_none()), Ok(true));
}

#[test]
fn err_bad_content_length_value() {
    assert_eq!(
        parse_err("SIP/2.0 200 OK\r\nContent-Length: 1x\r\n\r\n", Framing::Datagram),
        SipError::BadHeaderValue { name: "Content-Length", reason: "not a decimal number" }
    );
}

#[test]
fn err_bad_uri() {
    let bad = |reason| Err(SipError::BadUri { reason });
    assert_eq!(Uri::parse("sip:a b@h"), bad("contains a space, a control, a non-ASCII octet or one of <>\""));
    assert_eq!(Uri::parse("alice@atlanta.com"), bad("no scheme"));
    assert_eq!(Uri::parse("http://a"), bad("the scheme is not sip, sips or tel"));
    assert_eq!(Uri::parse("tel:"), bad("a tel URI needs a number"));
    assert_eq!(Uri::parse("sip:@h"), bad("an empty user part before '@'"));
    assert_eq!(Uri::parse("sip:[::1"), bad("an IPv6 reference without ']'"));
    assert_eq!(Uri::parse("sip:[xyz]"), bad("a malformed IPv6 reference"));
    assert_eq!(Uri::parse("sip:[::1]x"), bad("text after the IPv6 reference"));
    assert_eq!(Uri::parse("sip:a@"), bad("a malformed host"));
    assert_eq!(Uri::parse("sip:a@h/x"), bad("a malformed host"));
    assert_eq!(Uri::parse("sip:h:70000"), bad("a port above 65535"));
    assert_eq!(Uri::parse("sip:h:5o60"), bad("a port that is not a number"));
    assert_eq!(Uri::parse("sip:h;;lr"), bad("an empty parameter name"));
    assert_eq!(Uri::parse("sip:h?subject"), bad("a URI header is not name=value"));
    // In a request line, an unsupported scheme fails the whole message.
    assert_eq!(
        parse_err("INVITE urn:service:sos SIP/2.0\r\n\r\n", Framing::Datagram),
        SipError::BadUri { reason: "the scheme is not sip, sips or tel" }
    );
}

#[test]
fn err_not_a_phone_number() {
    assert_eq!(
        Uri::parse("sip:alice@h").expect("valid").phone_number(),
        Err(SipError::NotAPhoneNumber { source: E164Error::NotDigits })
    );
}

#[test]
fn err_challenge() {
    let message = parse_udp(
        "SIP/2.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Digest nonce=\"n\"\r\nProxy-Authenticate: Bearer realm=\"x\"\r\n\r\n",
    );
    assert_eq!(message.proxy_authenticate(), Err(SipError::Challenge(DigestError::MissingParam { name: "realm" })));
    let other_scheme_only = parse_udp("SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n\r\n");
    assert_eq!(other_scheme_only.www_authenticate(), Ok(vec![]));
}

use crate::test_rng::XorShift;

/// Calls every accessor; none may panic, whatever they return.
fn exercise(message: &Message) {
    let _ = (message.call_id(), message.cseq(), message.from(), message.to(), message.via(), message.top_via());
    let _ = (message.contact(), message.route(), message.record_route(), message.allow(), message.supported());
    let _ = (message.max_forwards(), message.expires(), message.session_expires(), message.min_se());
    let _ = (message.www_authenticate(), message.proxy_authenticate(), message.has_sdp(), message.require());
    if let Ok(from) = message.from() {
        let _ = from.uri.phone_number();
        assert_eq!(NameAddr::parse(&from.to_string()), Ok(from));
    }
    if let Ok(via) = message.via() {
        for v in via {
            assert_eq!(Via::parse(&v.to_string()), Ok(v));
        }
    }
    if message.is_request() {
        let _ = Message::response(message, 200, "OK", Some("t"));
        let _ = Message::cancel(message);
    }
}

#[test]
fn pseudo_fuzz_never_panics_and_what_parses_round_trips() {
    const GOLDEN: [&str; 4] = [INVITE_GOLDEN, CHALLENGE_GOLDEN, RINGING_COMPACT, FOLDED];
    const SPICE: &[u8] = b"\r\n \t:;,<>\"\\@[]/=?&0123456789SIP/2.0 sip:tel:+Via: l: 10\xff\xc3";
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut parsed, mut framed) = (0, 0);
    for i in 0..20_000 {
        let mut bytes: Vec<u8> = if i % 10 == 0 {
            (0..rng.below(300)).map(|_| SPICE[rng.below(SPICE.len())]).collect()
        } else {
            GOLDEN[rng.below(GOLDEN.len())].as_bytes().to_vec()
        };
        for _ in 0..=rng.below(6) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, SPICE[rng.below(SPICE.len())]),
                2 if at < bytes.len() => bytes[at] = rng.next() as u8,
                _ => bytes.truncate(at.max(bytes.len() / 2)),
            }
        }
        if let Ok(Some(len)) = frame_len(&bytes) {
            framed += 1;
            assert!(len <= bytes.len());
            let _ = Message::parse(&bytes[..len], Framing::Stream);
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            if let Ok(uri) = Uri::parse(text.trim()) {
                assert_eq!(Uri::parse(&uri.to_string()), Ok(uri));
            }
            let _ = normalize_e164(text);
        }
        for framing in [Framing::Datagram, Framing::Stream] {
            let Ok(message) = Message::parse(&bytes, framing) else { continue };
            parsed += 1;
            exercise(&message);
            let again = message.to_bytes();
            assert_eq!(
                Message::parse(&again, Framing::Stream).as_ref(),
                Ok(&message),
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    assert!(parsed > 5_000 && framed > 1_000, "parsed {parsed}, framed {framed}: the generator is too hostile");
}
