//! Checks of the `sip_transaction` fuzz target, shared with the corpus replay in
//! `tests/fuzz_corpus.rs` (both include this file with `#[path]`).
//!
//! The input is a script of records separated by NUL octets (SIP text holds none). The first
//! octet of a record is an operation, the rest its argument:
//!
//! | `op % 8` | operation |
//! | --- | --- |
//! | 0, 1 | the argument parsed as a datagram goes to `on_message`, from a UDP peer (0) or a TCP one (1) |
//! | 2 | the clock advances by `argument[0] * 100 ms`, then `on_timeout` |
//! | 3 | the clock jumps to `next_deadline`, then `on_timeout` |
//! | 4 | the argument parsed is sent with `send_request` (UDP for an even `op / 8`, else TCP) |
//! | 5 | the last request the layer passed up is answered with `send_response`, status `100 + argument[0] % 6 * 100 + argument[1] % 100` |
//! | 6 | `ack_received` for the last request passed up |
//! | 7 | `terminate` the last transaction named |
//!
//! After every step the output queue is drained: nothing panics, every queued datagram parses
//! back, at most `LIMIT` transactions live. At the end the clock runs on, deadline by deadline:
//! every transaction ends (none is left without a timer) within a bounded number of timer steps.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use agentline::telco::sip::message::{Framing, Message};
use agentline::telco::sip::transaction::{Output, Peer, Timers, Transport, TxEvent, TxKey, TxLayer};

/// A small limit, so that the fuzzer reaches `503 Service Unavailable` and `TxError::Full`.
const LIMIT: usize = 4;

pub fn check(data: &[u8]) {
    let mut now = Instant::now();
    let udp = Peer { addr: SocketAddr::from(([192, 0, 2, 10], 5060)), transport: Transport::Udp };
    let tcp = Peer { addr: SocketAddr::from(([192, 0, 2, 11], 5060)), transport: Transport::Tcp };
    let mut layer = TxLayer::with_limit(Timers::default(), LIMIT);
    let mut last_request: Option<(TxKey, Message)> = None;
    let mut last_key: Option<TxKey> = None;
    for record in data.split(|&b| b == 0) {
        let Some((&op, arg)) = record.split_first() else { continue };
        let byte = |i: usize| arg.get(i).copied().unwrap_or(0);
        match op % 8 {
            0 | 1 => {
                if let Ok(message) = Message::parse(arg, Framing::Datagram) {
                    layer.on_message(message, if op % 8 == 0 { udp } else { tcp }, now);
                }
            }
            2 => {
                now += Duration::from_millis(u64::from(byte(0)) * 100);
                layer.on_timeout(now);
            }
            3 => {
                if let Some(deadline) = layer.next_deadline() {
                    now = now.max(deadline);
                }
                layer.on_timeout(now);
            }
            4 => {
                if let Ok(request) = Message::parse(arg, Framing::Datagram)
                    && let Ok(key) = layer.send_request(request, if op / 8 % 2 == 0 { udp } else { tcp }, now)
                {
                    last_key = Some(key);
                }
            }
            5 => {
                if let Some((_, request)) = &last_request {
                    let code = 100 + u16::from(byte(0) % 6) * 100 + u16::from(byte(1) % 100);
                    let tag = (code > 100).then_some("as5f1e2d3c");
                    if let Ok(response) = Message::response(request, code, "Reason", tag) {
                        let _ = layer.send_response(response, now);
                    }
                }
            }
            6 => {
                if let Some((key, _)) = &last_request {
                    layer.ack_received(key);
                }
            }
            _ => {
                if let Some(key) = &last_key {
                    let _ = layer.terminate(key);
                }
            }
        }
        drain(&mut layer, &mut last_request, &mut last_key);
    }
    // Every transaction ends on its own: the deadlines lead to an empty layer.
    let mut steps = 0;
    while let Some(deadline) = layer.next_deadline() {
        steps += 1;
        assert!(steps <= 10_000, "timers still fire after {steps} steps; {} transactions live", layer.len());
        now = now.max(deadline);
        layer.on_timeout(now);
        drain(&mut layer, &mut last_request, &mut last_key);
    }
    assert!(layer.is_empty(), "{} transactions live without a timer", layer.len());
}

fn drain(layer: &mut TxLayer, last_request: &mut Option<(TxKey, Message)>, last_key: &mut Option<TxKey>) {
    assert!(layer.len() <= LIMIT, "{} transactions live, limit {LIMIT}", layer.len());
    let mut outputs = 0usize;
    while let Some(output) = layer.poll_output() {
        outputs += 1;
        assert!(outputs <= 10_000, "the output queue does not drain");
        match output {
            Output::Send { bytes, .. } => {
                let sent = Message::parse(&bytes, Framing::Stream).unwrap_or_else(|e| {
                    panic!("a queued datagram must parse: {e}; {:?}", String::from_utf8_lossy(&bytes))
                });
                assert_eq!(sent.to_bytes(), bytes.as_ref(), "queued bytes are a message as written");
            }
            Output::Event(TxEvent::Request { key, request, .. }) => {
                *last_key = Some(key.clone());
                *last_request = Some((key, request));
            }
            Output::Event(TxEvent::CancelFor { cancel, .. }) => *last_key = Some(cancel),
            Output::Event(TxEvent::Response { key, .. } | TxEvent::Timeout { key }) => *last_key = Some(key),
            Output::Event(TxEvent::Ack { .. } | TxEvent::StrayResponse { .. }) => {}
        }
    }
}
