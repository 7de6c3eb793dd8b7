//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/TARGET`) through the same checks as the
//! fuzz targets in `fuzz/fuzz_targets/`, without libFuzzer, so every input the fuzzer found
//! interesting is re-checked by the normal test command. The fuzz crate is its own workspace and
//! is not built here: the SMPP checks are duplicated below on purpose; the SIP, SDP, RTP and
//! transaction checks live in `fuzz/checks/*.rs`, which both the targets and this test include
//! with `#[path]`. See `fuzz/README.md`.

use std::fs;
use std::path::{Path, PathBuf};

use agentline::telco::sip::message::{Framing, Message};
use agentline::telco::sip::sdp::SessionDescription;
use agentline::telco::smpp::deliver;
use agentline::telco::smpp::gsm7;
use agentline::telco::smpp::pdu::{self, Body, HEADER_LEN, Header, MAX_PDU_LEN};
use agentline::telco::smpp::segments::{self, ESM_CLASS_UDHI, MAX_PARTS, TooManyParts};
use agentline::telco::sms_encoding::{self, SmsEncoding};

#[path = "../fuzz/checks/rtp.rs"]
mod rtp_checks;
#[path = "../fuzz/checks/sdp.rs"]
mod sdp_checks;
#[path = "../fuzz/checks/sip_message.rs"]
mod sip_message_checks;
#[path = "../fuzz/checks/sip_transaction.rs"]
mod sip_transaction_checks;

/// Every file of one target's corpus, sorted; the corpus must not be empty.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{} holds only {} inputs", dir.display(), files.len());
    files
}

/// Runs `check` on every input, naming the file of the first one that fails.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let files = corpus(target);
    for (path, bytes) in &files {
        if let Err(panic) = std::panic::catch_unwind(|| check(bytes)) {
            eprintln!("fuzz corpus input {} failed", path.display());
            std::panic::resume_unwind(panic);
        }
    }
    files.len()
}

// ---- smpp_pdu: the checks of fuzz/fuzz_targets/smpp_pdu.rs ----

fn check_pdu_input(data: &[u8]) {
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

// ---- smpp_text: the checks of fuzz/fuzz_targets/smpp_text.rs ----

fn check_text_input(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let _ = gsm7::decode_short_message(first, rest);
    check_split(&String::from_utf8_lossy(rest), first);
}

fn check_split(text: &str, reference: u8) {
    let (plan_encoding, plan_parts) = sms_encoding::plan(text);
    let e = match segments::split(text, reference) {
        Ok(e) => e,
        Err(TooManyParts { parts }) => {
            assert!(parts > MAX_PARTS, "refused {parts} parts");
            assert_eq!(u32::try_from(parts).ok(), Some(plan_parts), "part count agrees with the planner");
            return;
        }
    };
    assert_eq!(e.encoding, plan_encoding, "encoding agrees with the planner");
    assert_eq!(u32::try_from(e.parts.len()).ok(), Some(plan_parts), "part count agrees with the planner");
    let (data_coding, max_body) = match e.encoding {
        SmsEncoding::Gsm7 => (gsm7::DATA_CODING_DEFAULT, 153),
        SmsEncoding::Ucs2 => (gsm7::DATA_CODING_UCS2, 134),
    };
    assert_eq!(e.data_coding, data_coding);
    let body: Vec<u8> = if let [single] = e.parts.as_slice() {
        assert_eq!(e.esm_class, 0, "a single part carries no UDH");
        assert!(single.len() <= if data_coding == gsm7::DATA_CODING_UCS2 { 140 } else { 160 });
        single.clone()
    } else {
        assert_eq!(e.esm_class, ESM_CLASS_UDHI);
        let count = u8::try_from(e.parts.len()).expect("at most MAX_PARTS parts");
        let mut body = Vec::new();
        let mut each = String::new();
        for (i, part) in e.parts.iter().enumerate() {
            assert!((6 + 1..=6 + max_body).contains(&part.len()), "part {i} has {} octets", part.len());
            let seq = u8::try_from(i + 1).expect("at most MAX_PARTS parts");
            assert_eq!(part[..6], [0x05, 0x00, 0x03, reference, count, seq], "UDH of part {i}");
            body.extend_from_slice(&part[6..]);
            each.push_str(&gsm7::decode_short_message(e.data_coding, &part[6..]));
        }
        // Each part decodes on its own (no ESC or surrogate pair split across parts).
        assert_eq!(each, text, "the parts, decoded one by one, give back the text");
        body
    };
    assert_eq!(gsm7::decode_short_message(e.data_coding, &body), text, "the parts decode back to the text");
}

#[test]
fn smpp_pdu_corpus_replays() {
    let n = replay("smpp_pdu", check_pdu_input);
    // The seeds are golden PDUs from the codec's unit tests: they must still decode.
    let seeds = corpus("smpp_pdu").into_iter().filter(|(path, _)| is_seed(path)).collect::<Vec<_>>();
    assert!(seeds.len() >= 10, "only {} seeds among {n} inputs", seeds.len());
    for (path, bytes) in &seeds {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let expect_ok = !name.contains("unknown") && !name.contains("stream");
        assert_eq!(pdu::decode(bytes).is_ok(), expect_ok, "{name}: {:?}", pdu::decode(bytes));
    }
}

#[test]
fn smpp_text_corpus_replays() {
    replay("smpp_text", check_text_input);
}

fn is_seed(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("seed-"))
}

#[test]
fn sip_message_corpus_replays() {
    replay("sip_message", sip_message_checks::check);
    // The seeds are real messages (unit-test goldens, SIPp scenarios, softphone INVITEs): the
    // ones not named `bad-*` must still parse.
    for (path, bytes) in corpus("sip_message").iter().filter(|(path, _)| is_seed(path)) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let parsed = Message::parse(bytes, Framing::Datagram);
        assert_eq!(parsed.is_ok(), !name.contains("bad-"), "{name}: {parsed:?}");
    }
}

#[test]
fn sdp_corpus_replays() {
    replay("sdp", sdp_checks::check);
    for (path, bytes) in corpus("sdp").iter().filter(|(path, _)| is_seed(path)) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let parsed = SessionDescription::parse(bytes);
        assert_eq!(parsed.is_ok(), !name.contains("bad-"), "{name}: {parsed:?}");
    }
}

#[test]
fn rtp_corpus_replays() {
    replay("rtp", rtp_checks::check);
}

#[test]
fn sip_transaction_corpus_replays() {
    replay("sip_transaction", sip_transaction_checks::check);
}
