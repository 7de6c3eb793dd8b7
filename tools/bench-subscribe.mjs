#!/usr/bin/env node
// Subscribe load / latency harness: pre-signs COUNT distinct EIP-3009 payments (viem, one payer,
// random nonces: every request is a renewal with its own durable payment row), then POSTs them
// to /sms/subscribe with CONCURRENCY requests in flight and reports throughput and latency.
//
//   node tools/bench-subscribe.mjs --url http://127.0.0.1:PORT --key 0x.. --token 0x.. \
//        --chain-id 84532 --pay-to 0x.. --price 1000000000 --count 20000 --concurrency 64
//
// Prints one JSON line: {count, ok, non200, seconds, rps, p50_ms, p90_ms, p99_ms, max_ms, sign_seconds}.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import http from "node:http";

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), "..", "tests", "peers", "package.json"));
const { privateKeyToAccount } = require("viem/accounts");

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const count = Number(args.count ?? 1000);
const concurrency = Number(args.concurrency ?? 16);
const account = privateKeyToAccount(args.key);
const price = args.price ?? "1000000000";
const network = `eip155:${args["chain-id"]}`;
const domain = { name: args.name ?? "USD Coin", version: "2", chainId: Number(args["chain-id"]), verifyingContract: args.token };
const types = { TransferWithAuthorization: [
  { name: "from", type: "address" }, { name: "to", type: "address" }, { name: "value", type: "uint256" },
  { name: "validAfter", type: "uint256" }, { name: "validBefore", type: "uint256" }, { name: "nonce", type: "bytes32" } ] };

const signStart = process.hrtime.bigint();
const validBefore = String(Math.floor(Date.now() / 1000) + 3600);
const headers = [];
for (let i = 0; i < count; i++) {
  const message = { from: account.address, to: args["pay-to"], value: price, validAfter: "0", validBefore, nonce: "0x" + randomBytes(32).toString("hex") };
  const signature = await account.signTypedData({ domain, types, primaryType: "TransferWithAuthorization", message });
  const payload = { x402Version: 2, payload: { authorization: message, signature },
    resource: { url: `${args.url}/sms/subscribe` },
    accepted: { scheme: "exact", network, amount: price, asset: args.token, payTo: args["pay-to"], maxTimeoutSeconds: 300, extra: { name: domain.name, version: "2" } } };
  headers.push(Buffer.from(JSON.stringify(payload)).toString("base64"));
}
const signSeconds = Number(process.hrtime.bigint() - signStart) / 1e9;

const target = new URL(`${args.url}/sms/subscribe`);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
function post(header) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent,
      headers: { "payment-signature": header, "content-length": 0 } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on("error", () => resolve({ status: 0, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    req.end();
  });
}

const latencies = [];
let ok = 0, next = 0;
const start = process.hrtime.bigint();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < headers.length) {
    const r = await post(headers[next++]);
    latencies.push(r.ms);
    if (r.status === 200) ok++;
  }
}));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(JSON.stringify({ count, ok, non200: count - ok, seconds: +seconds.toFixed(3), rps: Math.round(ok / seconds),
  p50_ms: +q(0.5).toFixed(2), p90_ms: +q(0.9).toFixed(2), p99_ms: +q(0.99).toFixed(2), max_ms: +latencies.at(-1).toFixed(2),
  sign_seconds: +signSeconds.toFixed(1) }));
agent.destroy();
