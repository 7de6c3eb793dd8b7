//! The SIP trunk bridge against real, independent SIP peers on 127.0.0.1: baresip 1.0.0 and
//! SIPp 3.6.1 (Debian's `baresip-core` and `sip-tester`, installed by the test command). The
//! agent side is a real WebSocket client; what the peers heard is read from their recordings
//! and exit codes. Audio is checked by frequency (Goertzel), never by bytes.
//!
//! One backend (SQLite): the database plays no part in what is tested here beyond the rows the
//! voice tests already cover on both.

mod support;

use std::time::Duration;

use agentline::config::Secret;
use futures_util::SinkExt;
use serde_json::{Value, json};
use support::sip::{Baresip, BaresipOptions, Sipp, Transport, dominant_frequency, free_sip_port};
use support::ws::{
    RATE, Ws, call_row, connect, dial, event, frames, next_event, send_json, tone, until_closed, ws_url,
};
use support::{ADMIN_KEY, Backend, TestServer, wallet};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// The agent's number, imported by the operator.
const NUMBER: &str = "+12025550100";
/// The far end.
const FAR: &str = "+14155550123";

/// A server whose voice network is the trunk `trunk`, SIP on `sip_port`; one imported number,
/// comp-granted. Returns the server and the agent's token.
async fn server(trunk: &str, sip_port: u16) -> (TestServer, String) {
    let trunk = trunk.to_owned();
    let s = TestServer::start_with(Backend::Sqlite, move |c| {
        c.sip.trunk = Some(Secret::new(trunk));
        c.sip.listen = format!("127.0.0.1:{sip_port}");
        c.rtp.ports = "44000-45999".to_owned();
    })
    .await;
    // With a carrier configured nothing is seeded: the pool is what the operator imports.
    let available: Value = s.get("/sms/availability", None).await.json().await.expect("json");
    assert_eq!(available, json!({"available": 0}));
    let added = s.post("/admin/numbers", Some(ADMIN_KEY), &json!({"numbers": [NUMBER]})).await;
    assert_eq!(added.status(), 200);
    let (token, number) = s.grant(&wallet(1), 30).await;
    assert_eq!(number, NUMBER);
    let ready: Value = s.get("/health/ready", None).await.json().await.expect("json");
    assert_eq!(ready["checks"]["voice_network"]["name"], "sip");
    (s, token)
}

/// Reads events (keeping nothing of the audio) until one named `name`.
async fn until_event(ws: &mut Ws, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = next_event(ws, &mut Vec::new()).await;
        if v["event"] == name {
            return v;
        }
        assert!(Instant::now() < deadline, "no {name} event");
    }
}

/// The dominant one of `candidates` in the last second of `samples` (16 kHz).
fn heard(samples: &[i16], candidates: &[f32]) -> Option<f32> {
    let tail = &samples[samples.len().saturating_sub(RATE as usize)..];
    dominant_frequency(tail, RATE, candidates)
}

/// Outbound to baresip, which auto-answers playing 440 Hz: the agent hears 440 Hz at 16 kHz,
/// baresip records the agent's 1 kHz, a digit the agent sends reaches baresip as RFC 4733, and
/// closing the socket sends BYE.
async fn outbound_to_baresip(transport: Transport, codecs: &str) {
    let baresip = Baresip::spawn_with(BaresipOptions {
        user: FAR.to_owned(),
        codecs: codecs.to_owned(),
        ..BaresipOptions::default()
    });
    let trunk = format!("sip:127.0.0.1:{}{}", baresip.sip_port, transport.uri_param());
    let (s, token) = server(&trunk, free_sip_port()).await;

    let dialed = dial(&s, &token, NUMBER, FAR).await;
    assert!(matches!(dialed["state"].as_str(), Some("ringing" | "in_progress")), "{dialed}");
    let call_id = dialed["call_id"].as_str().expect("call_id").to_owned();
    let mut ws = connect(dialed["stream_url"].as_str().expect("stream_url"), &token).await;
    let connected = event(&mut ws).await;
    assert_eq!(connected["event"], "connected");
    assert_eq!(connected["format"]["sample_rate"], 16000);
    // The answer picks the codec: announced as it changes, or already in `connected`.
    let mut upstream = connected["upstream"]["codec"].as_str().map(str::to_owned);
    if connected["state"] != "in_progress" {
        loop {
            let v = next_event(&mut ws, &mut Vec::new()).await;
            if v["event"] == "upstream" {
                upstream = v["codec"].as_str().map(str::to_owned);
            }
            if v["event"] == "answered" {
                break;
            }
        }
    }
    let want = codecs.split(',').next().expect("a codec");
    assert_eq!(upstream.as_deref(), Some(want), "the call runs on baresip's codec");
    baresip.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)).await;

    // The agent speaks 1 kHz (faster than real time: the playout buffer paces it).
    ws.send(Message::Binary(tone(1000.0, 4000).into())).await.expect("send");
    let (audio, _) = frames(&mut ws, 100).await;
    assert_eq!(heard(&audio, &[440.0, 1000.0]), Some(440.0), "the agent hears baresip's 440 Hz");

    send_json(&mut ws, json!({"event": "dtmf", "digits": "5"})).await;
    baresip.wait_log("received event: '5'", Duration::from_secs(10)).await;

    baresip.wait_received_secs(2.0, Duration::from_secs(10)).await;
    let (received, rate) = baresip.received_audio();
    let skip = rate as usize / 2;
    assert!(received.len() > skip + rate as usize, "baresip recorded {} samples", received.len());
    let tail = &received[received.len() - rate as usize..];
    assert_eq!(dominant_frequency(tail, rate, &[440.0, 1000.0]), Some(1000.0), "baresip hears the agent's 1 kHz");

    // Closing the socket hangs up: BYE reaches baresip.
    ws.close(None).await.expect("close");
    baresip.wait_event("CALL_CLOSED", Duration::from_secs(10)).await;
    assert_eq!(call_row(&s, &call_id).await, ("completed".to_owned(), "local_hangup".to_owned()));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_to_baresip_udp() {
    outbound_to_baresip(Transport::Udp, "PCMU,PCMA").await;
}

/// G.722: 16 kHz end to end, no resampling on our side; baresip's recording is 16 kHz too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_to_baresip_g722() {
    outbound_to_baresip(Transport::Udp, "G722").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_to_baresip_pcma() {
    outbound_to_baresip(Transport::Udp, "PCMA").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_to_baresip_tcp() {
    outbound_to_baresip(Transport::Tcp, "PCMU").await;
}

/// A "carrier" (SIPp) that challenges the INVITE with 401 and verifies our digest, then answers
/// streaming 1 kHz; the API hang-up sends BYE, and SIPp counts a successful call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_digest_challenge_against_sipp() {
    let mut carrier = Sipp::uas("uas_401_answer", Transport::Udp)
        .set("user", "agent")
        .set("pass", "s3cret")
        .tone(1000.0, 10.0)
        .spawn();
    carrier.wait_listening(Duration::from_secs(10));
    let (s, token) = server(&format!("sip:agent:s3cret@{}", carrier.addr()), free_sip_port()).await;

    let dialed = dial(&s, &token, NUMBER, FAR).await;
    let call_id = dialed["call_id"].as_str().expect("call_id").to_owned();
    let mut ws = connect(dialed["stream_url"].as_str().expect("stream_url"), &token).await;
    let connected = event(&mut ws).await;
    if connected["state"] != "in_progress" {
        until_event(&mut ws, "answered").await;
    }
    let (audio, _) = frames(&mut ws, 75).await;
    assert_eq!(heard(&audio, &[440.0, 1000.0]), Some(1000.0), "the agent hears the carrier's 1 kHz");

    let resp = s.post("/sms/voice/hangup", Some(&token), &json!({"call_id": call_id})).await;
    assert_eq!(resp.status(), 200);
    let outcome = carrier.wait(Duration::from_secs(20)).await;
    assert!(outcome.all_ok(), "{}", outcome.report());
    assert!(outcome.logs.contains("AUTH_OK"), "the carrier verified our digest: {}", outcome.report());
    assert_eq!(call_row(&s, &call_id).await, ("completed".to_owned(), "local_hangup".to_owned()));
    s.stop().await;
}

/// A trunk that answers 486: the dial reports `busy`, the call is stored busy, SIPp got its ACK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_busy_from_sipp() {
    let mut carrier = Sipp::uas("uas_486", Transport::Udp).spawn();
    carrier.wait_listening(Duration::from_secs(10));
    let (s, token) = server(&format!("sip:{}", carrier.addr()), free_sip_port()).await;
    let dialed = dial(&s, &token, NUMBER, FAR).await;
    assert_eq!(dialed["state"], "busy", "{dialed}");
    let call_id = dialed["call_id"].as_str().expect("call_id");
    assert_eq!(call_row(&s, call_id).await, ("busy".to_owned(), "busy".to_owned()));
    let outcome = carrier.wait(Duration::from_secs(20)).await;
    assert!(outcome.all_ok(), "{}", outcome.report());
    s.stop().await;
}

/// A SIPp caller streaming 1 kHz: the presence socket rings, the agent's stream hears the tone,
/// and the caller's BYE ends the call with `remote_hangup`.
async fn inbound_from_sipp(transport: Transport) {
    let sip_port = free_sip_port();
    // The trunk is 127.0.0.1: INVITEs from there are accepted.
    let (s, token) = server("sip:127.0.0.1:5999", sip_port).await;
    let mut presence = connect(&ws_url(&s, &format!("/sms/voice/presence/{NUMBER}")), &token).await;
    let target = format!("127.0.0.1:{sip_port}").parse().expect("addr");
    let mut caller = Sipp::uac("uac_tone", target, NUMBER, transport).set("hold_ms", 3000).tone(1000.0, 10.0).spawn();

    let ringing = event(&mut presence).await;
    assert_eq!(ringing["event"], "ringing");
    let mut ws = connect(ringing["stream_url"].as_str().expect("stream_url"), &token).await;
    let connected = event(&mut ws).await;
    assert_eq!((connected["direction"].as_str(), connected["to"].as_str()), (Some("inbound"), Some(NUMBER)));
    assert_eq!(connected["upstream"]["codec"], "PCMU");
    until_event(&mut ws, "answered").await;
    ws.send(Message::Binary(tone(440.0, 2000).into())).await.expect("send");
    let (audio, _) = frames(&mut ws, 75).await;
    assert_eq!(heard(&audio, &[440.0, 1000.0]), Some(1000.0), "the agent hears the caller's 1 kHz");

    let (hangup, _) = until_closed(&mut ws).await;
    assert_eq!(hangup["reason"], "remote_hangup");
    let outcome = caller.wait(Duration::from_secs(20)).await;
    assert!(outcome.all_ok(), "{}", outcome.report());
    let call_id = ringing["call_id"].as_str().expect("call_id");
    assert_eq!(call_row(&s, call_id).await, ("completed".to_owned(), "remote_hangup".to_owned()));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_from_sipp_udp() {
    inbound_from_sipp(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_from_sipp_tcp() {
    inbound_from_sipp(Transport::Tcp).await;
}

/// No agent on the presence socket: 486; a number we do not hold: 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_refused_busy_and_not_found() {
    let sip_port = free_sip_port();
    let (s, _token) = server("sip:127.0.0.1:5999", sip_port).await;
    let target = format!("127.0.0.1:{sip_port}").parse().expect("addr");
    let mut busy = Sipp::uac("uac_expect_486", target, NUMBER, Transport::Udp).spawn();
    let outcome = busy.wait(Duration::from_secs(20)).await;
    assert!(outcome.all_ok(), "486 expected: {}", outcome.report());
    let mut unknown = Sipp::uac("uac_expect_404", target, "+19995550000", Transport::Tcp).spawn();
    let outcome = unknown.wait(Duration::from_secs(20)).await;
    assert!(outcome.all_ok(), "404 expected: {}", outcome.report());
    let busy_calls = s.scalar("SELECT COUNT(*) FROM calls WHERE state = 'busy' AND direction = 'inbound'").await;
    assert_eq!(busy_calls, 1);
    s.stop().await;
}

/// SIPp plays RFC 2833 captures of 1, 2, 3 (the end packet three times each): the agent gets
/// each digit once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_dtmf_from_sipp() {
    let sip_port = free_sip_port();
    let (s, token) = server("sip:127.0.0.1:5999", sip_port).await;
    let mut presence = connect(&ws_url(&s, &format!("/sms/voice/presence/{NUMBER}")), &token).await;
    let target = format!("127.0.0.1:{sip_port}").parse().expect("addr");
    let mut caller = Sipp::uac("uac_dtmf", target, NUMBER, Transport::Udp).set("hold_ms", 1000).spawn();
    let ringing = event(&mut presence).await;
    let mut ws = connect(ringing["stream_url"].as_str().expect("stream_url"), &token).await;
    let mut digits = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = match tokio::time::timeout(Duration::from_secs(10), futures_util::StreamExt::next(&mut ws)).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(&t).expect("JSON"),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Err(_) => break,
            _ => continue,
        };
        if v["event"] == "dtmf" {
            digits.push_str(v["digit"].as_str().expect("digit"));
        }
        if v["event"] == "hangup" || Instant::now() > deadline {
            break;
        }
    }
    assert_eq!(digits, "123");
    let outcome = caller.wait(Duration::from_secs(20)).await;
    assert!(outcome.all_ok(), "{}", outcome.report());
    s.stop().await;
}

/// A credential trunk: the bridge registers, answering the registrar's 401 with the trunk's
/// credentials; readiness follows the registration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_a_digest_registrar() {
    let mut registrar = Sipp::uas("uas_register", Transport::Udp).set("user", "agent").set("pass", "s3cret").spawn();
    registrar.wait_listening(Duration::from_secs(10));
    let trunk = format!("sip:agent:s3cret@{}", registrar.addr());
    let sip_port = free_sip_port();
    let s = TestServer::start_with(Backend::Sqlite, move |c| {
        c.sip.trunk = Some(Secret::new(trunk));
        c.sip.listen = format!("127.0.0.1:{sip_port}");
        c.sip.register = true;
    })
    .await;
    let outcome = registrar.wait(Duration::from_secs(20)).await;
    assert!(outcome.all_ok(), "{}", outcome.report());
    assert!(
        outcome.logs.contains(&format!("REGISTER_OK contact=sip:agent@127.0.0.1:{sip_port}")),
        "registered our contact: {}",
        outcome.report()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = s.get("/health/ready", None).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        if status == 200 {
            assert_eq!(body["checks"]["voice_network"]["status"], "ok");
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}

async fn put(s: &TestServer, path: &str, token: &str, body: &Value) -> reqwest::Response {
    s.http.put(s.url(path)).bearer_auth(token).json(body).send().await.expect("PUT")
}

/// A server on the trunk `trunk` that may bridge to SIP endpoints on loopback.
async fn bridging_server(trunk: &str, sip_port: u16) -> (TestServer, String) {
    let trunk = trunk.to_owned();
    let s = TestServer::start_with(Backend::Sqlite, move |c| {
        c.sip.trunk = Some(Secret::new(trunk));
        c.sip.listen = format!("127.0.0.1:{sip_port}");
        c.sip.allow_private_endpoints = true;
        c.rtp.ports = "46000-46999".to_owned();
    })
    .await;
    let added = s.post("/admin/numbers", Some(ADMIN_KEY), &json!({"numbers": [NUMBER]})).await;
    assert_eq!(added.status(), 200);
    let (token, _) = s.grant(&wallet(1), 30).await;
    (s, token)
}

fn hears(baresip: &Baresip, want: f32, other: f32) {
    let (received, rate) = baresip.received_audio();
    assert!(received.len() > rate as usize, "{} samples recorded", received.len());
    let tail = &received[received.len() - rate as usize..];
    assert_eq!(dominant_frequency(tail, rate, &[want, other]), Some(want));
}

/// `callback_sip_uri`: the far end (baresip playing 440 Hz) and the agent's own SIP endpoint
/// (baresip playing 1 kHz) are bridged through us; each records the other's tone; a digit the
/// agent's endpoint sends reaches the far end; the API hang-up ends both legs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_bridged_to_the_agents_sip_endpoint() {
    let far = Baresip::spawn_with(BaresipOptions {
        user: FAR.to_owned(),
        rtp_ports: Some("20000-20999".to_owned()),
        ..BaresipOptions::default()
    });
    let agent = Baresip::spawn_with(BaresipOptions {
        user: "agent".to_owned(),
        tone_hz: 1000.0,
        rtp_ports: Some("21000-21999".to_owned()),
        ..BaresipOptions::default()
    });
    let (s, token) = bridging_server(&format!("sip:127.0.0.1:{}", far.sip_port), free_sip_port()).await;
    let resp = s
        .post(
            "/sms/voice/dial",
            Some(&token),
            &json!({"phone_number": NUMBER, "to": FAR, "callback_sip_uri": agent.uri()}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let dialed: Value = resp.json().await.expect("json");
    let call_id = dialed["call_id"].as_str().expect("call_id").to_owned();
    far.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)).await;
    agent.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)).await;
    // The call has no WebSocket stream: its stream is taken.
    let stream = dialed["stream_url"].as_str().expect("stream_url");
    let refused = support::ws::refused(stream, Some(&token)).await;
    assert_eq!(refused, 409);

    far.wait_received_secs(2.0, Duration::from_secs(10)).await;
    agent.wait_received_secs(2.0, Duration::from_secs(10)).await;
    hears(&far, 1000.0, 440.0);
    hears(&agent, 440.0, 1000.0);
    agent.send_dtmf('7').await;
    far.wait_log("received event: '7'", Duration::from_secs(10)).await;

    let resp = s.post("/sms/voice/hangup", Some(&token), &json!({"call_id": call_id})).await;
    assert_eq!(resp.status(), 200);
    far.wait_event("CALL_CLOSED", Duration::from_secs(10)).await;
    agent.wait_event("CALL_CLOSED", Duration::from_secs(10)).await;
    assert_eq!(call_row(&s, &call_id).await, ("completed".to_owned(), "local_hangup".to_owned()));
    s.stop().await;
}

/// `inbound_sip_uri`: a SIPp caller streaming 1 kHz to our number is bridged to the agent's
/// baresip (playing 440 Hz), which records the caller; the caller's BYE ends both legs. Bad
/// URIs are refused with 400, and `null` restores presence ringing (no presence: 486).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_bridged_to_the_agents_sip_endpoint() {
    let agent = Baresip::spawn_with(BaresipOptions { user: "agent".to_owned(), ..BaresipOptions::default() });
    let sip_port = free_sip_port();
    let (s, token) = bridging_server("sip:127.0.0.1:5999", sip_port).await;
    for bad in ["http://example.com", "sips:agent@example.com", "tel:+14155550123", "sip:"] {
        let resp = put(&s, "/sms/voice/inbound", &token, &json!({"inbound_sip_uri": bad})).await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
    let resp = put(&s, "/sms/voice/inbound", &token, &json!({"inbound_sip_uri": agent.uri()})).await;
    assert_eq!(resp.status(), 200);
    let route: Value = s.get("/sms/voice/inbound", Some(&token)).await.json().await.expect("json");
    assert_eq!(route, json!({"phone_number": NUMBER, "inbound_sip_uri": agent.uri()}));

    let target = format!("127.0.0.1:{sip_port}").parse().expect("addr");
    let mut caller =
        Sipp::uac("uac_tone", target, NUMBER, Transport::Udp).set("hold_ms", 3000).tone(1000.0, 10.0).spawn();
    agent.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)).await;
    agent.wait_received_secs(2.0, Duration::from_secs(10)).await;
    hears(&agent, 1000.0, 440.0);
    let outcome = caller.wait(Duration::from_secs(20)).await;
    assert!(outcome.all_ok(), "{}", outcome.report());
    agent.wait_event("CALL_CLOSED", Duration::from_secs(10)).await;
    let state = s.text("SELECT state FROM calls WHERE direction = 'inbound'").await;
    assert_eq!(state, "completed");

    // Back to presence: nobody listens, so the next caller is busy.
    let resp = put(&s, "/sms/voice/inbound", &token, &json!({"inbound_sip_uri": null})).await;
    assert_eq!(resp.status(), 200);
    let mut busy = Sipp::uac("uac_expect_486", target, NUMBER, Transport::Udp).spawn();
    let outcome = busy.wait(Duration::from_secs(20)).await;
    assert!(outcome.all_ok(), "{}", outcome.report());
    s.stop().await;
}

/// Where a SIP endpoint cannot be used the dial is a clear 400: on the simulated network, and
/// towards a loopback address when private endpoints are not allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_sip_uri_refusals() {
    let sim = TestServer::start(Backend::Sqlite).await;
    let (token, number) = sim.grant(&wallet(1), 30).await;
    let body = json!({"phone_number": number, "to": FAR, "callback_sip_uri": "sip:agent@192.0.2.10"});
    let resp = sim.post("/sms/voice/dial", Some(&token), &body).await;
    let err = support::expect_error(resp, 400, "invalid_request").await;
    assert!(err["message"].as_str().expect("message").contains("SIP trunk"), "{err}");
    sim.stop().await;

    let (s, token) = server("sip:127.0.0.1:5999", free_sip_port()).await;
    // A malformed URI is refused before any call exists: no row in the history.
    let body = json!({"phone_number": NUMBER, "to": FAR, "callback_sip_uri": "agent at example"});
    support::expect_error(s.post("/sms/voice/dial", Some(&token), &body).await, 400, "invalid_request").await;
    assert_eq!(s.scalar("SELECT COUNT(*) FROM calls").await, 0);
    let body = json!({"phone_number": NUMBER, "to": FAR, "callback_sip_uri": "sip:agent@127.0.0.1:5070"});
    let resp = s.post("/sms/voice/dial", Some(&token), &body).await;
    let err = support::expect_error(resp, 400, "invalid_request").await;
    assert!(err["message"].as_str().expect("message").contains("public"), "{err}");
    let body = json!({"phone_number": NUMBER, "to": FAR, "callback_sip_uri": "sip:agent@h;transport=tls"});
    support::expect_error(s.post("/sms/voice/dial", Some(&token), &body).await, 400, "invalid_request").await;
    // Nothing is left active: the number can call again.
    assert_eq!(s.scalar("SELECT COUNT(*) FROM calls WHERE ended_at IS NULL").await, 0);
    s.stop().await;
}
