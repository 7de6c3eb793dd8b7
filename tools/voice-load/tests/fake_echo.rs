//! End to end against the in-process fake echo: the harness must measure the configured echo
//! delay, count every frame, and notice dropped ones.

use std::time::Duration;

use voice_load::fake::{FakeOpts, serve};
use voice_load::run::{Config, Target, run};

async fn fake(opts: FakeOpts) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve(listener, opts));
    format!("ws://127.0.0.1:{port}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_the_echo_delay_and_a_clean_clock() {
    let url = fake(FakeOpts { delay: Duration::from_millis(80), ..FakeOpts::default() }).await;
    let r = run(Config::new(Target::Fake { url }, 8, 3)).await.unwrap();
    eprintln!("{}", voice_load::report::text(&r));
    assert_eq!(r["calls_up"], 8);
    assert_eq!(r["frames"]["expected"], 8 * 150);
    assert_eq!(r["frames"]["missing"], 0);
    assert_eq!(r["frames"]["non_640"], 0);
    assert_eq!(r["echo"]["bursts_sent"], 8 * 3);
    assert_eq!(r["echo"]["echoes_matched"], 8 * 3);
    assert_eq!(r["echo"]["spurious_onsets"], 0);
    let p50 = r["echo"]["rtt"]["p50_ms"].as_f64().unwrap();
    let min = r["echo"]["rtt"]["min_ms"].as_f64().unwrap();
    assert!((79.0..83.0).contains(&p50), "rtt p50 {p50}");
    assert!(min > 79.0, "rtt min {min}");
    assert_eq!(r["hangup"]["clean"], 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_dropped_frames() {
    let url = fake(FakeOpts { drop_every: 10, ..FakeOpts::default() }).await;
    let r = run(Config::new(Target::Fake { url }, 4, 2)).await.unwrap();
    let missing = r["frames"]["missing"].as_u64().unwrap();
    // A tenth of 400 frames is missing; the window is a fixed duration so the count is exact
    // within one frame per call.
    assert!((36..=44).contains(&missing), "missing {missing}");
    // A dropped frame leaves a gap of 40 ms plus jitter, which may count as late too, but no
    // other gap is late.
    assert!(r["frames"]["late_gt_40ms"].as_u64().unwrap() <= missing);
    assert_eq!(r["echo"]["spurious_onsets"], 0);
}

/// Round trips over a burst period are told apart by the bursts' tones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_round_trips_longer_than_the_burst_period() {
    let url = fake(FakeOpts { delay: Duration::from_millis(1500), ..FakeOpts::default() }).await;
    let mut cfg = Config::new(Target::Fake { url }, 3, 4);
    cfg.tail = Duration::from_secs(2);
    let r = run(cfg).await.unwrap();
    assert_eq!(r["echo"]["echoes_matched"], 3 * 4);
    assert_eq!(r["echo"]["spurious_onsets"], 0);
    let (min, max) = (r["echo"]["rtt"]["min_ms"].as_f64().unwrap(), r["echo"]["rtt"]["max_ms"].as_f64().unwrap());
    assert!(min > 1499.0 && max < 1503.0, "rtt {min}..{max}");
}
