//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/TARGET`) through the same checks as the
//! fuzz targets in `fuzz/fuzz_targets/`, without libFuzzer, so every input the fuzzer found
//! interesting is re-checked by the normal test command. The fuzz crate is its own workspace and
//! is not built here: the checks live in `fuzz/checks/*.rs`, which both the targets and this
//! test include with `#[path]`. See `fuzz/README.md`.

use std::fs;
use std::path::{Path, PathBuf};

use agentline::telco::sip::message::{Framing, Message};
use agentline::telco::sip::sdp::SessionDescription;
use agentline::telco::smpp::pdu;

#[path = "../fuzz/checks/rtp.rs"]
mod rtp_checks;
#[path = "../fuzz/checks/sdp.rs"]
mod sdp_checks;
#[path = "../fuzz/checks/sip_message.rs"]
mod sip_message_checks;
#[path = "../fuzz/checks/sip_transaction.rs"]
mod sip_transaction_checks;
#[path = "../fuzz/checks/smpp_pdu.rs"]
mod smpp_pdu_checks;
#[path = "../fuzz/checks/smpp_text.rs"]
mod smpp_text_checks;

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

#[test]
fn smpp_pdu_corpus_replays() {
    let n = replay("smpp_pdu", smpp_pdu_checks::check);
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
    replay("smpp_text", smpp_text_checks::check);
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
