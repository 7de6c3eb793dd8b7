//! The SIP test peers on their own, without agentline: SIPp scenarios and baresip from
//! `tests/peers/sip`, driven through `tests/support/sip.rs`. These are the harness' self-check:
//! if one fails, the peers (or this machine) are broken, not the bridge.

mod support;

use std::time::Duration;

use support::sip::{Baresip, BaresipOptions, Sipp, Transport, dominant, rms};

const TONES: [f32; 2] = [440.0, 1000.0];
const SECS: Duration = Duration::from_secs(1);

/// SIPp calls baresip (auto-answer) and streams 1 kHz; baresip hears 1 kHz and sends its 440 Hz.
async fn tone_caller_reaches_baresip(transport: Transport) {
    let bs = Baresip::spawn();
    let mut sipp = Sipp::uac("uac_tone", bs.addr(), "bob", transport).set("hold_ms", 2000).tone(1000.0, 10.0).spawn();
    let out = sipp.wait(12 * SECS).await;
    assert!(out.all_ok(), "{}", out.report());
    let closed = bs.wait_event("CALL_CLOSED", 5 * SECS).await;
    assert_eq!(closed["direction"], "incoming", "{closed}");

    let (heard, rate) = bs.received_audio();
    assert_eq!(rate, 8000);
    assert!(heard.len() >= 12_000, "only {} samples received", heard.len());
    assert_eq!(dominant(&heard, rate, 0.2, &TONES), Some(1000.0));
    assert!(rms(&heard[1600..]) > 0.25, "rms {}", rms(&heard[1600..]));
    let (sent, rate) = bs.sent_audio();
    assert_eq!(dominant(&sent, rate, 0.2, &TONES), Some(440.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_tone_caller_to_baresip_udp() {
    tone_caller_reaches_baresip(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_tone_caller_to_baresip_tcp() {
    tone_caller_reaches_baresip(Transport::Tcp).await;
}

/// The far end hangs up first: SIPp (`uac_tone_until_bye`) answers the BYE and counts a
/// successful call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_tone_caller_survives_far_end_bye_tcp() {
    let bs = Baresip::spawn();
    let mut sipp = Sipp::uac("uac_tone_until_bye", bs.addr(), "bob", Transport::Tcp).spawn();
    bs.wait_event("CALL_ESTABLISHED", 5 * SECS).await;
    bs.wait_received_secs(0.5, 5 * SECS).await;
    bs.hangup().await;
    let out = sipp.wait(5 * SECS).await;
    assert!(out.all_ok(), "{}", out.report());
}

async fn busy(transport: Transport) {
    let mut uas = Sipp::uas("uas_486", transport).spawn();
    let mut uac = Sipp::uac("uac_expect_486", uas.addr(), "agent", transport).spawn();
    let (uac_out, uas_out) = (uac.wait(10 * SECS).await, uas.wait(10 * SECS).await);
    assert!(uac_out.all_ok(), "uac: {}", uac_out.report());
    assert!(uas_out.all_ok(), "uas: {}", uas_out.report());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_busy_486_udp() {
    busy(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_busy_486_tcp() {
    busy(Transport::Tcp).await;
}

/// baresip knows only `bob`: a call to anyone else gets 404, which `uac_expect_404` wants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_expects_404_from_baresip() {
    let bs = Baresip::spawn();
    let mut uac = Sipp::uac("uac_expect_404", bs.addr(), "nobody", Transport::Udp).spawn();
    let out = uac.wait(10 * SECS).await;
    assert!(out.all_ok(), "{}", out.report());
}

/// baresip as the bridge would be: it dials the digest-protected "carrier", answers the 401 with
/// its credentials, which SIPp's verifyauth accepts; then it hears the carrier's 1 kHz tone.
async fn baresip_dials_digest_carrier(transport: Transport) {
    let bs = Baresip::spawn();
    let mut carrier =
        Sipp::uas("uas_401_answer", transport).set("user", "bob").set("pass", "secret").tone(1000.0, 10.0).spawn();
    bs.dial(&carrier.uri("service")).await;
    let established = bs.wait_event("CALL_ESTABLISHED", 5 * SECS).await;
    assert_eq!(established["direction"], "outgoing", "{established}");
    bs.wait_received_secs(1.5, 5 * SECS).await;
    bs.hangup().await;
    let out = carrier.wait(5 * SECS).await;
    assert!(out.all_ok(), "{}", out.report());
    assert!(out.logs.contains("AUTH_OK call 1"), "{}", out.report());

    let (heard, rate) = bs.received_audio();
    assert_eq!(dominant(&heard, rate, 0.2, &TONES), Some(1000.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_dials_digest_carrier_udp() {
    baresip_dials_digest_carrier(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_dials_digest_carrier_tcp() {
    baresip_dials_digest_carrier(Transport::Tcp).await;
}

/// A wrong password: SIPp answers 403 and reports the call failed (exit 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_carrier_rejects_wrong_password() {
    let bs = Baresip::spawn_with(BaresipOptions { password: "not-the-secret".to_owned(), ..Default::default() });
    let mut carrier = Sipp::uas("uas_401_answer", Transport::Udp).set("user", "bob").set("pass", "secret").spawn();
    bs.dial(&carrier.uri("service")).await;
    let closed = bs.wait_event("CALL_CLOSED", 5 * SECS).await;
    assert!(closed["param"].as_str().unwrap_or_default().contains("403"), "{closed}");
    let out = carrier.wait(5 * SECS).await;
    assert_eq!(out.exit_code, Some(1), "{}", out.report());
    assert_eq!((out.successful_calls, out.failed_calls), (0, 1), "{}", out.report());
    assert!(out.logs.contains("AUTH_INVALID call 1"), "{}", out.report());
}

/// `uac_dtmf` plays the RFC 2833 pcaps for 1, 2, 3; baresip decodes each digit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_dtmf_reaches_baresip() {
    let bs = Baresip::spawn();
    // SIPp hangs up after its hold (a BYE from baresip could land between two steps of SIPp's
    // hold loop, where SIPp aborts the call).
    let mut sipp = Sipp::uac("uac_dtmf", bs.addr(), "bob", Transport::Udp).set("hold_ms", 1000).spawn();
    for digit in ['1', '2', '3'] {
        bs.wait_log(&format!("received event: '{digit}'"), 5 * SECS).await;
    }
    let out = sipp.wait(5 * SECS).await;
    assert!(out.all_ok(), "{}", out.report());
}

/// baresip calls the echo UAS (`-rtp_echo`) and hears its own 440 Hz back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_hears_itself_through_echo_uas() {
    let bs = Baresip::spawn();
    let mut echo = Sipp::uas("uas_echo", Transport::Udp).rtp_echo().spawn();
    bs.dial(&echo.uri("echo")).await;
    bs.wait_event("CALL_ESTABLISHED", 5 * SECS).await;
    bs.wait_received_secs(1.0, 5 * SECS).await;
    bs.hangup().await;
    let out = echo.wait(5 * SECS).await;
    assert!(out.all_ok(), "{}", out.report());
    let (heard, rate) = bs.received_audio();
    assert_eq!(dominant(&heard, rate, 0.2, &TONES), Some(440.0));
}

/// Many concurrent calls: 20 `uac_tone` calls, 10 at once, into one `uas_echo -rtp_echo`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_concurrent_calls_into_echo_uas() {
    let mut echo = Sipp::uas("uas_echo", Transport::Udp).rtp_echo().calls(20).spawn();
    let mut callers = Sipp::uac("uac_tone", echo.addr(), "echo", Transport::Udp)
        .set("hold_ms", 1000)
        .calls(20)
        .limit(10)
        .rate(20.0)
        .spawn();
    let out = callers.wait(15 * SECS).await;
    assert!(out.all_ok(), "callers: {}", out.report());
    assert_eq!(out.successful_calls, 20, "{}", out.report());
    let out = echo.wait(5 * SECS).await;
    assert!(out.all_ok(), "echo: {}", out.report());
    assert_eq!(out.successful_calls, 20, "{}", out.report());
}

/// `sndcode` makes baresip send RFC 4733 DTMF: another baresip decodes the digits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_sends_dtmf() {
    let callee = Baresip::spawn_with(BaresipOptions { user: "carol".to_owned(), ..Default::default() });
    let caller = Baresip::spawn();
    caller.dial(&callee.uri()).await;
    caller.wait_event("CALL_ESTABLISHED", 5 * SECS).await;
    callee.wait_event("CALL_ESTABLISHED", 5 * SECS).await;
    for digit in ['5', '#'] {
        caller.send_dtmf(digit).await;
        callee.wait_log(&format!("received event: '{digit}' (end=1)"), 5 * SECS).await;
    }
    caller.hangup().await;
    callee.wait_event("CALL_CLOSED", 5 * SECS).await;
}
