use std::time::Duration;

use clap::Parser;
use voice_load::call::HangupBy;
use voice_load::run::{Config, Target, run};

/// Voice load harness: N concurrent echo calls against agentline (or a fake echo with --fake).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// agentline base URL, e.g. http://127.0.0.1:18410
    #[arg(long, required_unless_present = "fake")]
    base: Option<String>,
    /// AGENTLINE_ADMIN_KEY of that server (creates one subscription per call)
    #[arg(long, required_unless_present = "fake")]
    admin_key: Option<String>,
    /// Concurrent calls
    #[arg(long)]
    calls: usize,
    /// Measurement window, seconds
    #[arg(long)]
    seconds: u64,
    /// One call set up every this many ms
    #[arg(long, default_value_t = 2)]
    ramp_ms: u64,
    /// The server's pid: CPU and RSS from /proc
    #[arg(long)]
    server_pid: Option<u32>,
    /// Number to call (outside the pool: the simulated echo callee)
    #[arg(long, default_value = "+15005550006")]
    to: String,
    /// Skip HTTP: open every call's stream on this WebSocket URL (examples/fake_server.rs)
    #[arg(long, value_name = "WS_URL")]
    fake: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
    /// Subscriptions created at once
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    /// Seconds to wait for each call's `answered`
    #[arg(long, default_value_t = 30)]
    answer_timeout_s: u64,
    /// End calls by closing the socket (close) or by sending {"event":"hangup"} (event)
    #[arg(long, default_value = "close", value_parser = ["close", "event"])]
    hangup_by: String,
    /// Silence sent after the window before hanging up, so late echoes still come back (ms)
    #[arg(long, default_value_t = 1000)]
    tail_ms: u64,
    /// Wallets are 0x000…(offset + i)
    #[arg(long, default_value_t = 1)]
    wallet_offset: u64,
    /// Another process to report CPU and RSS of over the window, as NAME=PID (repeatable)
    #[arg(long, value_name = "NAME=PID")]
    peer_pid: Vec<String>,
    /// UDP sockets to read the drop counters of at the end of the window, as NAME=LOW-HIGH
    /// (local ports; repeatable)
    #[arg(long, value_name = "NAME=LOW-HIGH")]
    udp_ports: Vec<String>,
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    let target = match a.fake {
        Some(url) => Target::Fake { url },
        None => Target::Server {
            base: a.base.expect("required").trim_end_matches('/').to_owned(),
            admin_key: a.admin_key.expect("required"),
            to: a.to,
        },
    };
    let mut cfg = Config::new(target, a.calls, a.seconds);
    cfg.ramp = Duration::from_millis(a.ramp_ms);
    cfg.server_pid = a.server_pid;
    cfg.setup_concurrency = a.setup_concurrency;
    cfg.answer_timeout = Duration::from_secs(a.answer_timeout_s);
    cfg.wallet_offset = a.wallet_offset;
    cfg.hangup = if a.hangup_by == "event" { HangupBy::Event } else { HangupBy::Close };
    cfg.tail = Duration::from_millis(a.tail_ms);
    cfg.progress = true;
    for p in &a.udp_ports {
        let parsed = p.split_once('=').and_then(|(n, r)| {
            let (lo, hi) = r.split_once('-').unwrap_or((r, r));
            Some((n.to_owned(), lo.parse::<u16>().ok()?, hi.parse::<u16>().ok()?))
        });
        match parsed {
            Some(x) => cfg.udp_ports.push(x),
            None => {
                eprintln!("voice-load: --udp-ports wants NAME=LOW-HIGH, got {p}");
                std::process::exit(2);
            }
        }
    }
    for p in &a.peer_pid {
        match p.split_once('=').and_then(|(n, pid)| Some((n.to_owned(), pid.parse::<u32>().ok()?))) {
            Some(np) => cfg.peer_pids.push(np),
            None => {
                eprintln!("voice-load: --peer-pid wants NAME=PID, got {p}");
                std::process::exit(2);
            }
        }
    }
    match run(cfg).await {
        Ok(report) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("json"));
            } else {
                print!("{}", voice_load::report::text(&report));
            }
        }
        Err(e) => {
            eprintln!("voice-load: {e}");
            std::process::exit(1);
        }
    }
}
