#!/usr/bin/env bash
# Issue 7 benchmarks (wait_for_code latency, MCP overhead) against `target/release/agentline`.
# usage: tools/bench-agent-surfaces.sh [ROUNDS]   (build first: cargo build --release --locked)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-500}
dir=$(mktemp -d); port=18407; key=bench-admin-key-0123456789
bash tests/peers/setup.sh >/dev/null
AGENTLINE_LISTEN=127.0.0.1:$port AGENTLINE_DATABASE_URL="sqlite://$dir/bench.db" AGENTLINE_ADMIN_KEY=$key \
  AGENTLINE_LOG=warn AGENTLINE_SIM_DELIVERY_DELAY_MS=5 target/release/agentline serve 2>"$dir/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)"
node tools/bench-agent-surfaces.mjs --base "http://127.0.0.1:$port" --admin-key "$key" --rounds "$rounds"
