# Shared by run.sh and sip-run.sh (sourced): the run's priority, waiting for the server and
# summarising its log. The last two expect $port, $pid (the server) and $dir (holding server.log).

# Sets $prio from VOICE_LOAD_NICE (0 by default). When it is not 0: with the kernel's autogroup
# scheduling a process's nice only counts inside its session's group, so the calling script is
# re-run in a new session (called as `enter_priority_group "$@"` before anything is started) and
# that group's nice is set too.
enter_priority_group() {
  prio=${VOICE_LOAD_NICE:-0}
  if [ "$prio" != 0 ] && [ -w /proc/self/autogroup ] && [ -z "${VOICE_LOAD_IN_GROUP:-}" ]; then
    VOICE_LOAD_IN_GROUP=1 exec setsid -w "$0" "$@"
  fi
  if [ -n "${VOICE_LOAD_IN_GROUP:-}" ]; then echo "$prio" > /proc/self/autogroup; fi
}

# Waits up to 10 s for the server's /health; exits with its log's tail if it never answers.
wait_for_server() {
  local name=$1 up=
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$up" ]; then echo "$name: server did not come up" >&2; tail -20 "$dir/server.log" >&2; exit 1; fi
}

# After a run: when it failed or the server logged warnings, errors or a panic, the most
# frequent log lines (call ids and numbers folded).
summarize_server_log() {
  local name=$1 status=$2 warns
  warns=$(grep -cE ' (WARN|ERROR) ' "$dir/server.log" || true)
  if [ "$status" -ne 0 ] || [ "$warns" -gt 0 ] || grep -qi panic "$dir/server.log"; then
    echo "$name: server log: $warns WARN/ERROR lines; the most frequent:" >&2
    sed -E 's/^[^ ]+ +//; s/call_[A-Za-z0-9]+/call_…/g; s/[0-9]+\.[0-9]+/N/g' "$dir/server.log" \
      | sort | uniq -c | sort -rn | head -5 >&2 || true
  fi
}
