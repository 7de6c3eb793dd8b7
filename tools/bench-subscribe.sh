#!/usr/bin/env bash
# Verified subscribe throughput in sandbox mode (full signature verification, durable payment
# row per request) against `serve --release`. usage: tools/bench-subscribe.sh [sqlite|postgres] [count] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}; count=${2:-10000}; conc=${3:-64}
dir=$(mktemp -d); port=18411
token=0x5FbDB2315678afecb367f032d93F642f64180aa3; payto=0x90F79bf6EB2c4f870365E785982E1f101E93b906
case "$backend" in
  sqlite) url="sqlite://$dir/bench.db" ;;
  postgres) db="bench_sub_$$"; psql "${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}" -qc "CREATE DATABASE $db"
            url="postgres://postgres@127.0.0.1:5432/$db" ;;
esac
AGENTLINE_LISTEN=127.0.0.1:$port AGENTLINE_DATABASE_URL=$url AGENTLINE_LOG=${AGENTLINE_LOG:-warn} AGENTLINE_NETWORK=eip155:84532 \
  AGENTLINE_ASSET=$token AGENTLINE_TOKEN_NAME="USD Coin" AGENTLINE_PAY_TO=$payto target/release/agentline serve 2>"$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; [ "$backend" = postgres ] && psql "${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"; grep -iE "error|warn" "$dir/log" | sort | uniq -c | sort -rn | head -5; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
cpu0=$(awk '{print $14+$15}' /proc/$pid/stat)
node tools/bench-subscribe.mjs --url "http://127.0.0.1:$port" --key 0x$(printf '11%.0s' $(seq 1 32)) --token $token \
  --chain-id 84532 --pay-to $payto --count "$count" --concurrency "$conc"
cpu1=$(awk '{print $14+$15}' /proc/$pid/stat)
echo "server CPU ticks during load+signing: $((cpu1 - cpu0))"
