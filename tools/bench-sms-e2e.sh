#!/usr/bin/env bash
# Side-by-side SMS throughput benchmark (issue #5), everything on 127.0.0.1, both sides against the
# same SMSC simulator (tests/peers/smsc.mjs, record off) with the same load:
#
#   tools/bench-sms-e2e.sh kannel     [N=5000] [C=50]  HTTP sendsms -> Kannel 1.4.5 -> SMPP -> receipt -> DLR callback
#   tools/bench-sms-e2e.sh agentline  [N=5000] [C=50]  POST /sms/send -> submit_sm -> receipt -> `delivered`
#   tools/bench-sms-e2e.sh mo-latency [ROUNDS=1000]    MO deliver_sm -> GET /sms/receive?wait=25 wake-up
#
# Environment:
#   RUNS=1            repeat the measurement (fresh processes each run); a median line is printed
#   WINDOW=100        SMPP window on both sides: Kannel max-pending-submits, AGENTLINE_SMPP_WINDOW
#   DLR_MASK=3        Kannel dlr-mask (1 delivered + 2 undelivered: exactly one final callback)
#   KANNEL_LOG_LEVEL=2  (0 debug .. 4 panic; 2 = warning, like AGENTLINE_LOG=warn)
#   KANNEL_ACCESS_LOG=0 1: write Kannel's per-message access log too
#   KANNEL_STORE=none   file|spool: Kannel's message store (persistence of queued messages)
#   AGENTLINE_BIN=target/release/agentline   (build it first: cargo build --release --locked)
#   KEEP_METRICS=     a file to save the server's final /metrics in (the last run's)
#   POLL_MS=10        how often the agentline side polls /metrics
#   GEN_CLIENT=rust   the load generator's HTTP client on both sides: rust (tools/http-drive, built here
#                     with cargo: the agentline side's load-gen CPU per message fell from
#                     ~120 to ~50 µs), undici (npm, in tests/peers) or http (node:http, ~3x undici)
#   SIM_FLAGS=        extra simulator flags for kannel/agentline, e.g. "--dlr-delay-ms 0" or
#                     "--fail-prefix 1555" (every receipt UNDELIV: checks the failure DLR path)
#
# The Kannel side installs the Debian package `kannel` with apt-get if bearerbox is missing (root).
# Output: a block per run that can be pasted into docs/benchmarks.md. Every process started here is
# stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in
  kannel|agentline) N=${2:-5000}; C=${3:-50} ;;
  mo-latency) ROUNDS=${2:-1000} ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' >&2; exit 1 ;;
esac
RUNS=${RUNS:-1}; WINDOW=${WINDOW:-100}; GEN_CLIENT=${GEN_CLIENT:-rust}; DLR_MASK=${DLR_MASK:-3}; POLL_MS=${POLL_MS:-10}
KANNEL_LOG_LEVEL=${KANNEL_LOG_LEVEL:-2}; KANNEL_ACCESS_LOG=${KANNEL_ACCESS_LOG:-0}; KANNEL_STORE=${KANNEL_STORE:-none}
BIN=${AGENTLINE_BIN:-target/release/agentline}
ADMIN_KEY=bench-admin-key-0123456789
top=$(mktemp -d -t bench-sms-e2e.XXXXXX)
PIDS=()

stop_all() { # reverse start order, TERM then KILL after 5 s; only our own PIDs
  local i pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap 'stop_all; rm -rf "$top"' EXIT
trap 'exit 130' INT TERM

die() { echo "bench-sms-e2e: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: retry every 0.1 s; fails early if a started process died
  local secs=$1 what=$2 pid; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { echo "timed out waiting for $what" >&2; return 1; }
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "process $pid exited while waiting for $what" >&2; return 1; }; done
    sleep 0.1
  done
}

header() {
  echo "### SMS benchmark: $1 ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/^MemTotal/{printf "%.1f GB RAM", $2/1048576}' /proc/meminfo), Linux $(uname -r), node $(node --version)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

ensure_peers() {
  [ -d tests/peers/node_modules/smpp ] || bash tests/peers/setup.sh >&2
  if [ "$GEN_CLIENT" = rust ]; then # a no-op when it is up to date, a rebuild when its source changed
    (cd tools/http-drive && cargo build --release --locked --quiet) >&2 || die "building tools/http-drive failed"
  fi
}

# start_sim DIR: the simulator as its own process (record off); sets SIM_PID SMPP_PORT CONTROL_PORT
start_sim() {
  local d=$1
  # shellcheck disable=SC2086 # SIM_FLAGS is a list of flags
  node tests/peers/smsc.mjs --port 0 --control-port 0 --no-record ${SIM_FLAGS:-} >"$d/sim.json" 2>"$d/sim.log" &
  SIM_PID=$!; PIDS+=("$SIM_PID")
  wait_for 15 "simulator" grep -q control "$d/sim.json" || { cat "$d/sim.log" >&2; die "simulator did not start"; }
  SMPP_PORT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).smpp)' "$d/sim.json")
  CONTROL_PORT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).control)' "$d/sim.json")
}

# ---- Kannel ---------------------------------------------------------------------------------------
ensure_kannel() {
  if ! command -v bearerbox >/dev/null 2>&1 && [ ! -x /usr/sbin/bearerbox ]; then
    echo "installing Kannel (apt-get install kannel) ..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kannel >&2
  fi
  export PATH="$PATH:/usr/sbin"
  command -v bearerbox >/dev/null || die "bearerbox not found after installing kannel"
}

kannel_status() { curl -sf "http://127.0.0.1:$ADMIN_PORT/status.txt?password=bench"; }
kannel_online() { kannel_status | grep -E '^ *sim\[sim\]' | grep -q '(online'; }
smsbox_connected() { kannel_status | grep -A2 '^Box connections' | grep -q 'smsbox:'; }
sendsms_up() { curl -s -o /dev/null "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms"; }

run_kannel() { # run_kannel RUN_DIR
  local d=$1
  start_sim "$d"
  ADMIN_PORT=$(free_port); SMSBOX_PORT=$(free_port); SENDSMS_PORT=$(free_port)
  # Never an empty line inside a group: Kannel ends a group at the first blank line.
  local store="# no message store (KANNEL_STORE=none)" access="# no access log (KANNEL_ACCESS_LOG=0)"
  case "$KANNEL_STORE" in
    none) ;;
    file) store="store-type = file"$'\n'"store-location = \"$d/kannel.store\"" ;;
    spool) mkdir -p "$d/spool"; store="store-type = spool"$'\n'"store-location = \"$d/spool\"" ;;
    *) die "KANNEL_STORE must be none, file or spool" ;;
  esac
  [ "$KANNEL_ACCESS_LOG" = 1 ] && access="access-log = \"$d/access.log\""
  local conf; conf=$(<tools/kannel/kannel.conf.in)
  conf=${conf//@DIR@/$d}; conf=${conf//@ADMIN_PORT@/$ADMIN_PORT}; conf=${conf//@SMSBOX_PORT@/$SMSBOX_PORT}
  conf=${conf//@SENDSMS_PORT@/$SENDSMS_PORT}; conf=${conf//@SMSC_PORT@/$SMPP_PORT}; conf=${conf//@WINDOW@/$WINDOW}
  conf=${conf//@LOG_LEVEL@/$KANNEL_LOG_LEVEL}; conf=${conf//@ACCESS_LOG@/$access}; conf=${conf//@STORE@/$store}
  printf '%s\n' "$conf" >"$d/kannel.conf"
  grep -q '@[A-Z_]*@' "$d/kannel.conf" && die "unreplaced placeholder in $d/kannel.conf"

  bearerbox -v "$KANNEL_LOG_LEVEL" "$d/kannel.conf" >"$d/bearerbox.out" 2>&1 &
  BB_PID=$!; PIDS+=("$BB_PID")
  wait_for 15 "bearerbox admin" kannel_status || { tail -20 "$d/bearerbox.out" >&2; die "bearerbox did not start"; }
  smsbox -v "$KANNEL_LOG_LEVEL" "$d/kannel.conf" >"$d/smsbox.out" 2>&1 &
  SB_PID=$!; PIDS+=("$SB_PID")
  wait_for 30 "SMSC link online" kannel_online || { kannel_status >&2 || true; tail -20 "$d/bearerbox.out" >&2; die "Kannel SMSC link not online"; }
  wait_for 15 "smsbox connected" smsbox_connected || { tail -20 "$d/smsbox.out" >&2; die "smsbox did not connect"; }
  wait_for 15 "sendsms listening" sendsms_up || die "smsbox sendsms port not answering"

  node tools/bench-sms-e2e.mjs kannel --sendsms "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms" \
    --n "$N" --c "$C" --client "$GEN_CLIENT" --dlr-mask "$DLR_MASK" --control "http://127.0.0.1:$CONTROL_PORT" \
    --pids "bearerbox=$BB_PID,smsbox=$SB_PID,smsc-sim=$SIM_PID" >"$d/out.txt" && local rc=0 || local rc=$?
  grep -v '^RESULT ' "$d/out.txt" || true
  grep '^RESULT ' "$d/out.txt" | cut -d' ' -f2- >>"$top/results.jsonl" || true
  if [ "$rc" != 0 ]; then
    echo "  (incomplete run: last bearerbox/smsbox log lines follow)"
    tail -5 "$d/bearerbox.log" "$d/smsbox.log" 2>/dev/null | sed 's/^/    /'
  fi
  stop_all
}

# ---- agentline ------------------------------------------------------------------------------------
ensure_agentline() {
  [ -x "$BIN" ] || die "$BIN not found: build it first (cargo build --release --locked)"
}

# start_agentline RUN_DIR SMPP_PORT: sets AL_PID AL_BASE TOKEN NUMBER
start_agentline() {
  local d=$1 smpp=$2 port
  port=$(free_port)
  export AGENTLINE_LISTEN=127.0.0.1:$port AGENTLINE_DATABASE_URL=sqlite://$d/bench.db AGENTLINE_ADMIN_KEY=$ADMIN_KEY \
    AGENTLINE_LOG=${AGENTLINE_LOG:-warn} AGENTLINE_SMPP_URL=smpp://agent:secret@127.0.0.1:$smpp AGENTLINE_SMPP_WINDOW=$WINDOW
  # With SMPP configured the pool is not seeded: import numbers first (same database).
  "$BIN" numbers add +15550100000 +15550100001 >"$d/numbers.out" 2>&1 || { cat "$d/numbers.out" >&2; die "agentline numbers add failed"; }
  "$BIN" serve 2>"$d/server.log" &
  AL_PID=$!; PIDS+=("$AL_PID")
  AL_BASE=http://127.0.0.1:$port
  wait_for 30 "agentline /health" curl -sf "$AL_BASE/health" || { tail -20 "$d/server.log" >&2; die "agentline did not start"; }
  if ! wait_for 30 "agentline /health/ready" curl -sf "$AL_BASE/health/ready"; then
    echo "agentline not ready within 30 s: $(curl -s "$AL_BASE/health/ready")" >&2
    tail -20 "$d/server.log" >&2
    die "agentline /health/ready never returned 200 (SMSC link down?)"
  fi
  local grant
  grant=$(curl -sf -X POST "$AL_BASE/admin/subscriptions" -H "Authorization: Bearer $ADMIN_KEY" \
    -H 'Content-Type: application/json' -d '{"wallet":"0x1111111111111111111111111111111111111111","days":30}') ||
    die "POST /admin/subscriptions failed"
  TOKEN=$(node -e 'console.log(JSON.parse(process.argv[1]).token)' "$grant")
  NUMBER=$(node -e 'console.log(JSON.parse(process.argv[1]).number)' "$grant")
}

run_agentline() { # run_agentline RUN_DIR
  local d=$1
  start_sim "$d"
  start_agentline "$d" "$SMPP_PORT"
  echo "  agentline $("$BIN" --version 2>/dev/null | awk '{print $2}'), binary built $(date -u -r "$BIN" +%Y-%m-%dT%H:%MZ), SQLite, window $WINDOW, number $NUMBER, idle RSS $(awk '/VmRSS/{printf "%.1f MB", $2/1024}' /proc/$AL_PID/status)"
  node tools/bench-sms-e2e.mjs agentline --base "$AL_BASE" --token "$TOKEN" --n "$N" --c "$C" --client "$GEN_CLIENT" --poll-ms "$POLL_MS" \
    --control "http://127.0.0.1:$CONTROL_PORT" --pids "agentline=$AL_PID,smsc-sim=$SIM_PID" >"$d/out.txt" && local rc=0 || local rc=$?
  grep -v '^RESULT ' "$d/out.txt" || true
  grep '^RESULT ' "$d/out.txt" | cut -d' ' -f2- >>"$top/results.jsonl" || true
  if [ "$rc" != 0 ]; then
    echo "  (incomplete run: last server log lines and metrics follow)"
    tail -10 "$d/server.log" | sed 's/^/    /'
    curl -s "$AL_BASE/metrics" | grep -E '^agentline_sms_messages_total' | sed 's/^/    /' || true
  fi
  writer_summary
  stop_all
}

# The group-commit writer over the whole run (startup included): transactions, jobs per
# transaction, mean time of each phase (acquire: waiting for the write connection when not held;
# execute; commit = the fsync; single = a lone MO stored by one statement, its commit included)
# and the histogram bucket holding each phase's 99th percentile.
writer_summary() {
  [ -z "${KEEP_METRICS:-}" ] || curl -s "$AL_BASE/metrics" >"$KEEP_METRICS"
  curl -s "$AL_BASE/metrics" | awk '
    function phase() { return match($0, /phase="[a-z]*"/) ? substr($0, RSTART + 7, RLENGTH - 8) : "" }
    /^agentline_store_batch_jobs_sum/ { jobs = $2 }
    /^agentline_store_batch_jobs_count/ { batches = $2 }
    /^agentline_store_batch_seconds_sum/ { sum[phase()] = $2 }
    /^agentline_store_batch_seconds_count/ { cnt[phase()] = $2 }
    /^agentline_store_batch_seconds_bucket/ {
      ph = phase()
      if (match($0, /le="[^"]*"/)) { n[ph]++; les[ph, n[ph]] = substr($0, RSTART + 4, RLENGTH - 5); cum[ph, n[ph]] = $2 }
    }
    function p99(ph,   i) { # upper bound (ms) of the bucket holding the 99th percentile
      for (i = 1; i <= n[ph]; i++) if (cum[ph, i] >= 0.99 * cum[ph, n[ph]]) return les[ph, i] == "+Inf" ? "inf" : sprintf("%.2f", 1000 * les[ph, i])
      return "?"
    }
    function mean(ph) { return cnt[ph] > 0 ? 1000 * sum[ph] / cnt[ph] : 0 }
    END {
      if (batches == 0) exit
      printf "  writer: %d transactions, %.1f jobs each; mean (p99 at most) acquire %.2f (%s) ms over %d", batches, jobs / batches, mean("acquire"), p99("acquire"), cnt["acquire"]
      if (cnt["commit"] > 0) printf "; BEGIN..COMMIT over %d: execute %.2f (%s) ms, commit %.2f (%s) ms", cnt["commit"], mean("execute"), p99("execute"), mean("commit"), p99("commit")
      if (cnt["single"] > 0) printf "; single statement over %d: %.2f (%s) ms", cnt["single"], mean("single"), p99("single")
      printf "\n"
    }'
}

run_mo_latency() { # run_mo_latency RUN_DIR
  local d=$1
  node tools/bench-mo-latency.mjs --handshake "$d" --rounds "$ROUNDS" >"$d/out.txt" 2>"$d/mo.log" &
  local node_pid=$!; PIDS+=("$node_pid")
  wait_for 15 "in-process simulator" test -s "$d/sim.json" || die "bench-mo-latency.mjs did not start the simulator"
  SMPP_PORT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).smpp)' "$d/sim.json")
  start_agentline "$d" "$SMPP_PORT"
  echo "  agentline $("$BIN" --version 2>/dev/null | awk '{print $2}'), binary built $(date -u -r "$BIN" +%Y-%m-%dT%H:%MZ), SQLite, number $NUMBER"
  printf '{"base":"%s","token":"%s","number":"%s","pid":%s}\n' "$AL_BASE" "$TOKEN" "$NUMBER" "$AL_PID" >"$d/server.json.tmp"
  mv "$d/server.json.tmp" "$d/server.json"
  wait "$node_pid" && local rc=0 || local rc=$?
  grep -v '^RESULT ' "$d/out.txt" || true
  [ "$rc" = 0 ] || { echo "  (bench-mo-latency.mjs exited $rc)"; sed 's/^/    /' "$d/mo.log"; tail -10 "$d/server.log" | sed 's/^/    /'; }
  grep '^RESULT ' "$d/out.txt" | cut -d' ' -f2- >>"$top/results.jsonl" || true
  # Where the time goes on the server: from the MO's commit to the long-poll's answer (claim
  # included), and the writer's transactions (the MO's own commit).
  curl -s "$AL_BASE/metrics" | awk '
    function bucket(name) { # a histogram bucket line of family `name`: remember bound and cumulative count
      if (match($0, /le="[^"]*"/)) { k[name]++; le[name, k[name]] = substr($0, RSTART + 4, RLENGTH - 5); cum[name, k[name]] = $2 }
    }
    function p99(name,   i) { # upper bound (ms) of the bucket holding the 99th percentile
      for (i = 1; i <= k[name]; i++) if (cum[name, i] >= 0.99 * cum[name, k[name]]) return le[name, i] == "+Inf" ? "inf" : sprintf("%.2f", 1000 * le[name, i])
      return "?"
    }
    /^agentline_sms_inbound_commit_seconds_bucket/ { bucket("arrive") }
    /^agentline_sms_inbound_commit_seconds_sum/ { as = $2 }
    /^agentline_sms_inbound_commit_seconds_count/ { an = $2 }
    /^agentline_sms_longpoll_wakeup_seconds_bucket/ { bucket("wake") }
    /^agentline_sms_longpoll_wakeup_seconds_sum/ { s = $2 }
    /^agentline_sms_longpoll_wakeup_seconds_count/ { n = $2 }
    END {
      if (an > 0) printf "  server: MO arrival -> commit %.2f ms mean (p99 at most %s ms) over %d MOs\n", 1000 * as / an, p99("arrive"), an
      if (n > 0) printf "  server: MO commit -> long-poll answered %.2f ms mean (p99 at most %s ms) over %d wake-ups\n", 1000 * s / n, p99("wake"), n
    }'
  writer_summary
  stop_all
}

# ---- main -----------------------------------------------------------------------------------------
ensure_peers
case "$mode" in
  kannel)
    ensure_kannel
    header "Kannel $(dpkg-query -W -f='${Version}' kannel 2>/dev/null || echo '?') (HTTP sendsms -> SMPP -> receipt -> DLR callback)"
    echo "N=$N C=$C, generator client $GEN_CLIENT, window (max-pending-submits) $WINDOW, dlr-mask $DLR_MASK, log-level $KANNEL_LOG_LEVEL, access-log $KANNEL_ACCESS_LOG, store $KANNEL_STORE, dlr-storage internal"
    for r in $(seq 1 "$RUNS"); do echo "run $r/$RUNS:"; mkdir -p "$top/run$r"; run_kannel "$top/run$r"; done ;;
  agentline)
    ensure_agentline
    header "agentline (POST /sms/send -> submit_sm -> receipt -> delivered)"
    echo "N=$N C=$C, generator client $GEN_CLIENT, AGENTLINE_SMPP_WINDOW $WINDOW, AGENTLINE_LOG ${AGENTLINE_LOG:-warn}, SQLite"
    for r in $(seq 1 "$RUNS"); do echo "run $r/$RUNS:"; mkdir -p "$top/run$r"; run_agentline "$top/run$r"; done ;;
  mo-latency)
    ensure_agentline
    header "agentline MO -> long-poll wake-up latency"
    for r in $(seq 1 "$RUNS"); do echo "run $r/$RUNS:"; mkdir -p "$top/run$r"; run_mo_latency "$top/run$r"; done ;;
esac

if [ "$RUNS" -gt 1 ] && [ -s "$top/results.jsonl" ]; then
  node -e '
    const rs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
    const med = (xs) => { xs = xs.filter(Number.isFinite).sort((a, b) => a - b); return xs.length ? xs[Math.floor((xs.length - 1) / 2)] : NaN; };
    const r0 = (x) => Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a";
    const f2 = (x) => Number.isFinite(x) ? x.toFixed(2) : "n/a";
    if (rs[0].mode === "mo-latency") {
      console.log(`median of ${rs.length} runs: p50 ${f2(med(rs.map(r => r.ms.p50)))} ms, p90 ${f2(med(rs.map(r => r.ms.p90)))} ms, p99 ${f2(med(rs.map(r => r.ms.p99)))} ms, max ${f2(Math.max(...rs.map(r => r.ms.max)))} ms (max over runs)`);
    } else {
      const list = (k) => rs.map(r => r0(r[k])).join(" / ");
      console.log(`runs (accept req/s): ${list("accept_rate")}`);
      console.log(`runs (end to end msg/s): ${list("e2e_rate")}`);
      console.log(`runs (server CPU µs/msg): ${list("server_cpu_us_per_msg")}`);
      console.log(`median of ${rs.length} runs: HTTP accept ${r0(med(rs.map(r => r.accept_rate)))} req/s, end to end ${r0(med(rs.map(r => r.e2e_rate)))} msg/s, server CPU ${r0(med(rs.map(r => r.server_cpu_us_per_msg)))} µs/msg`);
    }' "$top/results.jsonl"
fi
