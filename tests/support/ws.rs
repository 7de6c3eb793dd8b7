//! WebSocket clients for the voice tests (tokio-tungstenite): connecting with a bearer token,
//! reading events and 640-byte audio frames, tones as s16le, and the voice API calls.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestServer;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const RATE: u32 = 16_000;

pub fn ws_url(s: &TestServer, path: &str) -> String {
    s.url(path).replacen("http://", "ws://", 1)
}

pub async fn connect(url: &str, token: &str) -> Ws {
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert("Authorization", format!("Bearer {token}").parse().expect("header"));
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    ws
}

/// The HTTP status a refused handshake got.
pub async fn refused(url: &str, token: Option<&str>) -> u16 {
    let mut req = url.into_client_request().expect("request");
    if let Some(token) = token {
        req.headers_mut().insert("Authorization", format!("Bearer {token}").parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Ok(_) => panic!("handshake to {url} was accepted"),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// Reads until the next text event, keeping the audio that came before it.
pub async fn next_event(ws: &mut Ws, audio: &mut Vec<i16>) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("an event in time");
        match msg.expect("socket open").expect("frame") {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON event"),
            Message::Binary(b) => {
                assert_eq!(b.len(), 640, "server frames are exactly 640 bytes");
                audio.extend(b.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])));
            }
            Message::Close(frame) => panic!("closed while waiting for an event: {frame:?}"),
            _ => {}
        }
    }
}

pub async fn event(ws: &mut Ws) -> Value {
    next_event(ws, &mut Vec::new()).await
}

/// Receives `n` audio frames; text events met on the way are returned too.
pub async fn frames(ws: &mut Ws, n: usize) -> (Vec<i16>, Vec<Value>) {
    let mut audio = Vec::with_capacity(n * 320);
    let mut events = Vec::new();
    while audio.len() < n * 320 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame in time");
        match msg.expect("socket open").expect("frame") {
            Message::Binary(b) => {
                assert_eq!(b.len(), 640, "server frames are exactly 640 bytes");
                audio.extend(b.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])));
            }
            Message::Text(t) => events.push(serde_json::from_str(&t).expect("JSON")),
            other => panic!("unexpected {other:?}"),
        }
    }
    (audio, events)
}

/// `ms` of a sine at `hz`, 0.3 of full scale, as s16le bytes.
pub fn tone(hz: f32, ms: usize) -> Vec<u8> {
    let n = RATE as usize * ms / 1000;
    (0..n)
        .flat_map(|i| {
            let v = (2.0 * std::f32::consts::PI * hz * i as f32 / RATE as f32).sin() * 0.3 * 32767.0;
            (v as i16).to_le_bytes()
        })
        .collect()
}

pub async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("send");
}

/// Reads until the server closes: the final hangup event and the close frame.
pub async fn until_closed(ws: &mut Ws) -> (Value, Option<(CloseCode, String)>) {
    let mut hangup = Value::Null;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("closed in time");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                if v["event"] == "hangup" {
                    hangup = v;
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return (hangup, frame.map(|f| (f.code, f.reason.to_string())));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (hangup, None),
        }
    }
}

pub async fn dial(s: &TestServer, token: &str, from: &str, to: &str) -> Value {
    let resp = s.post("/sms/voice/dial", Some(token), &json!({"phone_number": from, "to": to})).await;
    assert_eq!(resp.status(), 200, "dial");
    resp.json().await.expect("json")
}

/// The stored final state and end reason of a call, once it has ended.
pub async fn call_row(s: &TestServer, call_id: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let ended = format!("SELECT COUNT(*) FROM calls WHERE call_id = '{call_id}' AND ended_at IS NOT NULL");
    while s.scalar(&ended).await != 1 {
        assert!(Instant::now() < deadline, "call {call_id} never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let state = s.text(&format!("SELECT state FROM calls WHERE call_id = '{call_id}'")).await;
    let reason = s.text(&format!("SELECT end_reason FROM calls WHERE call_id = '{call_id}'")).await;
    (state, reason)
}
