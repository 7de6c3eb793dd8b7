//! Voice over the simulated network, driven by real WebSocket clients (tokio-tungstenite):
//! presence ringing, both streams, tones heard by frequency analysis (Goertzel), frame size and
//! pacing, clear, mark, DTMF, every way a call ends, and the contract's error cases.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::goertzel::{dominant_frequency, goertzel_power};
use support::ws::{
    RATE, call_row, connect, dial, event, frames, next_event, refused, send_json, tone, until_closed, ws_url,
};
use support::{Backend, TestServer, expect_error, wallet};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A number outside the pool: answered by the simulator's echo callee.
const ECHO: &str = "+15005550006";

fn power(samples: &[i16], hz: f32) -> f64 {
    goertzel_power(samples, RATE, hz)
}

both!(two_agents_hear_each_other, echo_callee_clear_mark_dtmf_and_api_hangup, contract_errors);

async fn two_agents_hear_each_other(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (token_a, num_a) = s.grant(&wallet(1), 30).await;
    let (token_b, num_b) = s.grant(&wallet(2), 30).await;
    let mut presence_b = connect(&ws_url(&s, &format!("/sms/voice/presence/{num_b}")), &token_b).await;

    let dialed = dial(&s, &token_a, &num_a, &num_b).await;
    assert_eq!(dialed["state"], "ringing", "dial answers once the far end rings");
    let call_id = dialed["call_id"].as_str().expect("call_id");
    let ringing = event(&mut presence_b).await;
    assert_eq!(ringing["event"], "ringing");
    assert_eq!(ringing["caller"], num_a.as_str());
    let stream_b_url = ringing["stream_url"].as_str().expect("stream_url").to_owned();
    assert!(stream_b_url.starts_with("ws://"));

    let mut a = connect(dialed["stream_url"].as_str().expect("stream_url"), &token_a).await;
    let connected = event(&mut a).await;
    assert_eq!(connected["event"], "connected");
    assert_eq!(connected["call_id"], call_id);
    assert_eq!((connected["from"].as_str(), connected["to"].as_str()), (Some(num_a.as_str()), Some(num_b.as_str())));
    assert_eq!(connected["format"]["sample_rate"], 16000);
    assert_eq!(connected["upstream"]["codec"], "PCMU");
    assert_eq!(event(&mut a).await["event"], "ringing");

    let mut b = connect(&stream_b_url, &token_b).await;
    let connected_b = event(&mut b).await;
    assert_eq!(
        (connected_b["direction"].as_str(), connected_b["state"].as_str()),
        (Some("inbound"), Some("in_progress"))
    );
    assert_eq!(event(&mut b).await["event"], "answered");
    assert_eq!(event(&mut a).await["event"], "answered");

    // Each side speaks its own tone (faster than real time: the playout buffer paces it).
    a.send(Message::Binary(tone(500.0, 3000).into())).await.expect("send");
    b.send(Message::Binary(tone(1200.0, 3000).into())).await.expect("send");
    let started = Instant::now();
    let (heard_by_a, _) = frames(&mut a, 100).await;
    let elapsed = started.elapsed();
    let (heard_by_b, _) = frames(&mut b, 50).await;
    let candidates = [500.0, 1200.0];
    let tail_a = &heard_by_a[heard_by_a.len() - 16000..];
    let tail_b = &heard_by_b[heard_by_b.len() - 8000..];
    assert_eq!(dominant_frequency(tail_a, RATE, &candidates), Some(1200.0), "A hears B's tone");
    assert_eq!(dominant_frequency(tail_b, RATE, &candidates), Some(500.0), "B hears A's tone");
    assert!(power(tail_a, 1200.0) > 100.0 * power(tail_a, 500.0), "no crosstalk of A's own tone");
    // 100 frames of 20 ms: about two seconds of real time, not a burst.
    assert!(elapsed > Duration::from_millis(1700) && elapsed < Duration::from_millis(2600), "{elapsed:?}");

    // B hangs up by closing its stream: A hears why, both calls end, B's presence is told.
    b.close(None).await.expect("close");
    // The server completes the closing handshake (no bare reset).
    let answered = loop {
        match tokio::time::timeout(Duration::from_secs(5), b.next()).await.expect("in time") {
            Some(Ok(Message::Close(_))) => break true,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break false,
        }
    };
    assert!(answered, "the server answers the client's close frame");
    let (hangup, close) = until_closed(&mut a).await;
    assert_eq!(hangup["reason"], "remote_hangup");
    // Each end reason closes with its own code (docs/voice-protocol.md), the reason as text.
    assert_eq!(close, Some((CloseCode::Library(4001), "remote_hangup".to_owned())));
    let ended = event(&mut presence_b).await;
    assert_eq!((ended["event"].as_str(), ended["reason"].as_str()), (Some("ended"), Some("local_hangup")));
    assert_eq!(call_row(&s, call_id).await, ("completed".to_owned(), "remote_hangup".to_owned()));
    let calls: Value = s.get("/sms/voice/calls", Some(&token_b)).await.json().await.expect("json");
    assert_eq!(calls["calls"][0]["direction"], "inbound");
    assert_eq!(calls["calls"][0]["state"], "completed");
    assert_eq!(calls["calls"][0]["from_number"], num_a.as_str());
    assert!(calls["calls"][0]["duration_ms"].as_i64().expect("duration") >= 1000);

    // No presence socket: the callee is busy and the caller sees it.
    drop(presence_b);
    let deadline = Instant::now() + Duration::from_secs(5);
    let busy = loop {
        let d = dial(&s, &token_a, &num_a, &num_b).await;
        if d["state"] != "ringing" || Instant::now() > deadline {
            break d;
        }
        // The presence socket's close is still on its way: hang this one up and retry.
        s.post("/sms/voice/hangup", Some(&token_a), &json!({"call_id": d["call_id"]})).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(busy["state"], "busy");
    let calls: Value = s.get("/sms/voice/calls?direction=inbound", Some(&token_b)).await.json().await.expect("json");
    assert_eq!(calls["calls"][0]["state"], "busy");
    s.stop().await;
}

async fn echo_callee_clear_mark_dtmf_and_api_hangup(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.sim.answer_delay_ms = 50).await;
    let (token, num) = s.grant(&wallet(1), 30).await;
    let dialed = dial(&s, &token, &num, ECHO).await;
    assert!(dialed["state"] == "ringing" || dialed["state"] == "in_progress", "{dialed}");
    let call_id = dialed["call_id"].as_str().expect("call_id").to_owned();
    let mut ws = connect(dialed["stream_url"].as_str().expect("url"), &token).await;
    assert_eq!(event(&mut ws).await["event"], "connected");
    loop {
        if event(&mut ws).await["event"] == "answered" {
            break;
        }
    }

    // The echo returns the tone.
    ws.send(Message::Binary(tone(1000.0, 10_000).into())).await.expect("send");
    let (echoed, _) = frames(&mut ws, 40).await;
    let tail = &echoed[echoed.len() - 6400..];
    assert_eq!(dominant_frequency(tail, RATE, &[440.0, 1000.0, 2000.0]), Some(1000.0));
    assert!(power(tail, 1000.0) > 0.005, "the echo is loud: {}", power(tail, 1000.0));

    // Barge-in: clear drops the queued 9 s; the echo falls silent within a few frames.
    send_json(&mut ws, json!({"event": "clear"})).await;
    let mut heard = Vec::new();
    let cleared = next_event(&mut ws, &mut heard).await;
    assert_eq!(cleared["event"], "cleared");
    assert!(cleared["dropped_ms"].as_u64().expect("dropped_ms") > 5000, "{cleared}");
    let (after, _) = frames(&mut ws, 20).await;
    // The echo path holds a few frames in flight; after that, silence.
    let quiet = &after[8 * 320..];
    assert!(power(quiet, 1000.0) < 1e-6, "tone still playing after clear: {}", power(quiet, 1000.0));

    // mark: acknowledged once its audio has been played, not when received.
    ws.send(Message::Binary(tone(700.0, 300).into())).await.expect("send");
    send_json(&mut ws, json!({"event": "mark", "name": "sentence-1"})).await;
    let sent = Instant::now();
    let mark = loop {
        let e = event(&mut ws).await;
        if e["event"] == "mark" {
            break e;
        }
    };
    assert_eq!(mark["name"], "sentence-1");
    assert!(sent.elapsed() >= Duration::from_millis(250), "mark came back before its 300 ms played");

    // DTMF goes out and (through the echo) comes back as an event.
    send_json(&mut ws, json!({"event": "dtmf", "digits": "5#"})).await;
    let mut digits = String::new();
    while digits.len() < 2 {
        let e = event(&mut ws).await;
        if e["event"] == "dtmf" {
            digits.push_str(e["digit"].as_str().expect("digit"));
        }
    }
    assert_eq!(digits, "5#");

    // Bad input is reported and the call goes on.
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.expect("send");
    assert_eq!(event(&mut ws).await["code"], "odd_length");
    ws.send(Message::Text("not json".into())).await.expect("send");
    assert_eq!(event(&mut ws).await["code"], "bad_message");
    send_json(&mut ws, json!({"event": "teleport"})).await;
    assert_eq!(event(&mut ws).await["code"], "unknown_event");

    // A second stream on the same call is refused.
    assert_eq!(refused(dialed["stream_url"].as_str().expect("url"), Some(&token)).await, 409);

    // Hang up through the API: the stream hears why and closes.
    let resp = s.post("/sms/voice/hangup", Some(&token), &json!({"call_id": call_id})).await;
    assert_eq!(resp.json::<Value>().await.expect("json"), json!({"status": "hangup_sent"}));
    let (hangup, close) = until_closed(&mut ws).await;
    assert_eq!(hangup["reason"], "local_hangup");
    assert_eq!(close, Some((CloseCode::Library(4000), "local_hangup".to_owned())));
    assert_eq!(call_row(&s, &call_id).await, ("completed".to_owned(), "local_hangup".to_owned()));
    expect_error(s.post("/sms/voice/hangup", Some(&token), &json!({"call_id": call_id})).await, 404, "not_found").await;
    s.stop().await;
}

async fn contract_errors(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.sim.answer_delay_ms = 60_000).await;
    let (token, num) = s.grant(&wallet(1), 30).await;
    let (other, other_num) = s.grant(&wallet(2), 30).await;
    let post = |body: Value, token: Option<String>| {
        let s = &s;
        async move { s.post("/sms/voice/dial", token.as_deref(), &body).await }
    };
    expect_error(post(json!({"phone_number": num, "to": ECHO}), None).await, 401, "unauthorized").await;
    expect_error(post(json!({"phone_number": other_num, "to": ECHO}), Some(token.clone())).await, 403, "forbidden")
        .await;
    expect_error(post(json!({"phone_number": num, "to": "12345"}), Some(token.clone())).await, 400, "invalid_request")
        .await;
    expect_error(post(json!({"phone_number": num}), Some(token.clone())).await, 400, "invalid_request").await;
    expect_error(
        post(json!({"phone_number": num, "to": ECHO, "x": 1}), Some(token.clone())).await,
        400,
        "invalid_request",
    )
    .await;
    // The echo callee rings for a minute here: the first call holds the number.
    let first = dial(&s, &token, &num, ECHO).await;
    assert_eq!(first["state"], "ringing");
    expect_error(post(json!({"phone_number": num, "to": ECHO}), Some(token.clone())).await, 409, "conflict").await;
    expect_error(s.post("/sms/voice/hangup", Some(&token), &json!({"call_id": "call_nope"})).await, 404, "not_found")
        .await;
    // Another wallet's call is invisible: 404, not 403.
    expect_error(
        s.post("/sms/voice/hangup", Some(&other), &json!({"call_id": first["call_id"]})).await,
        404,
        "not_found",
    )
    .await;

    let presence = |n: &str| ws_url(&s, &format!("/sms/voice/presence/{n}"));
    assert_eq!(refused(&presence(&num), None).await, 401);
    assert_eq!(refused(&presence(&num), Some("an_wrong")).await, 401);
    assert_eq!(refused(&presence(&other_num), Some(&token)).await, 403);
    let stream = |id: &str| ws_url(&s, &format!("/sms/voice/stream/{id}"));
    let first_id = first["call_id"].as_str().expect("id");
    assert_eq!(refused(&stream(first_id), None).await, 401);
    assert_eq!(refused(&stream("call_nope"), Some(&token)).await, 404);
    assert_eq!(refused(&stream(first_id), Some(&other)).await, 404);
    // A plain GET (no upgrade) is told to upgrade.
    assert_eq!(s.get(&format!("/sms/voice/stream/{first_id}"), Some(&token)).await.status(), 426);

    // Browsers: the token as a subprotocol, answered with agentline.v1.
    let mut req = stream(first_id).into_client_request().expect("request");
    req.headers_mut().insert("Sec-WebSocket-Protocol", format!("agentline.v1, bearer.{token}").parse().expect("hdr"));
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.expect("subprotocol auth");
    assert_eq!(resp.headers()["sec-websocket-protocol"], "agentline.v1");
    assert_eq!(event(&mut ws).await["event"], "connected");
    // Closing before answer cancels the call.
    ws.close(None).await.expect("close");
    assert_eq!(call_row(&s, first_id).await, ("cancelled".to_owned(), "cancelled".to_owned()));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_calls_end_no_answer() {
    let s = TestServer::start_with(Backend::Sqlite, |c| c.voice.ring_timeout_secs = 1).await;
    let (token_a, num_a) = s.grant(&wallet(1), 30).await;
    let (token_b, num_b) = s.grant(&wallet(2), 30).await;
    let mut presence_b = connect(&ws_url(&s, &format!("/sms/voice/presence/{num_b}")), &token_b).await;
    let dialed = dial(&s, &token_a, &num_a, &num_b).await;
    let mut a = connect(dialed["stream_url"].as_str().expect("url"), &token_a).await;
    assert_eq!(event(&mut presence_b).await["event"], "ringing");
    let ended = event(&mut presence_b).await;
    assert_eq!((ended["event"].as_str(), ended["reason"].as_str()), (Some("ended"), Some("no_answer")));
    let (hangup, _) = until_closed(&mut a).await;
    assert_eq!(hangup["reason"], "no_answer");
    let call_id = dialed["call_id"].as_str().expect("id");
    assert_eq!(call_row(&s, call_id).await, ("no_answer".to_owned(), "no_answer".to_owned()));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_recorded_to_wav() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recordings = dir.path().join("recordings");
    let path = recordings.to_string_lossy().into_owned();
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.sim.answer_delay_ms = 20;
        c.voice.recordings_dir = Some(path);
    })
    .await;
    let (token, num) = s.grant(&wallet(1), 30).await;
    let dialed = dial(&s, &token, &num, ECHO).await;
    let call_id = dialed["call_id"].as_str().expect("id").to_owned();
    let mut ws = connect(dialed["stream_url"].as_str().expect("url"), &token).await;
    while event(&mut ws).await["event"] != "answered" {}
    ws.send(Message::Binary(tone(800.0, 1500).into())).await.expect("send");
    frames(&mut ws, 60).await;
    // The hangup command: the last event says why, then the server closes.
    send_json(&mut ws, json!({"event": "hangup"})).await;
    let (hangup, close) = until_closed(&mut ws).await;
    assert_eq!(hangup["reason"], "local_hangup");
    assert_eq!(close, Some((CloseCode::Library(4000), "local_hangup".to_owned())));
    assert_eq!(call_row(&s, &call_id).await, ("completed".to_owned(), "local_hangup".to_owned()));
    s.stop().await;

    // Finalized off the async threads; the file is complete once the service has stopped.
    let file = recordings.join(format!("{call_id}.wav"));
    let mut reader = hound::WavReader::open(&file).expect("a valid WAV");
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 16_000, 16));
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.expect("sample")).collect();
    let far: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let agent: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert!(far.len() >= 16_000, "at least a second recorded: {}", far.len());
    let candidates = [400.0, 800.0, 1600.0];
    assert_eq!(dominant_frequency(&agent, RATE, &candidates), Some(800.0), "the agent's side");
    assert_eq!(dominant_frequency(&far, RATE, &candidates), Some(800.0), "the echo on the far side");
}
