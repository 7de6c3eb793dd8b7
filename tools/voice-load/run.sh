#!/usr/bin/env bash
# Voice load: starts `target/release/agentline serve` on a fresh SQLite database with a pool of
# CALLS+10 numbers, runs the harness (CALLS echo calls for SECONDS), stops the server.
# usage: tools/voice-load/run.sh CALLS SECONDS [harness options, e.g. --json --ramp-ms 5]
# VOICE_LOAD_NICE=-10 runs the server and the harness at that niceness (negative: root), so a
# compile running on the same cores disturbs the figures less. With the kernel's autogroup
# scheduling a process's nice only counts inside its session's group, so the script then re-runs
# itself in a new session (setsid) and sets that group's nice too. VOICE_LOAD_PORT: 18430.
# VOICE_LOAD_SERVER_LOG=FILE keeps the server's log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
enter_priority_group "$@"
calls=${1:?usage: run.sh CALLS SECONDS [harness options]}
secs=${2:?usage: run.sh CALLS SECONDS [harness options]}
shift 2
port=${VOICE_LOAD_PORT:-18430}
key=voice-load-admin-key-0123456789
pool=$((calls + 10)); [ "$pool" -gt 9900 ] && pool=9900

if [ ! -x "$root/target/release/agentline" ]; then
  echo "run.sh: building the server (release)" >&2
  (cd "$root" && cargo build --release --locked)
fi
(cd "$here" && cargo build --release --locked --quiet)
# One socket per call on each side, plus the server's database and HTTP connections.
ulimit -n "$(ulimit -Hn)"

dir=$(mktemp -d)
AGENTLINE_LISTEN=127.0.0.1:$port AGENTLINE_DATABASE_URL="sqlite://$dir/voice.db" AGENTLINE_ADMIN_KEY=$key \
  AGENTLINE_LOG=warn AGENTLINE_SIM_SEED_NUMBERS=$pool \
  nice -n "$prio" "$root/target/release/agentline" serve 2>"$dir/server.log" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -n "${VOICE_LOAD_SERVER_LOG:-}" ]; then cp "$dir/server.log" "$VOICE_LOAD_SERVER_LOG"; fi
  rm -rf "$dir"
}
trap cleanup EXIT
wait_for_server run.sh

status=0
nice -n "$prio" "$here/target/release/voice-load" --base "http://127.0.0.1:$port" --admin-key "$key" \
  --calls "$calls" --seconds "$secs" --server-pid "$pid" "$@" || status=$?
summarize_server_log run.sh "$status"
exit "$status"
