//! The floor under any voice stream server on this machine: the CPU that the socket traffic of N
//! concurrent calls costs by itself, with no WebSocket library, no audio work, no task switches.
//!
//! N loopback TCP connections (Nagle off). Two threads, one per side ("server" holding the
//! accepted ends, "client" the connecting ends), each on a 20 ms monotonic schedule: per tick it
//! writes one frame to every one of its N sockets (644 bytes server → client: a 640-byte binary
//! WebSocket frame with its 4-byte header; 648 bytes client → server: the masked client frame) and
//! makes one non-blocking read of each. That is one write and one read system call per frame per
//! side, in one loop, without epoll or wake-ups: fewer than any real server needs. Each side's
//! CPU is read from `/proc/thread-self/schedstat` (on-CPU nanoseconds, user + kernel, including
//! the loopback delivery the kernel does in the sender's context).
//!
//! usage: socket_floor CALLS [SECONDS=10]
//! prints, per side: CPU-ms per call-second, the share of one core, frames written late (a tick
//! that started more than 20 ms after its due instant), bytes received against bytes expected.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(20);
const SERVER_FRAME: usize = 644;
const CLIENT_FRAME: usize = 648;

struct SideReport {
    name: &'static str,
    cpu_ns: u64,
    late_ticks: u64,
    ticks: u64,
    received: u64,
    write_blocked: u64,
}

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn run_side(
    name: &'static str,
    mut socks: Vec<TcpStream>,
    frame: usize,
    peer_frame: usize,
    start: Instant,
    ticks: u64,
) -> SideReport {
    let expected = (socks.len() * peer_frame) as u64 * ticks;
    let out = vec![0x55u8; frame];
    let mut buf = [0u8; 4096];
    let mut received = 0u64;
    let mut late_ticks = 0u64;
    let mut write_blocked = 0u64;
    let cpu0 = thread_cpu_ns();
    for k in 0..ticks {
        let due = start + TICK * u32::try_from(k).expect("ticks fit u32");
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
        } else if now - due > TICK {
            late_ticks += 1;
        }
        for s in &mut socks {
            match s.write(&out) {
                Ok(n) if n == out.len() => {}
                Ok(_) | Err(_) => write_blocked += 1,
            }
            match s.read(&mut buf) {
                Ok(n) => received += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{name}: read: {e}"),
            }
        }
    }
    let cpu_ns = thread_cpu_ns() - cpu0;
    // Drain what is still in flight (the peer's last frames) so the byte count is complete.
    let drain_until = Instant::now() + Duration::from_millis(500);
    while received < expected && Instant::now() < drain_until {
        for s in &mut socks {
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => received += n as u64,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{name}: drain: {e}"),
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    SideReport { name, cpu_ns, late_ticks, ticks, received, write_blocked }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).expect("usage: socket_floor CALLS [SECONDS]");
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut clients = Vec::with_capacity(calls);
    let mut servers = Vec::with_capacity(calls);
    for _ in 0..calls {
        let c = TcpStream::connect(addr).expect("connect (raise ulimit -n?)");
        let (s, _) = listener.accept().expect("accept");
        for x in [&c, &s] {
            x.set_nodelay(true).expect("nodelay");
            x.set_nonblocking(true).expect("nonblocking");
        }
        clients.push(c);
        servers.push(s);
    }
    let ticks = seconds * 1000 / 20;
    let start = Instant::now() + Duration::from_millis(100);
    let wall0 = Instant::now();
    let server = std::thread::spawn(move || run_side("server", servers, SERVER_FRAME, CLIENT_FRAME, start, ticks));
    // The client side starts half a tick later, as a real peer's phase would differ.
    let client =
        std::thread::spawn(move || run_side("client", clients, CLIENT_FRAME, SERVER_FRAME, start + TICK / 2, ticks));
    let reports = [server.join().expect("server thread"), client.join().expect("client thread")];
    let wall = wall0.elapsed();
    println!(
        "socket floor: {calls} calls, {seconds} s, one write + one read per frame per side, {} cores, wall {:.1} s",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        wall.as_secs_f64()
    );
    for (r, peer_frame) in [(&reports[0], CLIENT_FRAME), (&reports[1], SERVER_FRAME)] {
        let call_seconds = calls as f64 * seconds as f64;
        let expected = (calls as u64) * r.ticks * peer_frame as u64;
        println!(
            "  {:<6} CPU {:.3} ms per call-second = {:.0} % of a core; ticks late > 20 ms: {}/{}; \
             writes short/blocked: {}; received {} of {} bytes",
            r.name,
            r.cpu_ns as f64 / 1e6 / call_seconds,
            r.cpu_ns as f64 / 1e7 / seconds as f64,
            r.late_ticks,
            r.ticks,
            r.write_blocked,
            r.received,
            expected
        );
    }
}
