#!/usr/bin/env node
// MO -> long-poll wake-up latency for agentline (issue #5), driven by tools/bench-sms-e2e.sh
// mo-latency. The SMSC simulator (tests/peers/smsc.mjs) runs inside this process, so the moment
// the deliver_sm is written to the socket and the moment the long-poll response arrives come from
// one clock (performance.now()).
//
//   node tools/bench-mo-latency.mjs --handshake DIR [--rounds 1000] [--warmup 20] [--settle-ms 20]
//                                   [--from 15557654321]
//   1. starts the simulator (record off) and writes DIR/sim.json {"smpp":PORT,"control":PORT};
//   2. waits for DIR/server.json {"base":URL,"token":T,"number":"+E164","pid":N} (written by the driver
//      once agentline is ready and a subscription is granted) and for agentline's bind;
//   3. per round: opens GET /sms/receive?wait=25&limit=1, waits until the request is on the wire
//      plus --settle-ms (so the server has parked it), injects one MO to the number, and measures
//      from the return of injectMo (deliver_sm written to the socket synchronously) to the end of
//      the long-poll response; the response must carry exactly that MO.
//   Prints a summary and one line `RESULT {json}`.
import http from "node:http";
import { existsSync, readFileSync, writeFileSync, renameSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const here = dirname(fileURLToPath(import.meta.url));
const { startSmsc } = await import(join(here, "..", "tests", "peers", "smsc.mjs"));

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith("--")) { console.error(`unexpected argument ${a}`); process.exit(1); }
  const eq = a.indexOf("=");
  if (eq > 0) args[a.slice(2, eq)] = a.slice(eq + 1); else args[a.slice(2)] = process.argv[++i];
}
if (!args.handshake) { console.error("usage: bench-mo-latency.mjs --handshake DIR [--rounds N]"); process.exit(1); }
const ROUNDS = Number(args.rounds ?? 1000), WARMUP = Number(args.warmup ?? 20), SETTLE = Number(args["settle-ms"] ?? 20);
const FROM = args.from ?? "15557654321";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// CPU accounting: utime+stime of agentline (the "pid" in server.json) and of this process, and the
// machine's busy ticks (minus irq/softirq) from /proc/stat, so contention from other work shows.
let serverPid = null;
function ticks(pid) {
  try { const s = readFileSync(`/proc/${pid}/stat`, "utf8"); const f = s.slice(s.lastIndexOf(")") + 2).split(" "); return Number(f[11]) + Number(f[12]); } catch { return NaN; }
}
function machine() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4] - f[5] - f[6], total };
}
const ncpu = readFileSync("/proc/stat", "utf8").split("\n").filter((l) => /^cpu\d/.test(l)).length;

const smsc = await startSmsc({ port: 0, control_port: 0, record: false });
let exitCode = 1;
try {
  const tmp = join(args.handshake, "sim.json.tmp");
  writeFileSync(tmp, JSON.stringify({ smpp: smsc.smppPort, control: smsc.controlPort }) + "\n");
  renameSync(tmp, join(args.handshake, "sim.json"));

  const serverFile = join(args.handshake, "server.json");
  const deadline = performance.now() + 120_000;
  while (!existsSync(serverFile)) {
    if (performance.now() > deadline) throw new Error("no server.json from the driver within 120 s");
    await sleep(50);
  }
  const { base, token, number, pid } = JSON.parse(readFileSync(serverFile, "utf8"));
  serverPid = Number.isInteger(pid) ? pid : null;
  const bound = await smsc.waitFor("bound", 1, 30_000);
  if (!bound.ok) throw new Error("agentline did not bind to the simulator within 30 s");
  const to = number.replace(/^\+/, ""); // SMPP addresses carry no '+': TON 1 (international)

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const auth = { authorization: `Bearer ${token}` };
  // Drain anything already waiting.
  for (;;) {
    const r = await get(`${base}/sms/receive?wait=0&limit=100`);
    if (r.status !== 200) throw new Error(`GET /sms/receive answered ${r.status}: ${r.body}`);
    if (JSON.parse(r.body).count === 0) break;
  }

  const lat = [], errors = [];
  let injectCost = 0, cpu0 = null;
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    if (round === WARMUP) cpu0 = { server: ticks(serverPid), self: ticks(process.pid), m: machine(), t: performance.now() };
    const text = `latency probe ${round} ${Math.random().toString(36).slice(2, 8)}`;
    let tSent = 0;
    const poll = get(`${base}/sms/receive?wait=25&limit=1`);
    await poll.onWire;
    await sleep(SETTLE);
    const sent0 = smsc.state.counters.mo_sent;
    const tBefore = performance.now();
    smsc.injectMo({ from: FROM, to, text });
    tSent = performance.now();
    if (smsc.state.counters.mo_sent !== sent0 + 1) errors.push(`round ${round}: deliver_sm not written at once (no bound session?)`);
    const r = await poll;
    const dt = r.tEnd - tSent;
    let ok = false;
    try {
      const b = JSON.parse(r.body);
      ok = r.status === 200 && b.count === 1 && b.messages[0].body === text;
      if (!ok) errors.push(`round ${round}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    } catch { errors.push(`round ${round}: HTTP ${r.status} ${r.body.slice(0, 200)}`); }
    if (round >= WARMUP && ok) { lat.push(dt); injectCost += tSent - tBefore; }
    if (errors.length > 20) break;
  }
  agent.destroy();
  const cpu1 = { server: ticks(serverPid), self: ticks(process.pid), m: machine(), t: performance.now() };
  const perCore = (cpu1.m.total - cpu0.m.total) / ncpu;
  const serverCpuS = (cpu1.server - cpu0.server) / 100, selfCpuS = (cpu1.self - cpu0.self) / 100; // CLK_TCK 100 on Linux
  const others = ((cpu1.m.busy - cpu0.m.busy) - (cpu1.server - cpu0.server) - (cpu1.self - cpu0.self)) / perCore;

  lat.sort((a, b) => a - b);
  const p = (q) => lat.length ? lat[Math.min(lat.length - 1, Math.ceil((q / 100) * lat.length) - 1)] : NaN;
  const res = {
    mode: "mo-latency", rounds: ROUNDS, measured: lat.length, errors: errors.length, first_errors: errors.slice(0, 3),
    settle_ms: SETTLE, ms: { p50: p(50), p90: p(90), p99: p(99), max: lat.at(-1), mean: lat.reduce((a, b) => a + b, 0) / (lat.length || 1) },
    inject_cost_ms: injectCost / (lat.length || 1),
    over_10ms: lat.filter((x) => x > 10).length, over_100ms: lat.filter((x) => x > 100).length,
    server_cpu_s: serverCpuS, server_cpu_us_per_mo: (serverCpuS / (lat.length || 1)) * 1e6, self_cpu_s: selfCpuS,
    other_processes_cores: +others.toFixed(2), seconds: (cpu1.t - cpu0.t) / 1000,
  };
  const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
  console.log(`  rounds ${ROUNDS} (+${WARMUP} warm-up), measured ${lat.length}, errors ${errors.length}${errors.length ? ` (first: ${errors[0]})` : ""}`);
  console.log(`  deliver_sm written -> long-poll response: p50 ${f(res.ms.p50)} ms, p90 ${f(res.ms.p90)} ms, p99 ${f(res.ms.p99)} ms, max ${f(res.ms.max)} ms (mean ${f(res.ms.mean)} ms)`);
  console.log(`  rounds over 10 ms: ${res.over_10ms}, over 100 ms: ${res.over_100ms}; ${res.seconds.toFixed(1)} s measured`);
  if (serverPid) console.log(`  agentline CPU ${serverCpuS.toFixed(2)} s (${Math.round(res.server_cpu_us_per_mo)} µs per MO incl. its long-poll); processes other than agentline and this one used ${res.other_processes_cores} cores on average`);
  console.log(`  (one long-poll GET /sms/receive?wait=25&limit=1 parked ${SETTLE} ms before each MO; single-part GSM-7 MO)`);
  console.log(`RESULT ${JSON.stringify(res)}`);
  exitCode = lat.length === ROUNDS && errors.length === 0 ? 0 : 2;

  function get(url) {
    let onWire;
    const wire = new Promise((r) => { onWire = r; });
    const pr = new Promise((resolve, reject) => {
      const req = http.request(url, { agent, headers: auth }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString("utf8"), tEnd: performance.now() }));
        res.on("error", reject);
      });
      req.on("finish", onWire); // request fully handed to the socket
      req.on("error", (e) => { onWire(); reject(e); });
      req.end();
    });
    pr.onWire = wire;
    return pr;
  }
} catch (e) {
  console.error(`bench-mo-latency: ${e.message}`);
} finally {
  await smsc.close();
}
process.exit(exitCode);
