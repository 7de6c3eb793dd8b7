//! A whole run: subscriptions, dials, stream sockets, the measurement window, hangups, and the
//! analysis of what every call recorded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::audio::{BURST_LEN, BURST_PERIOD, FRAME_MS, FRAMES_PER_SECOND, SAMPLE_RATE, Signal, TONES_HZ};
use crate::call::{self, Clock, RecvLog, SendLog};
use crate::stats::{self, Histogram, percentile};

pub const TICK_METRIC: &str = "agentline_voice_tick_seconds";
pub const DROPPED_METRIC: &str = "agentline_voice_frames_dropped";
pub const ACTIVE_METRIC: &str = "agentline_voice_calls_active";
pub const SHED_METRIC: &str = "agentline_voice_frames_shed";
/// A frame arriving more than this after the previous one is late.
pub const LATE_GAP_US: f64 = 40_000.0;
/// An echo onset belongs to a burst if it is the burst's tone and comes within this after the
/// burst's start: less than the 4 s after which the same tone is sent again.
pub const ECHO_MATCH_US: f64 =
    ((TONES_HZ.len() as u64 * BURST_PERIOD - BURST_LEN) * 1_000_000 / SAMPLE_RATE as u64) as f64;

#[derive(Clone, Debug)]
pub enum Target {
    /// A running agentline: subscriptions through the admin API, calls dialled to `to`.
    Server { base: String, admin_key: String, to: String },
    /// A bare WebSocket echo (examples/fake_server.rs): every call connects to `url`.
    Fake { url: String },
}

#[derive(Clone, Debug)]
pub struct Config {
    pub target: Target,
    pub calls: usize,
    pub seconds: u64,
    pub ramp: Duration,
    pub server_pid: Option<u32>,
    pub setup_concurrency: usize,
    pub answer_timeout: Duration,
    pub wallet_offset: u64,
    /// Silence sent after the window so the last bursts' echoes come back before the hangup.
    pub tail: Duration,
    pub close_timeout: Duration,
    pub hangup: call::HangupBy,
    pub progress: bool,
    /// Other processes whose CPU and RSS are reported over the window (e.g. the SIP peer).
    pub peer_pids: Vec<(String, u32)>,
    /// UDP port ranges whose sockets' drop counters are read at the end of the window.
    pub udp_ports: Vec<(String, u16, u16)>,
}

impl Config {
    pub fn new(target: Target, calls: usize, seconds: u64) -> Self {
        Self {
            target,
            calls,
            seconds,
            ramp: Duration::from_millis(2),
            server_pid: None,
            setup_concurrency: 16,
            answer_timeout: Duration::from_secs(30),
            wallet_offset: 1,
            tail: Duration::from_secs(1),
            close_timeout: Duration::from_secs(10),
            hangup: call::HangupBy::Close,
            progress: false,
            peer_pids: Vec::new(),
            udp_ports: Vec::new(),
        }
    }
}

macro_rules! progress {
    ($cfg:expr, $($arg:tt)*) => { if $cfg.progress { eprintln!("voice-load: {}", format!($($arg)*)); } };
}

struct Up {
    index: usize,
    sink: call::Sink,
    recv: tokio::task::JoinHandle<RecvLog>,
    /// When the dial request was sent and when its response came (µs).
    dial_us: f64,
    dialed_us: f64,
    answered_us: f64,
}

#[derive(Default)]
struct Snapshot {
    metrics: Option<String>,
    server_cpu: Option<f64>,
    self_cpu: Option<f64>,
    peer_cpu: Vec<Option<f64>>,
    /// Busy and total jiffies of the whole machine (/proc/stat).
    machine: Option<(f64, f64)>,
    udp: Option<(u64, u64)>,
    at: Option<Instant>,
}

async fn snapshot(cfg: &Config, http: &reqwest::Client) -> Snapshot {
    let metrics = match &cfg.target {
        Target::Server { base, .. } => match http.get(format!("{base}/metrics")).send().await {
            Ok(r) if r.status().is_success() => r.text().await.ok(),
            _ => None,
        },
        Target::Fake { .. } => None,
    };
    Snapshot {
        metrics,
        server_cpu: cfg.server_pid.and_then(|p| stats::cpu_seconds(Some(p))),
        self_cpu: stats::cpu_seconds(None),
        peer_cpu: cfg.peer_pids.iter().map(|(_, p)| stats::cpu_seconds(Some(*p))).collect(),
        machine: stats::machine_jiffies(),
        udp: stats::udp_errors(),
        at: Some(Instant::now()),
    }
}

fn wallet(i: u64) -> String {
    format!("0x{i:040x}")
}

async fn subscriptions(cfg: &Config, http: &reqwest::Client) -> Result<Vec<(String, String)>, String> {
    let Target::Server { base, admin_key, .. } = &cfg.target else {
        return Ok((0..cfg.calls).map(|i| ("fake-token".to_owned(), format!("fake-{i}"))).collect());
    };
    let results: Vec<Result<(String, String), String>> = futures_util::stream::iter(0..cfg.calls)
        .map(|i| async move {
            let resp = http
                .post(format!("{base}/admin/subscriptions"))
                .bearer_auth(admin_key)
                .json(&json!({"wallet": wallet(cfg.wallet_offset + i as u64), "days": 30}))
                .send()
                .await
                .map_err(|e| format!("subscription: {e}"))?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or_default();
            match (body["token"].as_str(), body["number"].as_str()) {
                (Some(t), Some(n)) if status.is_success() => Ok((t.to_owned(), n.to_owned())),
                _ => Err(format!("subscription: {status} {body}")),
            }
        })
        .buffered(cfg.setup_concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

async fn dial(http: &reqwest::Client, base: &str, token: &str, from: &str, to: &str) -> Result<String, String> {
    let resp = http
        .post(format!("{base}/sms/voice/dial"))
        .bearer_auth(token)
        .json(&json!({"phone_number": from, "to": to}))
        .send()
        .await
        .map_err(|e| format!("dial: {e}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("dial: {status} {}", body["error"]));
    }
    let url = body["stream_url"].as_str().ok_or_else(|| format!("dial: no stream_url in {body}"))?;
    Ok(if url.starts_with("ws://") || url.starts_with("wss://") {
        url.to_owned()
    } else {
        // A path: same host as the API.
        format!("{}{url}", base.replacen("http", "ws", 1))
    })
}

async fn setup_call(
    cfg: Config,
    http: reqwest::Client,
    clock: Clock,
    index: usize,
    token: String,
    number: String,
) -> Result<Up, String> {
    let dial_us = clock.now_us();
    let url = match &cfg.target {
        Target::Server { base, to, .. } => dial(&http, base, &token, &number, to).await?,
        Target::Fake { url } => url.clone(),
    };
    let dialed_us = clock.now_us();
    let ws = call::connect(&url, &token).await?;
    let (sink, stream) = futures_util::StreamExt::split(ws);
    let (tx, rx) = oneshot::channel();
    let recv = tokio::spawn(call::receive(stream, clock, tx));
    match tokio::time::timeout(cfg.answer_timeout, rx).await {
        Ok(Ok(Ok(()))) => Ok(Up { index, sink, recv, dial_us, dialed_us, answered_us: clock.now_us() }),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(_)) => Err("receiver ended before answer".to_owned()),
        Err(_) => {
            recv.abort();
            Err(format!("not answered within {:?}", cfg.answer_timeout))
        }
    }
}

/// Runs the whole load and returns the report (JSON object).
pub async fn run(cfg: Config) -> Result<Value, String> {
    let clock = Clock(Instant::now());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;

    progress!(cfg, "creating {} subscriptions", cfg.calls);
    let creds = subscriptions(&cfg, &http).await?;
    let rss_idle = cfg.server_pid.and_then(|p| stats::rss_bytes(Some(p)));
    let udp_start = stats::udp_errors();

    progress!(cfg, "dialling {} calls, one every {:?}", cfg.calls, cfg.ramp);
    let ramp_start = Instant::now();
    let mut pending = Vec::with_capacity(cfg.calls);
    for (i, (token, number)) in creds.into_iter().enumerate() {
        tokio::time::sleep_until((ramp_start + cfg.ramp * i as u32).into()).await;
        pending.push(tokio::spawn(setup_call(cfg.clone(), http.clone(), clock, i, token, number)));
    }
    let mut ups = Vec::new();
    let mut setup_failures: BTreeMap<String, usize> = BTreeMap::new();
    for r in join_all(pending).await {
        match r {
            Ok(Ok(up)) => ups.push(up),
            Ok(Err(e)) => *setup_failures.entry(e).or_default() += 1,
            Err(e) => *setup_failures.entry(format!("setup task: {e}")).or_default() += 1,
        }
    }
    let setup_s = ramp_start.elapsed().as_secs_f64();
    let dial_times: Vec<(f64, f64, f64)> = ups.iter().map(|u| (u.dial_us, u.dialed_us, u.answered_us)).collect();
    progress!(cfg, "{} calls up in {:.1} s, {} failed", ups.len(), setup_s, cfg.calls - ups.len());
    if ups.is_empty() {
        return Err(format!("no call was answered: {setup_failures:?}"));
    }

    // Measurement window: every sender starts within one frame of t0, spread evenly.
    let before = snapshot(&cfg, &http).await;
    let t0 = Instant::now() + Duration::from_millis(300);
    let window_frames = cfg.seconds * FRAMES_PER_SECOND;
    let tail_frames = cfg.tail.as_millis() as u64 / FRAME_MS;
    let n_up = ups.len();
    let mut senders = Vec::with_capacity(n_up);
    let mut receivers = Vec::with_capacity(n_up);
    for (k, up) in ups.into_iter().enumerate() {
        let start = t0 + Duration::from_micros(FRAME_MS * 1000 * k as u64 / n_up as u64);
        let signal = Signal {
            offset: BURST_PERIOD * up.index as u64 / cfg.calls as u64,
            bursts_until: window_frames * crate::audio::FRAME_SAMPLES as u64,
        };
        senders.push(tokio::spawn(call::send(up.sink, clock, start, signal, window_frames, tail_frames, cfg.hangup)));
        receivers.push(up.recv);
    }
    progress!(cfg, "sending for {} s", cfg.seconds);
    tokio::time::sleep_until((t0 + Duration::from_secs(cfg.seconds) + Duration::from_millis(2 * FRAME_MS)).into())
        .await;
    let after = snapshot(&cfg, &http).await;
    let rss_end = cfg.server_pid.and_then(|p| stats::rss_bytes(Some(p)));
    let peer_rss: Vec<Option<u64>> = cfg.peer_pids.iter().map(|(_, p)| stats::rss_bytes(Some(*p))).collect();
    let self_rss = stats::rss_bytes(None);
    let socket_drops: Vec<(String, (u64, u64))> =
        cfg.udp_ports.iter().map(|(n, lo, hi)| (n.clone(), stats::udp_socket_drops(*lo, *hi))).collect();

    progress!(cfg, "hanging up");
    let sends: Vec<SendLog> = join_all(senders)
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| SendLog { error: Some(format!("sender task: {e}")), ..Default::default() }))
        .collect();
    let close_timeout = cfg.close_timeout;
    let recvs: Vec<RecvLog> = join_all(receivers.into_iter().map(|mut h| async move {
        match tokio::time::timeout(close_timeout, &mut h).await {
            Ok(Ok(log)) => log,
            Ok(Err(e)) => RecvLog { failure: Some(format!("receiver task: {e}")), ..Default::default() },
            Err(_) => {
                h.abort();
                RecvLog { failure: Some("no close within timeout".to_owned()), ..Default::default() }
            }
        }
    }))
    .await;

    // Did the server end every call? Its active-calls gauge, polled until 0 (10 s at most).
    let hangups_done = Instant::now();
    let mut active_after = None;
    if let Target::Server { base, .. } = &cfg.target {
        while hangups_done.elapsed() < Duration::from_secs(10) {
            active_after = match http.get(format!("{base}/metrics")).send().await {
                Ok(r) => r.text().await.ok().and_then(|t| stats::scalar(&t, ACTIVE_METRIC)),
                Err(_) => None,
            };
            if active_after.is_none_or(|a| a == 0.0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let active_zero_s = hangups_done.elapsed().as_secs_f64();

    let mut report = analyze(cfg.seconds, &sends, &recvs);
    let o = report.as_object_mut().expect("object");
    o.insert("calls_requested".into(), json!(cfg.calls));
    o.insert("calls_up".into(), json!(n_up));
    o.insert("setup_failures".into(), json!(setup_failures));
    o.insert("setup_seconds".into(), json!(round(setup_s, 2)));
    o.insert("setup".into(), setup_figures(&dial_times, cfg.ramp));
    o.insert("mode".into(), json!(if matches!(cfg.target, Target::Fake { .. }) { "fake" } else { "server" }));

    // Server tick histogram.
    let tick = match (&before.metrics, &after.metrics) {
        (Some(b), Some(a)) => match (Histogram::parse(b, TICK_METRIC), Histogram::parse(a, TICK_METRIC)) {
            (b, Some(a)) => {
                let d = a.delta(&b.unwrap_or_default());
                let ms =
                    |v: Option<f64>| v.map(|s| if s.is_finite() { json!(round(s * 1e3, 3)) } else { json!("+Inf") });
                json!({
                    "available": true,
                    "ticks": d.count,
                    "p50_ms_le": ms(d.quantile_upper(0.5)),
                    "p99_ms_le": ms(d.quantile_upper(0.99)),
                    "mean_ms": if d.count > 0.0 { json!(round(d.sum / d.count * 1e3, 4)) } else { Value::Null },
                })
            }
            _ => json!({"available": false, "why": format!("{TICK_METRIC} not in /metrics")}),
        },
        _ => json!({"available": false, "why": "no /metrics (fake mode or unreachable)"}),
    };
    o.insert("server_tick".into(), tick);
    if let (Some(b), Some(a)) = (&before.metrics, &after.metrics) {
        let dropped = stats::scalar(a, DROPPED_METRIC).map(|x| x - stats::scalar(b, DROPPED_METRIC).unwrap_or(0.0));
        let shed = stats::scalar(a, SHED_METRIC).map(|x| x - stats::scalar(b, SHED_METRIC).unwrap_or(0.0));
        o.insert(
            "server_metrics".into(),
            json!({
                "frames_dropped_in_window": dropped,
                "network_frames_shed_in_window": shed,
                "calls_active_at_end": stats::scalar(a, ACTIVE_METRIC),
                "calls_active_after_hangup": active_after,
                "seconds_to_no_active_call": if active_after == Some(0.0) { json!(round(active_zero_s, 2)) } else { Value::Null },
            }),
        );
    }

    let wall = match (before.at, after.at) {
        (Some(b), Some(a)) => a.duration_since(b).as_secs_f64(),
        _ => 0.0,
    };
    let call_seconds = n_up as f64 * cfg.seconds as f64;
    let server = match (before.server_cpu, after.server_cpu) {
        (Some(b), Some(a)) => json!({
            "cpu_percent_of_core": round((a - b) / wall * 100.0, 1),
            "cpu_ms_per_call_second": round((a - b) * 1e3 / call_seconds, 3),
            "rss_idle_mb": rss_idle.map(|r| round(r as f64 / 1048576.0, 1)),
            "rss_end_mb": rss_end.map(|r| round(r as f64 / 1048576.0, 1)),
        }),
        _ => json!(null),
    };
    o.insert("server_process".into(), server);
    let harness = match (before.self_cpu, after.self_cpu) {
        (Some(b), Some(a)) => json!({
            "cpu_percent_of_core": round((a - b) / wall * 100.0, 1),
            "rss_mb": self_rss.map(|r| round(r as f64 / 1048576.0, 1)),
        }),
        _ => json!(null),
    };
    o.insert("harness_process".into(), harness);
    let mut peers = serde_json::Map::new();
    for (k, (name, _)) in cfg.peer_pids.iter().enumerate() {
        let v = match (before.peer_cpu[k], after.peer_cpu[k]) {
            (Some(b), Some(a)) => json!({
                "cpu_percent_of_core": round((a - b) / wall * 100.0, 1),
                "rss_mb": peer_rss[k].map(|r| round(r as f64 / 1048576.0, 1)),
            }),
            _ => json!(null),
        };
        peers.insert(name.clone(), v);
    }
    o.insert("peer_processes".into(), Value::Object(peers));
    // The whole machine over the window, so other work (a compile) shows up.
    let machine = match (before.machine, after.machine) {
        (Some((bb, bt)), Some((ab, at))) if at > bt => json!({
            "cpus": stats::cpus(),
            "busy_percent_of_core": round((ab - bb) / stats::clock_ticks() / wall * 100.0, 1),
            "busy_fraction": round((ab - bb) / (at - bt), 3),
        }),
        _ => json!(null),
    };
    o.insert("machine".into(), machine);
    // UDP datagrams the kernel dropped for want of socket buffer space (the whole machine), over
    // the window and from before the first dial to the end of the window; and per port range,
    // the drop counters of the sockets still open at the end of the window (since their creation).
    let d = |a: Option<(u64, u64)>, b: Option<(u64, u64)>| match (a, b) {
        (Some(a), Some(b)) => json!(b.0.saturating_sub(a.0)),
        _ => Value::Null,
    };
    let mut ranges = serde_json::Map::new();
    for (name, (drops, sockets)) in socket_drops {
        ranges.insert(name, json!({"drops": drops, "sockets": sockets}));
    }
    o.insert(
        "udp".into(),
        json!({
            "rcvbuf_errors_in_window": d(before.udp, after.udp),
            "rcvbuf_errors_setup_and_window": d(udp_start, after.udp),
            "socket_drops_at_window_end": ranges,
        }),
    );
    o.insert("cpu_window_seconds".into(), json!(round(wall, 3)));
    Ok(report)
}

/// Set-up figures of the calls that were answered: per call, dial request sent → dial response,
/// and → `answered` seen on the stream (stream opened after the dial response); the achieved
/// rate is calls answered / (last answer − first dial request).
fn setup_figures(times: &[(f64, f64, f64)], ramp: Duration) -> Value {
    let mut answer = Vec::new();
    let mut response = Vec::new();
    let (mut first, mut last) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(dial, dialed, answered) in times {
        response.push(dialed - dial);
        answer.push(answered - dial);
        first = first.min(dial);
        last = last.max(answered);
    }
    let n = answer.len();
    let span = last - first;
    json!({
        "offered_per_second": if ramp.is_zero() { Value::Null } else { json!(round(1.0 / ramp.as_secs_f64(), 1)) },
        "answered": n,
        "first_dial_to_last_answer_s": if n > 0 { json!(round(span / 1e6, 3)) } else { Value::Null },
        "achieved_per_second": if n > 1 && span > 0.0 { json!(round(n as f64 / (span / 1e6), 1)) } else { Value::Null },
        "dial_response": ms_stats(response),
        "dial_to_answered": ms_stats(answer),
    })
}

pub fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

fn ms_stats(mut v: Vec<f64>) -> Value {
    v.sort_by(f64::total_cmp);
    let f = |x: Option<f64>| x.map(|us| round(us / 1e3, 2));
    json!({
        "n": v.len(),
        "min_ms": f(v.first().copied()),
        "p50_ms": f(percentile(&v, 0.5)),
        "p99_ms": f(percentile(&v, 0.99)),
        "max_ms": f(v.last().copied()),
    })
}

/// Frame, gap, echo and hangup figures over every call that was up.
///
/// Per call, frames are counted by arrival in `[a0, a0 + seconds)`. `a0` is the server clock's
/// phase: over frames `k = 0 ..= seconds * 50` from the call's first scheduled send, the
/// minimum of `arrival_k - k * 20 ms` (the least-delayed estimate of when frame 0 was due; a
/// missing frame only raises the later terms). A perfect clock gives exactly `seconds * 50`
/// frames whatever its phase; the last frame is still counted if it arrives up to 20 ms later
/// than the least-delayed frame would have. Missing = expected - received
/// per call, floored at 0 (more is reported as `extra`).
pub fn analyze(seconds: u64, sends: &[SendLog], recvs: &[RecvLog]) -> Value {
    let expected_per_call = seconds * FRAMES_PER_SECOND;
    let window_us = seconds as f64 * 1e6;
    let (mut expected, mut received, mut missing, mut extra, mut late, mut bad) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut gaps = Vec::new();
    let mut rtts = Vec::new();
    // Per call: the first and last burst's round trip, and how much it grew during the call.
    let (mut rtt_first, mut rtt_last, mut rtt_growth) = (Vec::new(), Vec::new(), Vec::new());
    let (mut bursts_sent, mut echo_missed, mut echo_unresolved, mut spurious) = (0u64, 0u64, 0u64, 0u64);
    let mut lags = Vec::new();
    let (mut frames_sent, mut send_errors) = (0u64, 0u64);
    let (mut hangup_events, mut close_frames, mut clean, mut unclean) = (0u64, 0u64, 0u64, 0u64);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut error_events: BTreeMap<String, u64> = BTreeMap::new();
    let mut calls_missing = 0u64;

    for (s, r) in sends.iter().zip(recvs) {
        expected += expected_per_call;
        frames_sent += s.frames_sent;
        lags.extend(s.lag_us.iter().map(|&l| l as f64));
        if let Some(e) = &s.error {
            send_errors += 1;
            *failures.entry(e.clone()).or_default() += 1;
        }
        // Frames.
        let first = r.frames.partition_point(|&t| t < s.start_us);
        let mut got = 0u64;
        if first < r.frames.len() {
            // The server clock's phase: the least-delayed reading of "frame 0" over the window's
            // frames, so a late first frame does not shift the window.
            let a0 = r.frames[first..]
                .iter()
                .take(expected_per_call as usize + 1)
                .enumerate()
                .map(|(k, &t)| t - (k as u64 * FRAME_MS * 1000) as f64)
                .fold(f64::INFINITY, f64::min);
            for idx in first..r.frames.len() {
                let t = r.frames[idx];
                if t >= a0 + window_us {
                    break;
                }
                got += 1;
                if idx > 0 {
                    let gap = t - r.frames[idx - 1];
                    if gap > LATE_GAP_US {
                        late += 1;
                    }
                    gaps.push(gap);
                }
            }
            bad += r.bad_len.iter().filter(|(t, _)| *t >= a0 && *t < a0 + window_us).count() as u64;
        }
        received += got;
        let m = expected_per_call.saturating_sub(got);
        missing += m;
        extra += got.saturating_sub(expected_per_call);
        if m > 0 {
            calls_missing += 1;
        }
        // Echo: each burst's echo is the first onset of its tone within ECHO_MATCH_US after it.
        let mut used = vec![false; r.onsets.len()];
        let rtts_before = rtts.len();
        for (m, &b) in s.bursts.iter().enumerate() {
            bursts_sent += 1;
            let tone = m % TONES_HZ.len();
            let from = r.onsets.partition_point(|o| o.us <= b);
            let hit = (from..r.onsets.len())
                .take_while(|&i| r.onsets[i].us - b < ECHO_MATCH_US)
                .find(|&i| r.onsets[i].tone == tone && !used[i]);
            match hit {
                Some(i) => {
                    used[i] = true;
                    rtts.push(r.onsets[i].us - b);
                }
                // The stream ended before the echo was due: unresolved, not missed.
                None if r.frames.last().is_none_or(|&last| b + ECHO_MATCH_US > last) => echo_unresolved += 1,
                None => echo_missed += 1,
            }
        }
        spurious += used.iter().filter(|u| !**u).count() as u64;
        if rtts.len() > rtts_before {
            let (first, last) = (rtts[rtts_before], rtts[rtts.len() - 1]);
            rtt_first.push(first);
            rtt_last.push(last);
            rtt_growth.push(last - first);
        }
        // Hangup.
        if let Some(h) = &r.hangup {
            hangup_events += 1;
            *reasons.entry(format!("hangup:{h}")).or_default() += 1;
        }
        if let Some((code, reason)) = &r.close {
            close_frames += 1;
            *reasons.entry(format!("close:{code}:{reason}")).or_default() += 1;
        }
        if r.hangup.is_some() || r.close.is_some() {
            clean += 1;
        } else {
            unclean += 1;
        }
        if let Some(f) = &r.failure {
            *failures.entry(f.clone()).or_default() += 1;
        }
        for e in &r.error_events {
            *error_events.entry(e.clone()).or_default() += 1;
        }
    }
    let pct = |a: u64, b: u64| if b == 0 { 0.0 } else { round(a as f64 * 100.0 / b as f64, 4) };
    json!({
        "seconds": seconds,
        "frames": {
            "expected": expected,
            "received": received,
            "missing": missing,
            "missing_percent": pct(missing, expected),
            "calls_with_missing": calls_missing,
            "extra": extra,
            "late_gt_40ms": late,
            "late_percent": pct(late, received),
            "non_640": bad,
        },
        "inter_arrival": ms_stats(gaps),
        "echo": {
            "bursts_sent": bursts_sent,
            "echoes_matched": rtts.len(),
            "missed": echo_missed,
            "unresolved": echo_unresolved,
            "spurious_onsets": spurious,
            "rtt": ms_stats(rtts),
            "rtt_first_burst": ms_stats(rtt_first),
            "rtt_last_burst": ms_stats(rtt_last),
            "rtt_growth_last_minus_first": ms_stats(rtt_growth),
        },
        "harness_send": {
            "frames_sent": frames_sent,
            "send_errors": send_errors,
            "lag": ms_stats(lags),
        },
        "hangup": {
            "clean": clean,
            "unclean": unclean,
            "hangup_events": hangup_events,
            "close_frames": close_frames,
            "by_reason": reasons,
        },
        "error_events": error_events,
        "failures": failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Onset;

    #[test]
    fn counts_window_frames_gaps_and_echoes() {
        // A 2 s window from t = 1000 µs; the server's clock is 7 ms out of phase; one frame is
        // 25 ms late and the next comes with it (gaps 45 ms, 0, 15 ms), one frame never comes
        // (a gap of 40 ms, not late).
        let mut frames: Vec<f64> = (0..110).map(|k| 7_000.0 + 20_000.0 * k as f64 - 40_000.0).collect();
        frames[50] += 25_000.0;
        frames[51] += 5_000.0;
        frames.remove(70);
        let s = SendLog { start_us: 1_000.0, bursts: vec![100_000.0, 1_100_000.0], ..Default::default() };
        let r = RecvLog {
            frames,
            // Burst 0 (tone 0) echoes at 50 ms, burst 1 (tone 1) at 600 ms; a tone-0 onset
            // before burst 1's echo matches nothing.
            onsets: vec![
                Onset { us: 150_000.0, tone: 0 },
                Onset { us: 1_300_000.0, tone: 0 },
                Onset { us: 1_700_000.0, tone: 1 },
            ],
            close: Some((1000, "local_hangup".into())),
            ..Default::default()
        };
        let v = analyze(2, &[s], &[r]);
        assert_eq!(v["frames"]["expected"], 100);
        assert_eq!(v["frames"]["received"], 99);
        assert_eq!(v["frames"]["missing"], 1);
        assert_eq!(v["frames"]["late_gt_40ms"], 1);
        assert_eq!(v["inter_arrival"]["max_ms"], 45.0);
        assert_eq!(v["inter_arrival"]["p50_ms"], 20.0);
        assert_eq!(v["echo"]["echoes_matched"], 2);
        assert_eq!(v["echo"]["rtt"]["p50_ms"], 50.0);
        assert_eq!(v["echo"]["rtt"]["max_ms"], 600.0);
        assert_eq!(v["echo"]["spurious_onsets"], 1);
        assert_eq!(v["hangup"]["clean"], 1);
    }
}
