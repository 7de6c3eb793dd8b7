#!/usr/bin/env bash
# Measures POST /sms/send against `serve --release` with wrk (loopback, bounded duration).
# usage: tools/bench-send.sh [sqlite|postgres] [connections] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}; conns=${2:-64}; secs=${3:-15}
dir=$(mktemp -d); port=18402; key=bench-admin-key-0123456789
case "$backend" in
  sqlite) url="sqlite://$dir/bench.db" ;;
  postgres) db="bench_$$"; psql "${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}" -qc "CREATE DATABASE $db"
            url="postgres://postgres@127.0.0.1:5432/$db" ;;
esac
AGENTLINE_LISTEN=127.0.0.1:$port AGENTLINE_DATABASE_URL=$url AGENTLINE_ADMIN_KEY=$key AGENTLINE_LOG=warn \
  target/release/agentline serve 2>"$dir/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; [ "$backend" = postgres ] && psql "${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
echo "idle RSS: $(grep VmRSS /proc/$pid/status | awk '{print $2" kB"}')"
token=$(curl -sf -X POST "http://127.0.0.1:$port/admin/subscriptions" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d '{"wallet":"0x1111111111111111111111111111111111111111","days":30}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
cpu0=$(awk '{print $14+$15}' /proc/$pid/stat)
TOKEN=$token wrk -t2 -c"$conns" -d"${secs}s" -s tools/send.lua "http://127.0.0.1:$port" | tail -2
cpu1=$(awk '{print $14+$15}' /proc/$pid/stat)
echo "server CPU: $(( (cpu1 - cpu0) / secs ))% of one core (avg)   RSS after: $(grep VmRSS /proc/$pid/status | awk '{print $2" kB"}')"
sleep 2
curl -sf "http://127.0.0.1:$port/metrics" | grep -E '^agentline_sms_messages_total' || true
