#!/usr/bin/env bash
# End-to-end subscribe latency with chain settlement on a local anvil: verify, reserve,
# transferWithAuthorization by our relayer, receipt, commit. One request at a time.
# usage: tools/bench-subscribe-chain.sh [count]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-50}
bash tests/peers/setup.sh >/dev/null
dir=$(mktemp -d); port=18412; rpc_port=18545
anvil=tests/peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
$anvil --host 127.0.0.1 --port $rpc_port --chain-id 84532 --silent & apid=$!
rpc=http://127.0.0.1:$rpc_port
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$rpc_port) 2>/dev/null && break; sleep 0.1; done
token=$(cd tests/peers && node chain.mjs deploy --rpc $rpc --name "USD Coin" --version 2 | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
key=0x$(printf '11%.0s' $(seq 1 32)); payto=0x90F79bf6EB2c4f870365E785982E1f101E93b906
payer=$(cd tests/peers && node -e "const {privateKeyToAccount}=require('viem/accounts');console.log(privateKeyToAccount('$key').address)")
(cd tests/peers && node chain.mjs mint --rpc $rpc --token "$token" --to "$payer" --amount $((count * 1000000000 + 1000000000)) >/dev/null)
AGENTLINE_LISTEN=127.0.0.1:$port AGENTLINE_DATABASE_URL=sqlite://$dir/b.db AGENTLINE_LOG=warn AGENTLINE_NETWORK=eip155:84532 \
  AGENTLINE_ASSET=$token AGENTLINE_TOKEN_NAME="USD Coin" AGENTLINE_PAY_TO=$payto AGENTLINE_SETTLEMENT=chain AGENTLINE_RPC_URL=$rpc \
  AGENTLINE_RELAYER_KEY=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d target/release/agentline serve 2>"$dir/log" &
pid=$!
trap 'kill $pid $apid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
node tools/bench-subscribe.mjs --url "http://127.0.0.1:$port" --key $key --token "$token" --chain-id 84532 \
  --pay-to $payto --count "$count" --concurrency 1
echo "payee balance: $(cd tests/peers && node chain.mjs balance --rpc $rpc --token "$token" --of $payto)"
