//! SMS over SMPP against an independent SMSC: the node-smpp simulator in `tests/peers/smsc.mjs`,
//! started per test on 127.0.0.1. Every assertion is on what crossed the wire (the simulator's
//! records of submits, reassembled messages, MO acknowledgements) or on rows and API answers.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::peers::Smsc;
use support::tls::{Stunnel, TestCa};
use support::{ADMIN_KEY, Backend, ServeProcess, TestServer, wallet};

const NUMBER: &str = "+15550100001";
const PEER: &str = "+15557654321";

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.expect("json body")
}

/// A server whose SMS network is the simulator; one imported number, comp-granted.
async fn server_on(backend: Backend, smsc: &Smsc, tweak: impl FnOnce(&mut agentline::Config)) -> (TestServer, String) {
    let url = smsc.url();
    let s = TestServer::start_with(backend, |c| {
        c.smpp_url = Some(agentline::config::Secret::new(url));
        c.smpp.reconnect_max_secs = 1;
        c.smpp.throttle_pause_ms = 50;
        tweak(c);
    })
    .await;
    // With a carrier configured nothing is seeded: the pool is what the operator imports.
    assert_eq!(json_of(s.get("/sms/availability", None).await).await, json!({"available": 0}));
    let added = s.post("/admin/numbers", Some(ADMIN_KEY), &json!({"numbers": [NUMBER]})).await;
    assert_eq!(added.status(), 200);
    let (token, number) = s.grant(&wallet(1), 30).await;
    assert_eq!(number, NUMBER);
    wait_ready(&s).await;
    (s, token)
}

async fn wait_ready(s: &TestServer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let resp = s.get("/health/ready", None).await;
        if resp.status() == 200 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready: {}", resp.text().await.unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send(s: &TestServer, token: &str, to: &str, body: &str) -> Value {
    let resp = s.post("/sms/send", Some(token), &json!({"to": to, "body": body})).await;
    assert_eq!(resp.status(), 200, "send");
    json_of(resp).await
}

/// Polls the table until `sql` (a COUNT) reaches `want`; the rows are the observable outcome.
async fn until_count(s: &TestServer, sql: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = s.scalar(sql).await;
        if got == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{sql}: {got}, expected {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn texts(state: &Value) -> HashMap<String, Value> {
    state["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["text"].as_str().expect("text").to_owned(), m.clone()))
        .collect()
}

both!(outbound_encodings_segments_and_receipts, inbound_single_and_multipart_reach_receive);

async fn outbound_encodings_segments_and_receipts(backend: Backend) {
    let smsc = Smsc::start(&[]);
    let (s, token) = server_on(backend, &smsc, |_| {}).await;
    let long = "The quick brown fox jumps over the lazy dog 0123456789. ".repeat(7) + "end"; // 395 septets
    let bodies = ["Your code is 123456", "Price: 5€ [ok] {x} ~^|\\", "Hi 😀 ж", long.as_str()];
    for body in bodies {
        send(&s, &token, PEER, body).await;
    }
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE direction = 'sent' AND status = 'delivered'", 4).await;

    let state = smsc.state().await;
    let at_smsc = texts(&state);
    assert_eq!(at_smsc.len(), 4, "each message reached the SMSC once: {at_smsc:?}");
    let expect = [(bodies[0], 1, 0), (bodies[1], 1, 0), (bodies[2], 1, 8), (bodies[3], 3, 0)];
    for (body, parts, coding) in expect {
        let m = &at_smsc[body];
        assert_eq!((m["parts"].as_u64(), m["data_coding"].as_u64()), (Some(parts), Some(coding)), "{body}");
        assert_eq!(m["source_addr"], "15550100001");
        assert_eq!(m["destination_addr"], "15557654321");
    }
    for submit in state["submits"].as_array().expect("submits") {
        assert_eq!((submit["source_addr_ton"].as_u64(), submit["source_addr_npi"].as_u64()), (Some(1), Some(1)));
        assert_eq!((submit["dest_addr_ton"].as_u64(), submit["dest_addr_npi"].as_u64()), (Some(1), Some(1)));
        assert_eq!(submit["registered_delivery"], 1);
        let parts = submit["udh"]["total"].as_u64().unwrap_or(1);
        assert_eq!(submit["esm_class"].as_u64(), Some(if parts > 1 { 0x40 } else { 0 }));
        assert!(submit["short_message_hex"].as_str().expect("hex").len() / 2 <= 6 + 153);
    }
    // Extension characters travel as ESC pairs (€ = 1B 65), counted as two septets.
    let euro = state["submits"].as_array().expect("submits").iter().find(|x| x["text"] == bodies[1]).expect("sent");
    assert!(euro["short_message_hex"].as_str().expect("hex").to_lowercase().contains("1b65"));
    assert_eq!(s.scalar("SELECT MAX(segments) FROM messages WHERE direction = 'sent'").await, 3);
    assert_eq!(s.scalar("SELECT MIN(attempts) FROM messages WHERE direction = 'sent'").await, 1);
    // The history exposes the segments and the final state.
    let history = json_of(s.get("/sms/messages?direction=sent", Some(&token)).await).await;
    let long_row = history["messages"].as_array().expect("rows").iter().find(|m| m["body"] == long.as_str()).cloned();
    let long_row = long_row.expect("long message listed");
    assert_eq!((long_row["segments"].as_i64(), long_row["status"].as_str()), (Some(3), Some("delivered")));
    s.stop().await;
}

async fn inbound_single_and_multipart_reach_receive(backend: Backend) {
    let smsc = Smsc::start(&["--mo-redeliver=false"]);
    let (s, token) = server_on(backend, &smsc, |_| {}).await;
    // A long-poll waiting before the MO exists is answered by it.
    let poll = {
        let http = s.http.clone();
        let url = s.url("/sms/receive?wait=20");
        let token = token.clone();
        tokio::spawn(
            async move { http.get(url).bearer_auth(token).send().await.expect("receive").json::<Value>().await },
        )
    };
    s.get("/metrics", None).await; // the server is up; the poll is registered below
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !s.get("/metrics", None).await.text().await.expect("metrics").contains("agentline_sms_longpoll_waiting 1") {
        assert!(tokio::time::Instant::now() < deadline, "long-poll never parked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    smsc.mo(json!({"from": "+15557654321", "to": NUMBER, "text": "Your code is 424242"})).await;
    let got = poll.await.expect("task").expect("json");
    assert_eq!(got["count"], 1);
    assert_eq!(got["messages"][0]["body"], "Your code is 424242");
    assert_eq!(got["messages"][0]["from_number"], "+15557654321");

    // Concatenated: 8-bit UDH in reverse order, 16-bit UDH, SAR TLVs, UCS-2 across parts.
    let long = "Part of a long inbound message that the handset split. ".repeat(6);
    let ucs2 = "Привет 😀 ".repeat(20);
    let specs = [
        json!({"from": "+15557654321", "to": NUMBER, "text": long, "parts": 3, "order": "reverse"}),
        json!({"from": "+15557654322", "to": NUMBER, "text": long, "parts": 2, "udh16": true}),
        json!({"from": "+15557654323", "to": NUMBER, "text": long, "parts": 4, "sar": true}),
        json!({"from": "+15557654324", "to": NUMBER, "text": ucs2, "parts": 3}),
        json!({"from": "ACME", "to": NUMBER, "text": "alphanumeric sender"}),
    ];
    for spec in &specs {
        smsc.mo(spec.clone()).await;
    }
    smsc.wait("mo_acked", 1 + specs.len() as u64).await;
    let mut received: Vec<Value> = Vec::new();
    while received.len() < specs.len() {
        let page = json_of(s.get("/sms/receive?wait=5", Some(&token)).await).await;
        received.extend(page["messages"].as_array().expect("messages").iter().cloned());
    }
    let by_sender: HashMap<&str, &str> = received
        .iter()
        .map(|m| (m["from_number"].as_str().expect("from"), m["body"].as_str().expect("body")))
        .collect();
    assert_eq!(by_sender["+15557654321"], long);
    assert_eq!(by_sender["+15557654322"], long);
    assert_eq!(by_sender["+15557654323"], long);
    assert_eq!(by_sender["+15557654324"], ucs2);
    assert_eq!(by_sender["ACME"], "alphanumeric sender");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM inbound_parts").await, 0, "joined parts are removed");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM messages WHERE direction = 'received'").await, 6);

    // Every part was acknowledged only as stored; a number we do not serve is refused.
    let state = smsc.state().await;
    for mo in state["mo"].as_array().expect("mo") {
        assert_eq!(mo["acked_parts"], mo["parts"], "{mo}");
    }
    let id = smsc.mo(json!({"from": "+15557654321", "to": "+15550109999", "text": "not ours"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let state = smsc.state().await;
        let mo = state["mo"].as_array().expect("mo").iter().find(|m| m["id"] == id).cloned().expect("recorded");
        if !mo["statuses"][0].is_null() {
            break mo["statuses"][0].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "never answered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status, 0x0B, "ESME_RINVDSTADR for a number we do not serve");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_before_responses_and_ids_in_other_forms() {
    let smsc = Smsc::start(&["--dlr-first", "--no-dlr-tlv", "--dlr-id-style", "decimal"]);
    let (s, token) = server_on(Backend::Sqlite, &smsc, |_| {}).await;
    for i in 0..5 {
        send(&s, &token, PEER, &format!("race {i}")).await;
    }
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE status = 'delivered'", 5).await;
    smsc.config(json!({"dlr_first": false, "dlr_tlv": true, "dlr_id_style": "lower_nozero"})).await;
    for i in 0..5 {
        send(&s, &token, PEER, &format!("lower {i}")).await;
    }
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE status = 'delivered'", 10).await;
    // The carrier id kept is the canonical form of the submit_sm_resp id.
    let state = smsc.state().await;
    let first_id = state["messages"][0]["message_ids"][0].as_str().expect("id").to_owned();
    let canonical = first_id.trim_start_matches('0').to_lowercase();
    assert_eq!(s.scalar(&format!("SELECT COUNT(*) FROM messages WHERE carrier_id = '{canonical}'")).await, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_pauses_and_resends_without_failures_or_duplicates() {
    let smsc = Smsc::start(&["--throttle-every", "3", "--queue-full-every", "7"]);
    let (s, token) = server_on(Backend::Sqlite, &smsc, |_| {}).await;
    let n = 20;
    for i in 0..n {
        send(&s, &token, PEER, &format!("throttled {i}")).await;
    }
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE status = 'delivered'", n).await;
    let state = smsc.state().await;
    assert!(state["counters"]["throttled"].as_i64().expect("n") >= 3, "{}", state["counters"]);
    assert!(state["counters"]["queue_full"].as_i64().expect("n") >= 1, "{}", state["counters"]);
    assert_eq!(state["counters"]["accepted"], n, "each message accepted exactly once");
    assert_eq!(texts(&state).len(), n as usize);
    assert_eq!(s.scalar("SELECT MAX(attempts) FROM messages").await, 1, "throttling spends no attempt");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_then_kept_with_their_code() {
    let smsc = Smsc::start(&["--fail-prefix", "1666", "--reject-prefix", "1888"]);
    let (s, token) = server_on(Backend::Sqlite, &smsc, |_| {}).await;
    send(&s, &token, "+16665550000", "unreachable handset").await;
    send(&s, &token, "+18885550000", "invalid destination").await;
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE status = 'failed'", 2).await;
    // An undeliverable receipt: three submissions in all, then failed with err:001 kept.
    let undeliv = "SELECT attempts FROM messages WHERE peer = '+16665550000'";
    assert_eq!(s.scalar(undeliv).await, 3);
    assert_eq!(s.scalar("SELECT error_code FROM messages WHERE peer = '+16665550000'").await, 1);
    // A permanent rejection (ESME_RINVDSTADR) is not retried.
    assert_eq!(s.scalar("SELECT attempts FROM messages WHERE peer = '+18885550000'").await, 1);
    assert_eq!(s.scalar("SELECT error_code FROM messages WHERE peer = '+18885550000'").await, 0x0B);
    let state = smsc.state().await;
    let submits = state["submits"].as_array().expect("submits");
    let count = |dest: &str| submits.iter().filter(|x| x["destination_addr"] == dest).count();
    assert_eq!((count("16665550000"), count("18885550000")), (3, 1));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_timeouts_are_ambiguous_and_never_resent() {
    let smsc = Smsc::start(&["--no-resp-prefix", "1777"]);
    let (s, token) = server_on(Backend::Sqlite, &smsc, |c| c.smpp.response_timeout_ms = 300).await;
    send(&s, &token, "+17775550000", "into the void").await;
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE status = 'unknown'", 1).await;
    // Later traffic flows (several dispatcher scans pass) and the silent one is never resent.
    for i in 0..3 {
        send(&s, &token, PEER, &format!("after {i}")).await;
        until_count(&s, "SELECT COUNT(*) FROM messages WHERE status = 'delivered'", i + 1).await;
    }
    let state = smsc.state().await;
    let silent =
        state["submits"].as_array().expect("submits").iter().filter(|x| x["destination_addr"] == "17775550000");
    assert_eq!(silent.count(), 1);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM messages WHERE status = 'unknown'").await, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_link_is_restored_with_nothing_lost_or_sent_twice() {
    let smsc = Smsc::start(&[]);
    let (s, token) = server_on(Backend::Sqlite, &smsc, |_| {}).await;
    smsc.config(json!({"drop_after_submits": 15})).await;
    let n = 60;
    for i in 0..n {
        send(&s, &token, PEER, &format!("burst {i}")).await;
    }
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE status = 'delivered'", n).await;
    let state = smsc.state().await;
    assert!(state["binds"].as_array().expect("binds").len() >= 2, "the link was re-established");
    assert_eq!(state["counters"]["dropped"], 1);
    assert_eq!(state["counters"]["accepted"], n, "every message accepted exactly once");
    let at_smsc = texts(&state);
    assert_eq!(at_smsc.len(), n as usize);
    for i in 0..n {
        assert_eq!(at_smsc[&format!("burst {i}")]["parts"], 1);
    }
    // An abrupt drop with nothing in flight: ready again once rebound.
    assert!(smsc.drop_connections().await >= 1);
    smsc.wait("bound", 1).await;
    wait_ready(&s).await;
    send(&s, &token, PEER, "after the drop").await;
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE status = 'delivered'", n + 1).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_with_credentials_keeps_alive_and_unbinds_on_shutdown() {
    let smsc = Smsc::start(&["--system-id", "agent", "--password", "secret"]);
    // A wrong password: not ready, and the readiness answer says why.
    let bad = smsc.url().replace("secret", "wrong");
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.smpp_url = Some(agentline::config::Secret::new(bad));
        c.smpp.reconnect_max_secs = 1;
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let resp = s.get("/health/ready", None).await;
        assert_eq!(resp.status(), 503);
        let body = resp.text().await.expect("text");
        if body.contains("0xe") {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "no bind failure reported: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!body.contains("wrong"), "the password never appears: {body}");
    s.stop().await;

    let (s, _token) = server_on(Backend::Sqlite, &smsc, |c| c.smpp.enquire_link_secs = 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let state = loop {
        let state = smsc.state().await;
        if state["enquire_links"].as_u64().unwrap_or(0) >= 1 {
            break state;
        }
        assert!(tokio::time::Instant::now() < deadline, "no enquire_link within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let bind = state["binds"].as_array().expect("binds").iter().rev().find(|b| b["status"] == 0).cloned();
    let bind = bind.expect("a successful bind");
    assert_eq!(bind["command"], "bind_transceiver");
    assert_eq!(bind["system_id"], "agent");
    assert_eq!(bind["interface_version"], 0x34);
    s.stop().await;
    assert_eq!(smsc.state().await["unbinds"], 1, "graceful shutdown unbinds");
}

/// SMPP over TLS (`smpps://`), TLS terminated by Debian's stunnel in front of the simulator:
/// submits, receipts and MOs cross it, a dropped link is restored, and an SMSC whose
/// certificate we do not trust is never bound to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_sends_receipts_and_mo_and_restores_a_dropped_link() {
    let smsc = Smsc::start(&["--mo-redeliver=false"]);
    let ca = TestCa::new("agentline test CA");
    let front = Stunnel::start(([127, 0, 0, 1], smsc.smpp_port).into(), &ca.issue("smsc", &["DNS:localhost"]));
    let url = format!("smpps://localhost:{}", front.port);

    // Without the CA the handshake fails: never bound, readiness says why.
    let untrusted = url.clone();
    let s = TestServer::start_with(Backend::Sqlite, move |c| {
        c.smpp_url = Some(agentline::config::Secret::new(untrusted));
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready: Value = s.get("/health/ready", None).await.json().await.expect("json");
        let reason = ready["checks"]["sms_network"]["reason"].as_str().unwrap_or_default().to_owned();
        if reason.starts_with("SMSC link down: TLS handshake failed: invalid peer certificate") {
            assert_eq!(ready["status"], "unavailable");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no TLS refusal reported: {ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
    assert_eq!(smsc.state().await["binds"].as_array().expect("binds").len(), 0, "never bound");

    let ca_file = ca.cert.to_str().expect("utf-8").to_owned();
    let (s, token) = server_on(Backend::Sqlite, &smsc, move |c| {
        c.smpp_url = Some(agentline::config::Secret::new(url));
        c.tls.ca_file = Some(ca_file);
    })
    .await;
    for i in 0..3 {
        send(&s, &token, PEER, &format!("over tls {i}")).await;
    }
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE direction = 'sent' AND status = 'delivered'", 3).await;
    assert_eq!(texts(&smsc.state().await).len(), 3, "each message reached the SMSC once");
    smsc.mo(json!({"from": PEER, "to": NUMBER, "text": "Your code is 515151"})).await;
    let got = json_of(s.get("/sms/receive?wait=10", Some(&token)).await).await;
    assert_eq!(got["messages"][0]["body"], "Your code is 515151", "{got}");

    // The SMSC drops the link: rebound through TLS, and sending goes on.
    assert!(smsc.drop_connections().await >= 1);
    smsc.wait("bound", 1).await;
    wait_ready(&s).await;
    send(&s, &token, PEER, "after the drop").await;
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE direction = 'sent' AND status = 'delivered'", 4).await;
    assert!(smsc.state().await["binds"].as_array().expect("binds").len() >= 2, "the link was re-established");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_smsc_means_not_ready_and_messages_wait_queued() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.smpp_url = Some(agentline::config::Secret::new(format!("smpp://agent:secret@127.0.0.1:{port}")));
    })
    .await;
    let resp = s.get("/health/ready", None).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.text().await.expect("text").contains("SMSC link down"));
    s.post("/admin/numbers", Some(ADMIN_KEY), &json!({"numbers": [NUMBER]})).await;
    let (token, _) = s.grant(&wallet(1), 30).await;
    send(&s, &token, PEER, "waits for the link").await;
    // Give the dispatcher's scan (every second) two chances to spend attempts on a dead link.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(s.scalar("SELECT COUNT(*) FROM messages WHERE status = 'queued' AND attempts = 0").await, 1);
    // The SMSC comes up on that port: the message goes out on its first attempt.
    let smsc = Smsc::start(&["--port", &port.to_string()]);
    until_count(&s, "SELECT COUNT(*) FROM messages WHERE status = 'delivered' AND attempts = 1", 1).await;
    assert_eq!(smsc.state().await["counters"]["accepted"], 1);
    s.stop().await;
}

/// kill -9 during a burst of MOs: every MO the SMSC saw acknowledged is in the database, and the
/// ones it did not see acknowledged are delivered again after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_mo_burst_loses_nothing_acknowledged() {
    let smsc = Smsc::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/agentline.db", dir.path().display());
    let url = smsc.url();
    let envs = [
        ("AGENTLINE_LISTEN", "127.0.0.1:0"),
        ("AGENTLINE_DATABASE_URL", db.as_str()),
        ("AGENTLINE_ADMIN_KEY", ADMIN_KEY),
        ("AGENTLINE_SMPP_URL", url.as_str()),
        ("AGENTLINE_SMPP_RECONNECT_MAX_SECS", "1"),
        ("AGENTLINE_LOG", "warn,agentline=info"),
    ];
    let server = ServeProcess::spawn(&[], &envs);
    let http = reqwest::Client::new();
    let added = http
        .post(format!("{}/admin/numbers", server.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"numbers": [NUMBER]}))
        .send()
        .await
        .expect("add");
    assert_eq!(added.status(), 200);
    let granted = http
        .post(format!("{}/admin/subscriptions", server.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"wallet": wallet(1), "days": 30}))
        .send()
        .await
        .expect("grant");
    assert_eq!(granted.status(), 200);
    smsc.wait("bound", 1).await;

    // At most 16 MOs unacknowledged at a time, so the burst lasts hundreds of commits and the
    // kill, sent once 100 are acknowledged, lands mid-burst however fast the server stores them
    // (sent all at once, 10,000 were acknowledged before the kill once the writer got faster),
    // with MOs in flight when it lands.
    let n = 4_000;
    let burst = json!({"count": n, "from": "+15557654321", "to": NUMBER, "prefix": "otp ", "window": 16});
    smsc.mo_burst(burst).await;
    smsc.wait("mo_acked", 100).await;
    server.kill();
    let _ = server.wait();
    let acked_at_kill: Vec<String> = smsc.state().await["mo"]
        .as_array()
        .expect("mo")
        .iter()
        .filter(|m| m["acked_parts"] == 1)
        .map(|m| m["text"].as_str().expect("text").to_owned())
        .collect();
    assert!(acked_at_kill.len() < n, "the kill landed mid-burst ({} acked)", acked_at_kill.len());

    // Restart on the same database: the SMSC delivers the rest again.
    let server = ServeProcess::spawn(&[], &envs);
    smsc.wait("mo_acked", n as u64).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.expect("db");
    let stored: Vec<String> = sqlx::query_scalar("SELECT body FROM messages WHERE direction = 'received'")
        .fetch_all(&pool)
        .await
        .expect("rows");
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    for text in &acked_at_kill {
        assert!(stored.contains(text), "{text} was acknowledged to the SMSC but is not stored");
    }
    assert_eq!(stored.len(), n, "every MO is stored");
    pool.close().await;
    server.terminate();
    let (status, _) = server.wait();
    assert!(status.success());
}
