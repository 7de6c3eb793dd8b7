//! One call's two halves: the real-time sender and the receiver that timestamps every frame and
//! finds the echoed bursts.

use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::audio::{FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, Onset, OnsetDetector, SAMPLE_RATE, Signal};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type Sink = SplitSink<Ws, Message>;
pub type Stream = SplitStream<Ws>;

/// Every instant of a run, as microseconds since one base instant.
#[derive(Clone, Copy, Debug)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn us(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.0).as_nanos() as f64 / 1e3
    }
    pub fn now_us(&self) -> f64 {
        self.us(Instant::now())
    }
}

/// Opens a stream socket with `Authorization: Bearer token`, Nagle off.
pub async fn connect(url: &str, token: &str) -> Result<Ws, String> {
    let mut req = url.into_client_request().map_err(|e| format!("stream url {url}: {e}"))?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| format!("token: {e}"))?;
    req.headers_mut().insert("authorization", auth);
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before every read: with
    // one 640-byte frame per read that dominated the harness's CPU. 4 KiB holds several frames.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
        .await
        .map_err(|e| format!("stream connect: {e}"))?;
    Ok(ws)
}

#[derive(Debug, Default)]
pub struct SendLog {
    /// Scheduled instant of the first frame (µs): the start of this call's measurement window.
    pub start_us: f64,
    /// Frames inside the measurement window (the tail of silence after it is not counted).
    pub window_frames: u64,
    pub frames_sent: u64,
    /// Start instant of each burst (µs), by the convention of `audio`.
    pub bursts: Vec<f64>,
    /// Actual send instant minus scheduled instant, per window frame (µs): the harness's own lag.
    pub lag_us: Vec<u32>,
    pub error: Option<String>,
}

/// How the harness ends a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HangupBy {
    /// Close the socket (code 1000).
    Close,
    /// Send `{"event":"hangup"}` and let the server close.
    Event,
}

/// Sends `window_frames` frames of `signal` then `tail_frames` of silence on a 20 ms schedule
/// from `start` (MissedTickBehavior::Burst: a late tick is caught up at once, so the schedule
/// stays monotonic), then hangs up: closes the socket (code 1000) or sends a `hangup` event.
pub async fn send(
    mut sink: Sink,
    clock: Clock,
    start: Instant,
    signal: Signal,
    window_frames: u64,
    tail_frames: u64,
    hangup: HangupBy,
) -> SendLog {
    let mut log = SendLog {
        start_us: clock.us(start),
        window_frames,
        lag_us: Vec::with_capacity(window_frames as usize),
        ..Default::default()
    };
    let period = Duration::from_millis(FRAME_MS);
    let mut iv = tokio::time::interval_at(start.into(), period);
    iv.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut buf = [0u8; FRAME_BYTES];
    for k in 0..window_frames + tail_frames {
        iv.tick().await;
        let burst = signal.frame(k, &mut buf);
        let now = Instant::now();
        if k < window_frames {
            let sched = start + period * k as u32;
            log.lag_us.push(now.saturating_duration_since(sched).as_micros().min(u32::MAX as u128) as u32);
        }
        if let Some(j) = burst {
            // This frame's instant is the end of its audio: sample j is (320 - j) samples earlier.
            log.bursts.push(clock.us(now) - (FRAME_SAMPLES - j) as f64 * 1e6 / SAMPLE_RATE as f64);
        }
        if let Err(e) = sink.send(Message::binary(buf.to_vec())).await {
            log.error = Some(format!("send: {e}"));
            return log;
        }
        log.frames_sent += 1;
    }
    let end = match hangup {
        HangupBy::Close => Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })),
        HangupBy::Event => Message::text(r#"{"event":"hangup"}"#),
    };
    if let Err(e) = sink.send(end).await {
        log.error = Some(format!("hangup: {e}"));
    }
    log
}

#[derive(Debug, Default)]
pub struct RecvLog {
    /// Arrival instant (µs) of every binary frame, whatever its length.
    pub frames: Vec<f64>,
    /// Arrival instant and length of binary frames that were not 640 bytes.
    pub bad_len: Vec<(f64, usize)>,
    /// Onsets of returning tone bursts.
    pub onsets: Vec<Onset>,
    pub connected: bool,
    pub answered_us: Option<f64>,
    /// `reason` of a `hangup` event.
    pub hangup: Option<String>,
    /// Close frame from the server: code and reason.
    pub close: Option<(u16, String)>,
    /// `code` of every `error` event.
    pub error_events: Vec<String>,
    /// How the stream ended when not by a close frame.
    pub failure: Option<String>,
}

/// Reads the stream until it ends. Tells `answered` when the call is up (an `answered` event, or
/// a `connected` whose state is already `in_progress`) or that it ended first.
pub async fn receive(mut rx: Stream, clock: Clock, answered: oneshot::Sender<Result<(), String>>) -> RecvLog {
    let mut log = RecvLog { frames: Vec::with_capacity(4096), ..Default::default() };
    let mut answered = Some(answered);
    let mut detector = OnsetDetector::default();
    while let Some(msg) = rx.next().await {
        let t = clock.now_us();
        match msg {
            Ok(Message::Binary(b)) => {
                log.frames.push(t);
                if b.len() != FRAME_BYTES {
                    log.bad_len.push((t, b.len()));
                }
                if b.len() % 2 == 0 {
                    detector.push(&b, t, &mut log.onsets);
                }
            }
            Ok(Message::Text(text)) => {
                let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                match v["event"].as_str().unwrap_or("") {
                    "connected" => {
                        log.connected = true;
                        if v["state"] == "in_progress" {
                            log.answered_us.get_or_insert(t);
                            if let Some(a) = answered.take() {
                                let _ = a.send(Ok(()));
                            }
                        }
                    }
                    "answered" => {
                        log.answered_us.get_or_insert(t);
                        if let Some(a) = answered.take() {
                            let _ = a.send(Ok(()));
                        }
                    }
                    "hangup" => {
                        let reason = v["reason"].as_str().unwrap_or("").to_owned();
                        if let Some(a) = answered.take() {
                            let _ = a.send(Err(format!("hangup before answer: {reason}")));
                        }
                        log.hangup = Some(reason);
                    }
                    "error" => log.error_events.push(v["code"].as_str().unwrap_or("?").to_owned()),
                    _ => {}
                }
            }
            Ok(Message::Close(cf)) => {
                let (code, reason) =
                    cf.map_or((1005, String::new()), |c| (u16::from(c.code), c.reason.as_str().to_owned()));
                if let Some(a) = answered.take() {
                    let _ = a.send(Err(format!("closed before answer: {code} {reason}")));
                }
                log.close = Some((code, reason));
            }
            Ok(_) => {}
            Err(e) => {
                if log.close.is_none() {
                    log.failure = Some(format!("read: {e}"));
                }
                break;
            }
        }
    }
    if let Some(a) = answered.take() {
        let _ = a.send(Err("stream ended before answer".to_owned()));
    }
    log
}
