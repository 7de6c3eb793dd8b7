//! The human-readable summary of a run's JSON report.

use serde_json::Value;

fn f(v: &Value) -> String {
    match v {
        Value::Null => "n/a".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn text(r: &Value) -> String {
    let fr = &r["frames"];
    let ia = &r["inter_arrival"];
    let e = &r["echo"];
    let rtt = &e["rtt"];
    let t = &r["server_tick"];
    let sp = &r["server_process"];
    let hp = &r["harness_process"];
    let hs = &r["harness_send"];
    let h = &r["hangup"];
    let mut o = String::new();
    o += &format!(
        "mode {}  calls {} requested, {} up (setup {} s)  window {} s\n",
        f(&r["mode"]),
        f(&r["calls_requested"]),
        f(&r["calls_up"]),
        f(&r["setup_seconds"]),
        f(&r["seconds"])
    );
    let su = &r["setup"];
    if su.is_object() {
        o += &format!(
            "setup  {} answered in {} s (first dial -> last answer): {} /s (offered {} /s)  dial response ms p50 {} p99 {}  dial -> answered ms p50 {} p99 {} max {}\n",
            f(&su["answered"]),
            f(&su["first_dial_to_last_answer_s"]),
            f(&su["achieved_per_second"]),
            f(&su["offered_per_second"]),
            f(&su["dial_response"]["p50_ms"]),
            f(&su["dial_response"]["p99_ms"]),
            f(&su["dial_to_answered"]["p50_ms"]),
            f(&su["dial_to_answered"]["p99_ms"]),
            f(&su["dial_to_answered"]["max_ms"])
        );
    }
    if r["setup_failures"].as_object().is_some_and(|m| !m.is_empty()) {
        o += &format!("setup failures: {}\n", r["setup_failures"]);
    }
    o += &format!(
        "frames  expected {}  received {}  missing {} ({} %, {} calls)  late(>40ms) {} ({} %)  non-640 {}\n",
        f(&fr["expected"]),
        f(&fr["received"]),
        f(&fr["missing"]),
        f(&fr["missing_percent"]),
        f(&fr["calls_with_missing"]),
        f(&fr["late_gt_40ms"]),
        f(&fr["late_percent"]),
        f(&fr["non_640"])
    );
    o += &format!("inter-arrival ms  p50 {}  p99 {}  max {}\n", f(&ia["p50_ms"]), f(&ia["p99_ms"]), f(&ia["max_ms"]));
    o += &format!(
        "echo RTT ms  p50 {}  p99 {}  max {}  min {}   (bursts {}, matched {}, missed {}, unresolved {}, spurious {})\n",
        f(&rtt["p50_ms"]),
        f(&rtt["p99_ms"]),
        f(&rtt["max_ms"]),
        f(&rtt["min_ms"]),
        f(&e["bursts_sent"]),
        f(&e["echoes_matched"]),
        f(&e["missed"]),
        f(&e["unresolved"]),
        f(&e["spurious_onsets"])
    );
    o += &format!(
        "echo RTT per call ms  first burst p50 {}  last burst p50 {} p99 {}  growth (last - first) p50 {} max {}\n",
        f(&e["rtt_first_burst"]["p50_ms"]),
        f(&e["rtt_last_burst"]["p50_ms"]),
        f(&e["rtt_last_burst"]["p99_ms"]),
        f(&e["rtt_growth_last_minus_first"]["p50_ms"]),
        f(&e["rtt_growth_last_minus_first"]["max_ms"])
    );
    if t["available"] == true {
        o += &format!(
            "server tick ms  p50 <= {}  p99 <= {}  mean {}  ({} ticks)\n",
            f(&t["p50_ms_le"]),
            f(&t["p99_ms_le"]),
            f(&t["mean_ms"]),
            f(&t["ticks"])
        );
    } else {
        o += &format!("server tick: unavailable ({})\n", f(&t["why"]));
    }
    let sm = &r["server_metrics"];
    if sm.is_object() {
        o += &format!(
            "server metrics  frames dropped (socket backed up) in window {}  network frames shed {}  calls active at end {}, after hangup {} (0 after {} s)\n",
            f(&sm["frames_dropped_in_window"]),
            f(&sm["network_frames_shed_in_window"]),
            f(&sm["calls_active_at_end"]),
            f(&sm["calls_active_after_hangup"]),
            f(&sm["seconds_to_no_active_call"])
        );
    }
    if sp.is_null() {
        o += "server process: n/a (no --server-pid)\n";
    } else {
        o += &format!(
            "server CPU {} % of a core  {} CPU-ms per call-second  RSS idle {} MB, end {} MB\n",
            f(&sp["cpu_percent_of_core"]),
            f(&sp["cpu_ms_per_call_second"]),
            f(&sp["rss_idle_mb"]),
            f(&sp["rss_end_mb"])
        );
    }
    o += &format!(
        "harness CPU {} % of a core  RSS {} MB  send lag ms p99 {} max {}  send errors {}\n",
        f(&hp["cpu_percent_of_core"]),
        f(&hp["rss_mb"]),
        f(&hs["lag"]["p99_ms"]),
        f(&hs["lag"]["max_ms"]),
        f(&hs["send_errors"])
    );
    if let Some(peers) = r["peer_processes"].as_object() {
        for (name, p) in peers {
            o += &format!("{name} CPU {} % of a core  RSS {} MB\n", f(&p["cpu_percent_of_core"]), f(&p["rss_mb"]));
        }
    }
    let m = &r["machine"];
    if m.is_object() {
        o += &format!(
            "machine  busy {} % of a core over the window ({} CPUs, {} of all)\n",
            f(&m["busy_percent_of_core"]),
            f(&m["cpus"]),
            f(&m["busy_fraction"])
        );
    }
    let u = &r["udp"];
    if u.is_object() {
        o += &format!(
            "UDP receive-buffer drops (machine)  in window {}  setup + window {}  per socket range at window end {}\n",
            f(&u["rcvbuf_errors_in_window"]),
            f(&u["rcvbuf_errors_setup_and_window"]),
            u["socket_drops_at_window_end"]
        );
    }
    o += &format!(
        "hangup  clean {}  unclean {}  (hangup events {}, close frames {})  {}\n",
        f(&h["clean"]),
        f(&h["unclean"]),
        f(&h["hangup_events"]),
        f(&h["close_frames"]),
        h["by_reason"]
    );
    if r["error_events"].as_object().is_some_and(|m| !m.is_empty()) {
        o += &format!("error events: {}\n", r["error_events"]);
    }
    if r["failures"].as_object().is_some_and(|m| !m.is_empty()) {
        o += &format!("failures: {}\n", r["failures"]);
    }
    o
}
