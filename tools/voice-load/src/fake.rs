//! A fake stream endpoint for testing the harness without agentline: a bare WebSocket on which
//! every connection is an answered call whose far end echoes the caller's audio after a fixed
//! delay, re-framed to 640 bytes on the fake's own 20 ms clock (its own phase), through µ-law.
//!
//! The echo is a delay line on the timeline, with the harness's convention (a frame's instant is
//! the end of its audio): a received chunk of `L` samples at instant `a` holds the samples of
//! `[a - L/16k, a)`; the frame sent at instant `t` holds the samples of `[t - D - 20 ms, t - D)`.
//! So the harness should measure a round trip of `D` plus loopback transit, whatever the phases.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use crate::audio::{FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, mulaw_decode, mulaw_encode};

#[derive(Clone, Copy, Debug)]
pub struct FakeOpts {
    /// Echo delay.
    pub delay: Duration,
    /// `answered` is sent this long after `connected`.
    pub answer_after: Duration,
    /// Put the echo through G.711 µ-law.
    pub mulaw: bool,
    /// Skip every n-th outgoing frame (0: never), to check the harness counts missing frames.
    pub drop_every: u64,
}

impl Default for FakeOpts {
    fn default() -> Self {
        Self { delay: Duration::from_millis(60), answer_after: Duration::from_millis(100), mulaw: true, drop_every: 0 }
    }
}

/// Accepts connections forever.
pub async fn serve(listener: TcpListener, opts: FakeOpts) {
    let mut n = 0u64;
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        n += 1;
        tokio::spawn(call(stream, opts, n));
    }
}

fn index_at(base: Instant, t: Instant, minus: Duration) -> i64 {
    let d = t.saturating_duration_since(base).as_secs_f64() - minus.as_secs_f64();
    (d * SAMPLE_RATE as f64).round() as i64
}

async fn call(stream: TcpStream, opts: FakeOpts, n: u64) {
    let _ = stream.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
    let (mut tx, mut rx) = ws.split();
    let base = Instant::now();
    let connected = json!({
        "event": "connected", "version": 1, "call_id": format!("call_fake{n}"), "direction": "outbound",
        "format": {"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 1, "frame_ms": 20, "frame_bytes": 640},
        "upstream": {"codec": "PCMU", "sample_rate": 8000}, "state": "ringing",
    });
    if tx.send(Message::text(connected.to_string())).await.is_err() {
        return;
    }
    // line[0] is the sample of index `line_start` (index i: the sample at base + i/16k).
    let mut line: VecDeque<i16> = VecDeque::new();
    let mut line_start: i64 = 0;
    let mut iv =
        tokio::time::interval_at((base + Duration::from_millis(FRAME_MS)).into(), Duration::from_millis(FRAME_MS));
    iv.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let answer_at = base + opts.answer_after;
    let mut answered = false;
    let mut frame_no = 0u64;
    loop {
        tokio::select! {
            _ = iv.tick() => {
                let now = Instant::now();
                if !answered && now >= answer_at {
                    answered = true;
                    if tx.send(Message::text(r#"{"event":"answered"}"#)).await.is_err() { return; }
                }
                let end = index_at(base, now, opts.delay);
                let first = end - FRAME_SAMPLES as i64;
                let mut out = Vec::with_capacity(FRAME_SAMPLES * 2);
                for i in first..end {
                    let s = if i >= line_start { line.get((i - line_start) as usize).copied().unwrap_or(0) } else { 0 };
                    let s = if opts.mulaw { mulaw_decode(mulaw_encode(s)) } else { s };
                    out.extend_from_slice(&s.to_le_bytes());
                }
                // Forget what has been played.
                while line_start < end && !line.is_empty() {
                    line.pop_front();
                    line_start += 1;
                }
                if line.is_empty() && line_start < end {
                    line_start = end;
                }
                frame_no += 1;
                if opts.drop_every > 0 && frame_no.is_multiple_of(opts.drop_every) {
                    continue;
                }
                if tx.send(Message::binary(out)).await.is_err() { return; }
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    let len = (b.len() / 2) as i64;
                    let first = index_at(base, Instant::now(), Duration::ZERO) - len;
                    for j in 0..len {
                        let idx = first + j;
                        if idx < line_start { continue; }
                        let pos = (idx - line_start) as usize;
                        if pos >= line.len() { line.resize(pos + 1, 0); }
                        line[pos] = i16::from_le_bytes([b[2 * j as usize], b[2 * j as usize + 1]]);
                    }
                }
                Some(Ok(Message::Text(t))) => {
                    if t.as_str().contains("\"hangup\"") {
                        let _ = tx.send(Message::text(r#"{"event":"hangup","reason":"local_hangup"}"#)).await;
                        let _ = tx.close().await;
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) => {
                    // tungstenite answers the close; flush it out.
                    let _ = tx.close().await;
                    while let Some(Ok(_)) = rx.next().await {}
                    return;
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    }
}
