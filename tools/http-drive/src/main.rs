//! Closed-loop HTTP/1.1 load driver for `tools/bench-sms-e2e.sh`: `--n` requests over `--c`
//! keep-alive connections, each connection sending its next request as soon as the previous
//! answer is read. The same driver serves both sides of the benchmark (Kannel's `sendsms` and
//! agentline's `POST /sms/send`), so the load is the same; it is native code because the Node
//! client it replaces took about as much CPU per request as the server under test, on the
//! same two cores.
//!
//! Templates: `{i}` is the request's index (0-based), `{code}` is `100000 + i % 900000`.
//! stdout: one JSON object (counts, first error, epoch times). `--out FILE`: per request, two
//! little-endian f64: start (unix ms) and latency (ms, NaN when the request failed).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

struct Args {
    n: usize,
    c: usize,
    method: hyper::Method,
    host: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    ok: Vec<u16>,
    out: Option<String>,
}

fn usage(msg: &str) -> ! {
    eprintln!("http-drive: {msg}");
    eprintln!(
        "usage: http-drive --n N --c C --url http://HOST:PORT/PATH [--method GET|POST] [--header 'K: V']... \
         [--body TEMPLATE] [--ok 200,202] [--out FILE]"
    );
    std::process::exit(1)
}

fn parse_args() -> Args {
    let mut args = Args {
        n: 0,
        c: 1,
        method: hyper::Method::GET,
        host: String::new(),
        path: String::new(),
        headers: Vec::new(),
        body: None,
        ok: vec![200],
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--n" => args.n = value.parse().unwrap_or_else(|_| usage("--n: a count")),
            "--c" => args.c = value.parse().unwrap_or_else(|_| usage("--c: a count")),
            "--method" => args.method = value.parse().unwrap_or_else(|_| usage("--method")),
            "--url" => {
                let rest = value.strip_prefix("http://").unwrap_or_else(|| usage("--url: http:// only"));
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                args.host = host.to_owned();
                args.path = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
            }
            "--header" => {
                let (k, v) = value.split_once(':').unwrap_or_else(|| usage("--header: 'Name: value'"));
                args.headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            "--body" => args.body = Some(value),
            "--ok" => {
                args.ok =
                    value.split(',').map(|s| s.trim().parse().unwrap_or_else(|_| usage("--ok: statuses"))).collect()
            }
            "--out" => args.out = Some(value),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if args.host.is_empty() || args.c == 0 {
        usage("--url and a positive --c are required");
    }
    args
}

fn fill(template: &str, i: usize) -> String {
    template.replace("{i}", &i.to_string()).replace("{code}", &(100_000 + i % 900_000).to_string())
}

/// `text` as a JSON string literal (an error may quote a response body: quotes, newlines).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn epoch_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[derive(Default)]
struct Tally {
    next: usize,
    accepted: usize,
    errors: usize,
    first_error: Option<String>,
    last_accept: Option<Instant>,
    /// (start offset from t0 in ms, latency in ms or NaN)
    records: Vec<(f64, f64)>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Rc::new(parse_args());
    let tally = Rc::new(RefCell::new(Tally { records: vec![(f64::NAN, f64::NAN); args.n], ..Tally::default() }));
    let t0_epoch = epoch_ms();
    let t0 = Instant::now();
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let mut workers = Vec::new();
            for _ in 0..args.c.min(args.n.max(1)) {
                workers.push(tokio::task::spawn_local(worker(args.clone(), tally.clone(), t0)));
            }
            for w in workers {
                let _ = w.await;
            }
        })
        .await;
    let tally = tally.borrow();
    let last = tally.last_accept.map(|t| t0_epoch + (t - t0).as_secs_f64() * 1000.0);
    let first_error = tally.first_error.as_deref().map_or("null".to_owned(), json_string);
    println!(
        "{{\"accepted\":{},\"errors\":{},\"first_error\":{},\"t0_epoch_ms\":{:.3},\"t_last_accept_epoch_ms\":{}}}",
        tally.accepted,
        tally.errors,
        first_error,
        t0_epoch,
        last.map_or("null".to_owned(), |t| format!("{t:.3}"))
    );
    if let Some(path) = &args.out {
        let mut bytes = Vec::with_capacity(tally.records.len() * 16);
        for (start, lat) in &tally.records {
            bytes.extend_from_slice(&(t0_epoch + start).to_le_bytes());
            bytes.extend_from_slice(&lat.to_le_bytes());
        }
        if let Err(e) = std::fs::write(path, bytes) {
            usage(&format!("cannot write {path}: {e}"));
        }
    }
}

/// One keep-alive connection: takes the next index until all are taken; reconnects after an
/// error (the failed request counts as an error and is not retried).
async fn worker(args: Rc<Args>, tally: Rc<RefCell<Tally>>, t0: Instant) {
    let mut sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> = None;
    loop {
        let i = {
            let mut t = tally.borrow_mut();
            if t.next >= args.n {
                return;
            }
            t.next += 1;
            t.next - 1
        };
        let start = Instant::now();
        let outcome = one(&args, &mut sender, i).await;
        let latency = start.elapsed().as_secs_f64() * 1000.0;
        let mut t = tally.borrow_mut();
        let offset = (start - t0).as_secs_f64() * 1000.0;
        match outcome {
            Ok(()) => {
                t.accepted += 1;
                t.last_accept = Some(Instant::now());
                t.records[i] = (offset, latency);
            }
            Err(e) => {
                sender = None;
                t.errors += 1;
                t.first_error.get_or_insert(e);
                t.records[i] = (offset, f64::NAN);
            }
        }
    }
}

async fn one(
    args: &Args,
    sender: &mut Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    i: usize,
) -> Result<(), String> {
    if sender.is_none() {
        let stream = tokio::net::TcpStream::connect(&args.host).await.map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let (send, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        *sender = Some(send);
    }
    let send = sender.as_mut().ok_or("no connection")?;
    send.ready().await.map_err(|e| format!("connection: {e}"))?;
    let mut req = Request::builder().method(args.method.clone()).uri(fill(&args.path, i)).header("host", &args.host);
    for (k, v) in &args.headers {
        req = req.header(k, v);
    }
    let body = args.body.as_deref().map(|b| fill(b, i)).unwrap_or_default();
    let req = req.body(Full::new(Bytes::from(body))).map_err(|e| format!("request: {e}"))?;
    let resp = send.send_request(req).await.map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
    if args.ok.contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(160)])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_what_json_requires() {
        assert_eq!(json_string("HTTP 400: {\"a\":\"b\\c\"}\n\t\u{1}é"), r#""HTTP 400: {\"a\":\"b\\c\"}\n\t\u0001é""#);
    }

    #[test]
    fn templates_fill_index_and_code() {
        assert_eq!(fill("/x?i={i}&t={code}", 900_001), "/x?i=900001&t=100001");
    }
}
