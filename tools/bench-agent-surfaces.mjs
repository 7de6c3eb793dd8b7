#!/usr/bin/env node
// Issue 7 benchmarks, loopback only, against a running agentline (simulated network):
//   1. wait_for_code: commit of a message carrying a code -> the answer of a waiting GET /sms/code,
//      read off the server's histogram agentline_sms_code_wakeup_seconds (server-side), plus the
//      client-side send -> code time (includes the dispatcher and the simulated delivery hop).
//   2. MCP overhead: the same read (get_number over MCP vs GET /sms/number over REST), p50/p99 each.
//
//   node tools/bench-agent-surfaces.mjs --base http://127.0.0.1:PORT --admin-key K [--rounds 500]
// Run it through tools/bench-agent-surfaces.sh, which starts and stops the server.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../tests/peers/package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const base = args.base;
const rounds = Number(args.rounds ?? 500);

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const fmt = (ms) => `${ms.toFixed(2)} ms`;

async function grant(wallet) {
  const r = await fetch(`${base}/admin/subscriptions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${args["admin-key"]}`, "Content-Type": "application/json" },
    body: JSON.stringify({ wallet, days: 30 }),
  });
  return r.json();
}

/// Cumulative histogram buckets of one metric from /metrics: [[le, count]...] and the total count.
async function histogram(name) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const buckets = [];
  for (const line of text.split("\n")) {
    const m = line.match(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`));
    if (m) buckets.push([m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2])]);
  }
  return buckets;
}

function quantileFromDelta(before, after, q) {
  const delta = after.map(([le, n], i) => [le, n - (before[i]?.[1] ?? 0)]);
  const total = delta[delta.length - 1][1];
  const want = q * total;
  for (const [le, n] of delta) if (n >= want) return le * 1000;
  return Infinity;
}

const a = await grant("0x00000000000000000000000000000000000000a1");
const b = await grant("0x00000000000000000000000000000000000000b2");

// 1. wait_for_code.
const before = await histogram("agentline_sms_code_wakeup_seconds");
const clientMs = [];
for (let i = 0; i < rounds; i++) {
  const waiting = fetch(`${base}/sms/code?wait=25`, { headers: { Authorization: `Bearer ${b.token}` } }).then((r) => r.json());
  await new Promise((r) => setTimeout(r, 5)); // let the poll park
  const t0 = performance.now();
  await fetch(`${base}/sms/send`, {
    method: "POST",
    headers: { Authorization: `Bearer ${a.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ to: b.number, body: `Your code is ${100000 + i}` }),
  });
  const got = await waiting;
  if (got.code !== String(100000 + i)) throw new Error(`round ${i}: got ${JSON.stringify(got)}`);
  clientMs.push(performance.now() - t0);
}
const after = await histogram("agentline_sms_code_wakeup_seconds");
const served = after[after.length - 1][1] - before[before.length - 1][1];
console.log(`wait_for_code, ${rounds} rounds (GET /sms/code?wait=25 parked, then another agent texts a code):`);
console.log(
  `  server: commit -> answer (histogram, ${served} woken answers): p50 <= ${fmt(quantileFromDelta(before, after, 0.5))}, ` +
    `p99 <= ${fmt(quantileFromDelta(before, after, 0.99))}`,
);
console.log(
  `  client: POST /sms/send answered -> code received: p50 ${fmt(pct(clientMs, 50))}, p99 ${fmt(pct(clientMs, 99))}, ` +
    `max ${fmt(Math.max(...clientMs))}`,
);

// 2. MCP tool call vs the same REST call.
const mcp = new Client({ name: "bench", version: "1" });
await mcp.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${a.token}` } } }));
const restMs = [];
const mcpMs = [];
for (let i = 0; i < rounds + 50; i++) {
  let t = performance.now();
  const r = await fetch(`${base}/sms/number`, { headers: { Authorization: `Bearer ${a.token}` } });
  await r.json();
  const rest = performance.now() - t;
  t = performance.now();
  const res = await mcp.callTool({ name: "get_number", arguments: {} });
  const viaMcp = performance.now() - t;
  if (res.structuredContent?.number !== a.number) throw new Error("MCP answered another number");
  if (i >= 50) {
    restMs.push(rest);
    mcpMs.push(viaMcp);
  }
}
await mcp.close();
console.log(`MCP get_number vs REST GET /sms/number, ${rounds} calls each (after 50 warm-up), one client, sequential:`);
console.log(`  REST: p50 ${fmt(pct(restMs, 50))}, p99 ${fmt(pct(restMs, 99))}`);
console.log(`  MCP:  p50 ${fmt(pct(mcpMs, 50))}, p99 ${fmt(pct(mcpMs, 99))}`);
console.log(`  added by MCP: p50 ${fmt(pct(mcpMs, 50) - pct(restMs, 50))}, p99 ${fmt(pct(mcpMs, 99) - pct(restMs, 99))}`);
process.exit(0);
