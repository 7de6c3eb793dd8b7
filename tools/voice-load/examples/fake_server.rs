//! A fake agentline stream endpoint for testing the harness: every WebSocket connection is an
//! answered call that echoes the caller's audio after a delay, on its own 20 ms clock.
//!
//! cargo run --release --example fake_server -- [PORT] [DELAY_MS] [DROP_EVERY]
//! then: target/release/voice-load --fake ws://127.0.0.1:PORT/ --calls 50 --seconds 10

use std::time::Duration;

use voice_load::fake::{FakeOpts, serve};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args.first().map_or(18420, |s| s.parse().expect("port"));
    let delay_ms: u64 = args.get(1).map_or(60, |s| s.parse().expect("delay ms"));
    let drop_every: u64 = args.get(2).map_or(0, |s| s.parse().expect("drop every"));
    let opts = FakeOpts { delay: Duration::from_millis(delay_ms), drop_every, ..FakeOpts::default() };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    eprintln!("fake echo on ws://127.0.0.1:{port}/ delay {delay_ms} ms, drop every {drop_every}");
    serve(listener, opts).await;
}
