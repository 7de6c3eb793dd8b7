//! The independent SIP peers in `tests/peers/sip`: SIPp 3.6.1 (`sip-tester`) scenarios and
//! baresip 1.0.0 (`baresip-core`), both on 127.0.0.1 only, plus audio helpers to write the tones
//! they play and to measure what they recorded. See `tests/peers/sip/README.md`.
//!
//! Every wait here is on something observable (a bound port, a log line, a ctrl_tcp event, a
//! process exit) and bounded by a timeout. Every process is killed when its handle drops.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[allow(unused_imports)] // for the tests that use them
pub use super::goertzel::{dominant_frequency, goertzel_level_db, goertzel_power};

/// `tests/peers/sip`: the scenarios and scripts.
pub fn sip_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sip")
}

static INSTALL: Once = Once::new();

/// Makes sure `sipp`, `baresip` and `sox` are installed; runs `tests/peers/setup.sh` otherwise.
pub fn ensure_installed() {
    INSTALL.call_once(|| {
        let have = |bin: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !(have("sipp") && have("baresip") && have("sox")) {
            super::peers::ensure_installed();
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Ports

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Remembers `port` as given to a test in this process; false if it was already.
fn claim(port: u16) -> bool {
    let mut set = HANDED_OUT.lock().expect("ports lock");
    set.get_or_insert_with(HashSet::new).insert(port)
}

fn udp_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

fn tcp_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A UDP port on 127.0.0.1 that is free now (and not handed out before in this process).
pub fn free_udp_port() -> u16 {
    loop {
        let port = UdpSocket::bind("127.0.0.1:0").expect("bind udp").local_addr().expect("addr").port();
        if claim(port) {
            return port;
        }
    }
}

/// A TCP port on 127.0.0.1 that is free now (and not handed out before in this process).
pub fn free_tcp_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").expect("bind tcp").local_addr().expect("addr").port();
        if claim(port) {
            return port;
        }
    }
}

/// A port free on both UDP and TCP: for a SIP listener (baresip binds both; SIPp one of them).
pub fn free_sip_port() -> u16 {
    for _ in 0..1000 {
        let port = UdpSocket::bind("127.0.0.1:0").expect("bind udp").local_addr().expect("addr").port();
        if tcp_free(port) && claim(port) {
            return port;
        }
    }
    panic!("no port free on both UDP and TCP");
}

/// An even port P with P..=P+3 free on UDP, in 10000..20000 (outside baresip's default RTP range
/// 20000-29999 and the kernel's ephemeral range): SIPp's `-mp` (it binds P and P+2).
pub fn free_media_port() -> u16 {
    for _ in 0..1000 {
        let port = 10_000 + 2 * (rand::random::<u16>() % 4_998);
        if (port..=port + 3).all(udp_free) && claim(port) {
            return port;
        }
    }
    panic!("no free media port pair in 10000..20000");
}

/// Whether something listens on 127.0.0.1:`port` (or 0.0.0.0): UDP bound, or TCP in LISTEN.
pub fn port_bound(port: u16, tcp: bool) -> bool {
    let table = std::fs::read_to_string(if tcp { "/proc/net/tcp" } else { "/proc/net/udp" }).unwrap_or_default();
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 3
            && matches!(f[1].split_once(':'), Some((ip, p))
                if (ip == "0100007F" || ip == "00000000") && u16::from_str_radix(p, 16) == Ok(port))
            && (!tcp || f[3] == "0A")
    })
}

// ---------------------------------------------------------------------------------------------
// Audio

/// `secs` of a sine at `frequency_hz`, `amplitude` a fraction of full scale.
pub fn sine(frequency_hz: f64, sample_rate_hz: u32, secs: f64, amplitude: f64) -> Vec<i16> {
    let n = (secs * f64::from(sample_rate_hz)).round() as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(sample_rate_hz);
            (amplitude * 32767.0 * (2.0 * std::f64::consts::PI * frequency_hz * t).sin()).round() as i16
        })
        .collect()
}

/// Writes a headerless µ-law file (8 kHz, what SIPp's `rtp_stream` sends as PT 0) of a tone.
pub fn write_ulaw_tone(path: &Path, frequency_hz: f64, secs: f64, amplitude: f64) {
    let samples = sine(frequency_hz, 8000, secs, amplitude);
    let mut codes = vec![0u8; samples.len()];
    let n = agentline::media::g711::encode_ulaw(&samples, &mut codes);
    std::fs::write(path, &codes[..n]).expect("write µ-law tone");
}

/// Writes an 8 kHz mono S16LE WAV (what baresip's `aufile` source needs here) of a tone.
pub fn write_wav_tone(path: &Path, frequency_hz: f64, secs: f64, amplitude: f64) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut writer = hound::WavWriter::create(path, spec).expect("create WAV");
    for s in sine(frequency_hz, 8000, secs, amplitude) {
        writer.write_sample(s).expect("write sample");
    }
    writer.finalize().expect("finalize WAV");
}

/// A 16-bit PCM WAV's samples (first channel only) and sample rate. Tolerates a file still being
/// written (baresip's sndfile fixes the sizes in the header only when the call ends): a zero or
/// too large data size means "up to the end of the file".
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "{} is not a WAV",
        path.display()
    );
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let (mut at, mut format) = (12usize, None);
    while at + 8 <= bytes.len() {
        let (id, size) = (&bytes[at..at + 4], u32_at(at + 4) as usize);
        let body = at + 8;
        if id == b"fmt " {
            // (format tag, channels, sample rate, bits per sample)
            format = Some((u16_at(body), u16_at(body + 2), u32_at(body + 4), u16_at(body + 14)));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.expect("fmt chunk before data");
            assert!(tag == 1 || tag == 0xFFFE, "{}: not PCM (format {tag})", path.display());
            assert_eq!(bits, 16, "{}: not 16-bit", path.display());
            let end = if size == 0 || body + size > bytes.len() { bytes.len() } else { body + size };
            let frame = 2 * usize::from(channels.max(1));
            let samples = bytes[body..end].chunks_exact(frame).map(|f| i16::from_le_bytes([f[0], f[1]])).collect();
            return (samples, rate);
        }
        at = body + size + (size & 1);
    }
    panic!("{}: no data chunk", path.display());
}

/// The candidate frequency with the most power in `samples`, skipping the first `skip_secs`
/// (call setup, jitter buffer fill), or `None` for silence.
pub fn dominant(samples: &[i16], sample_rate_hz: u32, skip_secs: f64, candidates: &[f32]) -> Option<f32> {
    let skip = ((skip_secs * f64::from(sample_rate_hz)) as usize).min(samples.len());
    dominant_frequency(&samples[skip..], sample_rate_hz, candidates)
}

/// RMS of `samples` as a fraction of full scale.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| (f64::from(s) / 32768.0).powi(2)).sum();
    (sum / samples.len() as f64).sqrt()
}

// ---------------------------------------------------------------------------------------------
// A feed of lines or events from a reader thread, waited on with a timeout (sync or async).

struct Feed<T> {
    items: Mutex<(Vec<T>, bool)>,
    cond: Condvar,
    notify: tokio::sync::Notify,
}

impl<T: Clone> Feed<T> {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            items: Mutex::new((Vec::new(), false)),
            cond: Condvar::new(),
            notify: tokio::sync::Notify::new(),
        })
    }

    fn push(&self, item: T) {
        self.items.lock().expect("feed lock").0.push(item);
        self.cond.notify_all();
        self.notify.notify_waiters();
    }

    fn close(&self) {
        self.items.lock().expect("feed lock").1 = true;
        self.cond.notify_all();
        self.notify.notify_waiters();
    }

    fn snapshot(&self) -> Vec<T> {
        self.items.lock().expect("feed lock").0.clone()
    }

    /// Blocks until `find` returns `Some` over the items, the feed closed, or `timeout`.
    fn wait_blocking<R>(&self, timeout: Duration, mut find: impl FnMut(&[T]) -> Option<R>) -> Option<R> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.items.lock().expect("feed lock");
        loop {
            if let Some(r) = find(&guard.0) {
                return Some(r);
            }
            let now = Instant::now();
            if guard.1 || now >= deadline {
                return None;
            }
            guard = self.cond.wait_timeout(guard, deadline - now).expect("feed lock").0;
        }
    }

    /// As [`Self::wait_blocking`], without blocking the runtime.
    async fn wait<R>(&self, timeout: Duration, mut find: impl FnMut(&[T]) -> Option<R>) -> Option<R> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let guard = self.items.lock().expect("feed lock");
                if let Some(r) = find(&guard.0) {
                    return Some(r);
                }
                if guard.1 {
                    return None;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let guard = self.items.lock().expect("feed lock");
                return find(&guard.0);
            }
        }
    }
}

/// Reads `reader` line by line (lossy UTF-8) into `feed` and `log_file` until EOF.
fn pump_lines(reader: impl Read + Send + 'static, feed: Arc<Feed<String>>, log_file: PathBuf) {
    std::thread::spawn(move || {
        let mut file = std::fs::File::create(&log_file).ok();
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Some(f) = file.as_mut() {
                        let _ = f.write_all(&buf);
                    }
                    feed.push(String::from_utf8_lossy(&buf).trim_end().to_owned());
                }
            }
        }
        feed.close();
    });
}

fn kill_and_reap(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------------
// SIPp

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// SIPp's `-t` value: one socket for all calls (`u1`, `t1`).
    pub fn sipp_flag(self) -> &'static str {
        match self {
            Self::Udp => "u1",
            Self::Tcp => "t1",
        }
    }

    /// The URI parameter to reach a peer over this transport (`""` or `";transport=tcp"`).
    pub fn uri_param(self) -> &'static str {
        match self {
            Self::Udp => "",
            Self::Tcp => ";transport=tcp",
        }
    }
}

/// How a SIPp run ended. SIPp's exit codes (`man sipp`): 0 all calls succeeded, 1 at least one
/// failed, 97 exit on an internal command, 99 normal exit without calls processed, 255 (-1) fatal
/// error, 254 (-2) fatal error binding a socket.
#[derive(Debug, Clone)]
pub struct SippOutcome {
    /// `None` if SIPp was killed (by the wait's timeout or a signal).
    pub exit_code: Option<i32>,
    pub successful_calls: u64,
    pub failed_calls: u64,
    /// The wait's own timeout expired and SIPp was killed.
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    /// `*_errors.log` (`-trace_err`): why calls failed.
    pub errors: String,
    /// `*_logs.log` (`-trace_logs`): the scenarios' `<log>` lines, e.g. `AUTH_OK call 1`.
    pub logs: String,
}

impl SippOutcome {
    /// Exit 0 and at least one successful call.
    pub fn all_ok(&self) -> bool {
        self.exit_code == Some(0) && self.successful_calls > 0 && self.failed_calls == 0
    }

    /// Everything, for an assertion message.
    pub fn report(&self) -> String {
        format!(
            "sipp exit {:?} (timed out: {}), successful {}, failed {}\n--- errors ---\n{}\n--- logs ---\n{}\n--- stderr ---\n{}\n--- stdout (tail) ---\n{}",
            self.exit_code,
            self.timed_out,
            self.successful_calls,
            self.failed_calls,
            self.errors,
            self.logs,
            self.stderr,
            tail(&self.stdout, 60)
        )
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The cumulative value of a row of SIPp's final statistics screen, e.g. "Successful call".
fn stat(stdout: &str, row: &str) -> u64 {
    stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with(row))
        .and_then(|l| l.rsplit('|').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A SIPp run to configure, then [`SippBuilder::spawn`]. Always passes `-nostdin`, `-i`/`-mi`/`-ci`
/// 127.0.0.1, a free `-p`, `-mp` and `-cp`, `-m` (default 1), `-timeout` (default 30 s) with
/// `-timeout_error`, `-trace_err` and `-trace_logs`; SIPp runs in its own temporary directory,
/// which holds `tone.ul` and the trace files.
pub struct SippBuilder {
    scenario: String,
    remote: Option<SocketAddr>,
    service: Option<String>,
    transport: Transport,
    calls: u32,
    limit: Option<u32>,
    rate: Option<f64>,
    vars: Vec<(String, String)>,
    args: Vec<String>,
    rtp_echo: bool,
    timeout: Duration,
    tone: Option<Vec<u8>>,
    sip_port: Option<u16>,
    media_port: Option<u16>,
}

impl SippBuilder {
    /// As a UAC: call `remote` (SIPp's positional `host:port`; the Request-URI user is
    /// [`Self::service`], default `service`).
    pub fn remote(mut self, remote: SocketAddr) -> Self {
        self.remote = Some(remote);
        self
    }

    /// `-s`: the user part of the Request-URI (`[service]`).
    pub fn service(mut self, service: &str) -> Self {
        self.service = Some(service.to_owned());
        self
    }

    /// `-t u1` (default) or `-t t1`.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// `-m`: SIPp exits after this many calls (default 1).
    pub fn calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// `-l`: at most this many calls at once.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// `-r`: new calls per second (UAC).
    pub fn rate(mut self, cps: f64) -> Self {
        self.rate = Some(cps);
        self
    }

    /// `-set NAME VALUE`: a scenario's global variable (`user`, `pass`, `hold_ms`).
    pub fn set(mut self, name: &str, value: impl ToString) -> Self {
        self.vars.push((name.to_owned(), value.to_string()));
        self
    }

    /// Extra raw arguments, e.g. `-trace_msg`.
    pub fn arg(mut self, arg: impl ToString) -> Self {
        self.args.push(arg.to_string());
        self
    }

    /// `-rtp_echo`: echo RTP arriving on the media port (`uas_echo.xml`).
    pub fn rtp_echo(mut self) -> Self {
        self.rtp_echo = true;
        self
    }

    /// `-timeout`: SIPp gives up (exit 1) after this long. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The headerless µ-law bytes `rtp_stream` plays (`tone.ul` in SIPp's directory).
    pub fn tone_ulaw(mut self, codes: Vec<u8>) -> Self {
        self.tone = Some(codes);
        self
    }

    /// A tone of `frequency_hz` at amplitude 0.5 as `tone.ul` (`secs` long, looped by the scenarios).
    pub fn tone(self, frequency_hz: f64, secs: f64) -> Self {
        let samples = sine(frequency_hz, 8000, secs, 0.5);
        let mut codes = vec![0u8; samples.len()];
        agentline::media::g711::encode_ulaw(&samples, &mut codes);
        self.tone_ulaw(codes)
    }

    /// `-p`: the local SIP port (default: a free one).
    pub fn sip_port(mut self, port: u16) -> Self {
        self.sip_port = Some(port);
        self
    }

    /// `-mp`: the media port, also P+2 (default: a free even one).
    pub fn media_port(mut self, port: u16) -> Self {
        self.media_port = Some(port);
        self
    }

    /// Starts SIPp. As a UAS (no [`Self::remote`] and no positional raw argument), returns once
    /// its SIP port is bound (UDP) or listening (TCP), so a caller can start at once.
    pub fn spawn(self) -> Sipp {
        ensure_installed();
        let dir = tempfile::Builder::new().prefix("sipp-").tempdir().expect("sipp tempdir");
        let sip_port = self.sip_port.unwrap_or_else(free_sip_port);
        let media_port = self.media_port.unwrap_or_else(free_media_port);
        let scenario = if let Some(builtin) = self.scenario.strip_prefix("builtin:") {
            vec!["-sn".to_owned(), builtin.to_owned()]
        } else {
            let file =
                if self.scenario.ends_with(".xml") { self.scenario.clone() } else { format!("{}.xml", self.scenario) };
            let path = sip_dir().join(&file);
            assert!(path.is_file(), "no scenario {}", path.display());
            vec!["-sf".to_owned(), path.display().to_string()]
        };
        // The rtp_stream scenarios load tone.ul when SIPp starts: 1 kHz unless told otherwise.
        match &self.tone {
            Some(tone) => std::fs::write(dir.path().join("tone.ul"), tone).expect("write tone.ul"),
            None => write_ulaw_tone(&dir.path().join("tone.ul"), 1000.0, 10.0, 0.5),
        }
        // A socket address among the raw arguments is a UAC's remote host.
        let is_uac = self.remote.is_some() || self.args.iter().any(|a| a.parse::<SocketAddr>().is_ok());

        let mut args: Vec<String> = Vec::new();
        if let Some(remote) = self.remote {
            args.push(remote.to_string());
            args.extend(["-s".to_owned(), self.service.clone().unwrap_or_else(|| "service".to_owned())]);
        } else if let Some(service) = &self.service {
            args.extend(["-s".to_owned(), service.clone()]);
        }
        args.extend(scenario);
        let s = |v: &str| v.to_owned();
        args.extend([s("-t"), s(self.transport.sipp_flag())]);
        args.extend([s("-i"), s("127.0.0.1"), s("-p"), sip_port.to_string()]);
        args.extend([s("-mi"), s("127.0.0.1"), s("-mp"), media_port.to_string()]);
        args.extend([s("-ci"), s("127.0.0.1"), s("-cp"), free_udp_port().to_string()]);
        args.extend([s("-m"), self.calls.to_string()]);
        if let Some(limit) = self.limit {
            args.extend([s("-l"), limit.to_string()]);
        }
        if let Some(rate) = self.rate {
            args.extend([s("-r"), rate.to_string()]);
        }
        for (name, value) in &self.vars {
            args.extend([s("-set"), name.clone(), value.clone()]);
        }
        if self.rtp_echo {
            args.push(s("-rtp_echo"));
        }
        args.extend([s("-timeout"), format!("{}s", self.timeout.as_secs().max(1)), s("-timeout_error")]);
        args.extend([s("-nostdin"), s("-trace_err"), s("-trace_logs")]);
        args.extend(self.args.iter().cloned());

        let stdout = std::fs::File::create(dir.path().join("stdout.txt")).expect("stdout file");
        let stderr = std::fs::File::create(dir.path().join("stderr.txt")).expect("stderr file");
        let child = Command::new("sipp")
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("sipp starts");
        let mut sipp = Sipp { child, dir, sip_port, media_port, transport: self.transport, args };
        if !is_uac {
            sipp.wait_listening(Duration::from_secs(10));
        }
        sipp
    }
}

/// A running SIPp, killed on drop. Its files stay in [`Sipp::dir`] until then.
pub struct Sipp {
    child: Child,
    dir: tempfile::TempDir,
    pub sip_port: u16,
    pub media_port: u16,
    pub transport: Transport,
    pub args: Vec<String>,
}

impl Sipp {
    /// A run of `scenario`: a file name in `tests/peers/sip` (`uas_486` or `uas_486.xml`), or
    /// `builtin:NAME` for SIPp's own (`-sn`).
    pub fn builder(scenario: &str) -> SippBuilder {
        SippBuilder {
            scenario: scenario.to_owned(),
            remote: None,
            service: None,
            transport: Transport::Udp,
            calls: 1,
            limit: None,
            rate: None,
            vars: Vec::new(),
            args: Vec::new(),
            rtp_echo: false,
            timeout: Duration::from_secs(30),
            tone: None,
            sip_port: None,
            media_port: None,
        }
    }

    /// `Sipp::builder(scenario)` with raw extra arguments (a UAC if one of them is a socket
    /// address, e.g. `"127.0.0.1:5060"`; then also pass `-s USER`).
    pub fn spawn(scenario: &str, args: &[&str]) -> Self {
        args.iter().fold(Self::builder(scenario), |b, a| b.arg(a)).spawn()
    }

    /// A UAS: `scenario` listening on a free port over `transport`.
    pub fn uas(scenario: &str, transport: Transport) -> SippBuilder {
        Self::builder(scenario).transport(transport)
    }

    /// A UAC: `scenario` calling `service@target` over `transport`.
    pub fn uac(scenario: &str, target: SocketAddr, service: &str, transport: Transport) -> SippBuilder {
        Self::builder(scenario).remote(target).service(service).transport(transport)
    }

    /// Where this SIPp listens: `127.0.0.1:sip_port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    /// A SIP URI reaching this SIPp, with `;transport=tcp` over TCP.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}{}", self.sip_port, self.transport.uri_param())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Blocks until the SIP port is bound (UDP) or listening (TCP); panics after `timeout` or if
    /// SIPp exited first.
    pub fn wait_listening(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let tcp = self.transport == Transport::Tcp;
        while !port_bound(self.sip_port, tcp) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sipp exited ({status}) before listening:\n{}", self.collect(status.code(), false).report());
            }
            assert!(Instant::now() < deadline, "sipp did not listen on {} within {timeout:?}", self.sip_port);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGUSR1: SIPp places no new calls, lets the running ones finish, then exits.
    pub fn soft_exit(&self) {
        let _ = Command::new("kill").args(["-USR1", &self.child.id().to_string()]).status();
    }

    /// Waits for SIPp to exit, at most `timeout` (then kills it: `timed_out`).
    pub async fn wait(&mut self, timeout: Duration) -> SippOutcome {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return self.collect(status.code(), false);
            }
            if tokio::time::Instant::now() >= deadline {
                kill_and_reap(&mut self.child);
                return self.collect(None, true);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// [`Self::wait`], blocking.
    pub fn wait_blocking(&mut self, timeout: Duration) -> SippOutcome {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return self.collect(status.code(), false);
            }
            if Instant::now() >= deadline {
                kill_and_reap(&mut self.child);
                return self.collect(None, true);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn collect(&self, exit_code: Option<i32>, timed_out: bool) -> SippOutcome {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let suffixed = |suffix: &str| {
            let mut out = String::new();
            for entry in std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().ends_with(suffix) {
                    let _ = writeln!(out, "{}", std::fs::read_to_string(entry.path()).unwrap_or_default());
                }
            }
            out
        };
        let stdout = read("stdout.txt");
        SippOutcome {
            exit_code,
            successful_calls: stat(&stdout, "Successful call"),
            failed_calls: stat(&stdout, "Failed call"),
            timed_out,
            stderr: read("stderr.txt"),
            errors: suffixed("_errors.log"),
            logs: suffixed("_logs.log"),
            stdout,
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

// ---------------------------------------------------------------------------------------------
// baresip

/// How to start baresip (`tests/peers/sip/baresip.sh`).
#[derive(Debug, Clone)]
pub struct BaresipOptions {
    /// Account user part: `sip:USER@127.0.0.1:PORT` (default `bob`).
    pub user: String,
    /// Digest username and password baresip answers 401/407 with (default `bob` / `secret`).
    pub auth_user: String,
    pub password: String,
    /// `auto` (default), `manual` or `early`.
    pub answer_mode: String,
    /// Account `audio_codecs` (default `PCMU,PCMA`).
    pub codecs: String,
    /// The tone baresip sends (an 8 kHz WAV written for it), Hz; default 440.
    pub tone_hz: f64,
    /// Its length; baresip ends the call when the file ends. Default 60 s.
    pub tone_secs: f64,
    /// `rtp_ports` "MIN-MAX" (default the script's 20000-29999).
    pub rtp_ports: Option<String>,
}

impl Default for BaresipOptions {
    fn default() -> Self {
        Self {
            user: "bob".to_owned(),
            auth_user: "bob".to_owned(),
            password: "secret".to_owned(),
            answer_mode: "auto".to_owned(),
            codecs: "PCMU,PCMA".to_owned(),
            tone_hz: 440.0,
            tone_secs: 60.0,
            rtp_ports: None,
        }
    }
}

/// A baresip process on 127.0.0.1 with a ctrl_tcp connection, killed on drop. Its config and
/// recordings live in a temporary directory until then.
pub struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
    pub sip_port: u16,
    pub ctrl_port: u16,
    pub options: BaresipOptions,
    log: Arc<Feed<String>>,
    events: Arc<Feed<Value>>,
    consumed: Mutex<HashSet<usize>>,
    ctrl: Mutex<TcpStream>,
    tokens: AtomicU64,
}

impl Baresip {
    /// baresip with [`BaresipOptions::default`]: auto-answers as `bob`, sends 440 Hz.
    pub fn spawn() -> Self {
        Self::spawn_with(BaresipOptions::default())
    }

    /// Starts baresip and connects to its ctrl_tcp; returns once it printed "baresip is ready.".
    pub fn spawn_with(options: BaresipOptions) -> Self {
        ensure_installed();
        let dir = tempfile::Builder::new().prefix("baresip-").tempdir().expect("baresip tempdir");
        let tone = dir.path().join("tone8k.wav");
        write_wav_tone(&tone, options.tone_hz, options.tone_secs, 0.5);
        let sip_port = free_sip_port();
        let ctrl_port = free_tcp_port();
        let mut cmd = Command::new("bash");
        cmd.arg(sip_dir().join("baresip.sh"))
            .arg(dir.path().join("cfg"))
            .arg(sip_port.to_string())
            .arg(ctrl_port.to_string())
            .arg(&tone);
        if let Some(range) = &options.rtp_ports {
            cmd.arg(range);
        }
        cmd.env("BARESIP_USER", &options.user)
            .env("BARESIP_AUTH_USER", &options.auth_user)
            .env("BARESIP_PASS", &options.password)
            .env("BARESIP_ANSWERMODE", &options.answer_mode)
            .env("BARESIP_CODECS", &options.codecs)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("baresip starts");
        let log = Feed::new();
        pump_lines(child.stdout.take().expect("stdout"), log.clone(), dir.path().join("baresip.log"));
        pump_lines(child.stderr.take().expect("stderr"), log.clone(), dir.path().join("baresip.err"));
        let ready = log.wait_blocking(Duration::from_secs(10), |lines| {
            lines.iter().any(|l| l.contains("baresip is ready.")).then_some(())
        });
        if ready.is_none() {
            kill_and_reap(&mut child);
            panic!("baresip did not start:\n{}", log.snapshot().join("\n"));
        }
        let stream = TcpStream::connect(("127.0.0.1", ctrl_port)).expect("connect to baresip ctrl_tcp");
        let events = Feed::new();
        read_netstrings(stream.try_clone().expect("clone ctrl stream"), events.clone());
        Self {
            child,
            dir,
            sip_port,
            ctrl_port,
            options,
            log,
            events,
            consumed: Mutex::new(HashSet::new()),
            ctrl: Mutex::new(stream),
            tokens: AtomicU64::new(1),
        }
    }

    /// This baresip's account URI, `sip:USER@127.0.0.1:PORT` (UDP).
    pub fn uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{}", self.options.user, self.sip_port)
    }

    /// This baresip's URI over `transport`.
    pub fn uri_over(&self, transport: Transport) -> String {
        format!("{}{}", self.uri(), transport.uri_param())
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends a ctrl_tcp command and waits (≤ 5 s) for its response:
    /// `{"response":true,"ok":bool,"data":"…","token":"…"}`.
    pub async fn command(&self, command: &str, params: &str) -> Value {
        let token = format!("t{}", self.tokens.fetch_add(1, Ordering::SeqCst));
        let body = json!({"command": command, "params": params, "token": token}).to_string();
        {
            let mut stream = self.ctrl.lock().expect("ctrl lock");
            stream.write_all(format!("{}:{body},", body.len()).as_bytes()).expect("write ctrl command");
        }
        self.events
            .wait(Duration::from_secs(5), |msgs| {
                msgs.iter().find(|m| m["response"] == true && m["token"] == token.as_str()).cloned()
            })
            .await
            .unwrap_or_else(|| panic!("baresip: no response to {command} {params}\n{}", self.log_text()))
    }

    /// `dial URI`: an outgoing call (over TCP with `;transport=tcp` in the URI). Panics if refused.
    pub async fn dial(&self, uri: &str) {
        let resp = self.command("dial", uri).await;
        assert_eq!(resp["ok"], true, "baresip dial {uri}: {resp}");
    }

    /// `hangup`: ends the current call (BYE, or CANCEL before the answer).
    pub async fn hangup(&self) {
        let resp = self.command("hangup", "").await;
        assert_eq!(resp["ok"], true, "baresip hangup: {resp}");
    }

    /// `sndcode DIGIT`: sends one DTMF digit (0-9, *, #, A-D) on the current call, as RFC 4733
    /// telephone-event when the call negotiated it.
    pub async fn send_dtmf(&self, digit: char) {
        let resp = self.command("sndcode", &digit.to_string()).await;
        assert_eq!(resp["ok"], true, "baresip sndcode {digit}: {resp}");
    }

    /// The next event of `kind` (`CALL_INCOMING`, `CALL_RINGING`, `CALL_ESTABLISHED`,
    /// `CALL_CLOSED`, `CALL_RTPESTAB`, …) not returned before; panics after `timeout`.
    pub async fn wait_event(&self, kind: &str, timeout: Duration) -> Value {
        let found = self
            .events
            .wait(timeout, |msgs| {
                let consumed = self.consumed.lock().expect("consumed lock");
                msgs.iter()
                    .enumerate()
                    .find(|(i, m)| m["event"] == true && m["type"] == kind && !consumed.contains(i))
                    .map(|(i, m)| (i, m.clone()))
            })
            .await;
        let Some((index, event)) = found else {
            panic!(
                "baresip: no {kind} event within {timeout:?}; events: {:?}\n{}",
                self.events
                    .snapshot()
                    .iter()
                    .filter(|m| m["event"] == true)
                    .map(|m| m["type"].clone())
                    .collect::<Vec<_>>(),
                self.log_text()
            );
        };
        self.consumed.lock().expect("consumed lock").insert(index);
        event
    }

    /// Every event so far (including consumed ones).
    pub fn events(&self) -> Vec<Value> {
        self.events.snapshot().into_iter().filter(|m| m["event"] == true).collect()
    }

    /// Waits for a line of baresip's output containing `needle` (e.g. `received event: '1'`).
    pub async fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        self.log
            .wait(timeout, |lines| lines.iter().find(|l| l.contains(needle)).cloned())
            .await
            .unwrap_or_else(|| panic!("baresip: no log line with {needle:?} within {timeout:?}\n{}", self.log_text()))
    }

    /// baresip's output so far.
    pub fn log_text(&self) -> String {
        self.log.snapshot().join("\n")
    }

    /// The recordings of `kind` ("dec": what baresip received; "enc": what it sent), oldest first.
    pub fn recordings(&self, kind: &str) -> Vec<PathBuf> {
        let rec = self.dir.path().join("cfg/rec");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&rec)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(&format!("-{kind}.wav"))))
            .collect();
        files.sort();
        files
    }

    /// Waits until the newest `*-dec.wav` holds at least `secs` of received audio (baresip writes
    /// it in real time while a call is up); panics after `timeout`.
    pub async fn wait_received_secs(&self, secs: f64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(last) = self.recordings("dec").last()
                && let Ok(bytes) = std::fs::metadata(last).map(|m| m.len())
                && bytes > 44
            {
                let (samples, rate) = read_wav(last);
                if rate > 0 && samples.len() as f64 >= secs * f64::from(rate) {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "baresip received less than {secs} s of audio within {timeout:?}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The newest `*-dec.wav` (what baresip received): samples and sample rate.
    pub fn received_audio(&self) -> (Vec<i16>, u32) {
        let files = self.recordings("dec");
        let last = files.last().unwrap_or_else(|| panic!("baresip recorded nothing\n{}", self.log_text()));
        read_wav(last)
    }

    /// The newest `*-enc.wav` (what baresip sent).
    pub fn sent_audio(&self) -> (Vec<i16>, u32) {
        let files = self.recordings("enc");
        let last = files.last().unwrap_or_else(|| panic!("baresip recorded nothing\n{}", self.log_text()));
        read_wav(last)
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Ok(stream) = self.ctrl.lock() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        kill_and_reap(&mut self.child);
    }
}

/// Reads netstring-framed JSON (`LEN:{…},`) from baresip's ctrl_tcp into `feed` until EOF.
fn read_netstrings(mut stream: TcpStream, feed: Arc<Feed<Value>>) {
    std::thread::spawn(move || {
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            while let Some(colon) = buf.iter().position(|&b| b == b':') {
                let Some(len) = std::str::from_utf8(&buf[..colon]).ok().and_then(|s| s.parse::<usize>().ok()) else {
                    buf.clear(); // out of sync: baresip never does this
                    break;
                };
                if buf.len() < colon + 1 + len + 1 {
                    break;
                }
                if let Ok(value) = serde_json::from_slice::<Value>(&buf[colon + 1..colon + 1 + len]) {
                    feed.push(value);
                }
                buf.drain(..colon + 1 + len + 1);
            }
        }
        feed.close();
    });
}
