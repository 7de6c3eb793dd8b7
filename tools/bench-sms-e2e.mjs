#!/usr/bin/env node
// Load generator and receivers for tools/bench-sms-e2e.sh (issue #5: SMS throughput, agentline vs
// Kannel, both against tests/peers/smsc.mjs). Node >= 20. 127.0.0.1 only. The measured requests go
// out through --client: `rust` (the default: tools/http-drive, a native closed-loop HTTP/1.1
// driver, --drive PATH), `undici` (tests/peers/node_modules) or `http` (node:http); warm-up and
// /metrics polls always use undici. The load-gen CPU figure includes the driver (a child process).
//
//   node tools/bench-sms-e2e.mjs kannel    --sendsms URL --n N --c C [--dlr-mask 3] [--control URL]
//                                          [--pids label=PID,...] [--timeout-s S]
//     N GET /cgi-bin/sendsms (keep-alive, C in flight) with dlr-url pointing at our own HTTP
//     receiver (node:http, backlog 4096, answers 200 at once). End to end = first request ->
//     N-th final DLR callback (type 1 or 2). Every callback carries the message index, so
//     duplicates, missing ones and the DLR types seen are checked (the mask must yield exactly one
//     final callback per message).
//
//   node tools/bench-sms-e2e.mjs agentline --base URL --token T --n N --c C [--to +E164] [--control URL]
//                                          [--pids label=PID,...] [--poll-ms 10] [--timeout-s S]
//     N POST /sms/send (keep-alive, C in flight). End to end = first request -> N messages counted
//     `delivered` in GET /metrics (agentline_sms_messages_total{direction="outbound",
//     status="delivered"}, polled every --poll-ms on its own connection).
//
// Both print a human summary on stdout and one line `RESULT {json}` (used by the driver to
// aggregate runs). --pids: CPU time (utime+stime from /proc/PID/stat) over the run and RSS
// (VmRSS now, VmHWM peak) of those processes are reported. --control: the simulator's control
// URL; its counters are read at the end as a cross-check.
import http from "node:http";
import { createRequire } from "node:module";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { execFileSync, spawn } from "node:child_process";

const args = parseArgs(process.argv.slice(2));
const mode = args._[0];
if (!["kannel", "agentline"].includes(mode)) usage();
const N = int(args.n, 5000), C = int(args.c, 50);
const CLIENT = args.client ?? "rust";
if (!["rust", "undici", "http"].includes(CLIENT)) usage();
const DRIVE = args.drive ?? new URL("./http-drive/target/release/http-drive", import.meta.url).pathname;
const TIMEOUT_S = int(args["timeout-s"], Math.max(60, Math.ceil(N / 100)));
const CLK_TCK = (() => { try { return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100; } catch { return 100; } })();
const pids = String(args.pids ?? "").split(",").filter(Boolean).map((s) => {
  const [label, pid] = s.split("="); return { label, pid: Number(pid) };
});
pids.push({ label: "load-gen", pid: process.pid }); // this process: generator + receiver

function usage() {
  console.error("usage: bench-sms-e2e.mjs kannel|agentline [options] (see the header of this file)");
  process.exit(1);
}
function parseArgs(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) { out._.push(a); continue; }
    const eq = a.indexOf("=");
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else out[a.slice(2)] = argv[++i];
  }
  return out;
}
function int(v, d) { if (v === undefined) return d; const n = Number(v); if (!Number.isInteger(n) || n < 0) usage(); return n; }

// ---- /proc --------------------------------------------------------------------------------------
function cpuTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" "); // fields from 3 (state) on
    // utime (14) + stime (15); for this process also its reaped children (16, 17): the driver
    const children = pid === process.pid ? Number(f[13]) + Number(f[14]) : 0;
    return Number(f[11]) + Number(f[12]) + children;
  } catch { return NaN; }
}
function memKb(pid, key) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : NaN;
  } catch { return NaN; }
}
function machineTicks() { // [busy, total, irq+softirq] over all CPUs, from /proc/stat
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return [total - f[3] - f[4], total, f[5] + f[6]];
}
function snapCpu() { return { ...Object.fromEntries(pids.map((p) => [p.label, cpuTicks(p.pid)])), _machine: machineTicks() }; }
function machineReport(cpu0, cpu1) {
  const [b0, t0, i0] = cpu0._machine, [b1, t1, i1] = cpu1._machine;
  const ours = pids.reduce((a, p) => a + (cpu1[p.label] - cpu0[p.label]), 0);
  const frac = (t1 - t0) ? (b1 - b0) / (t1 - t0) : NaN; // fraction of all CPUs busy
  const ncpu = readFileSync("/proc/stat", "utf8").split("\n").filter((l) => /^cpu\d/.test(l)).length;
  const perCore = (t1 - t0) / ncpu; // ticks of one core over the window
  return {
    busy_pct: Math.round(frac * 100), ncpu,
    irq_cores: +((i1 - i0) / perCore).toFixed(2), // interrupts/softirq (loopback TCP), not charged to a process
    others_cores: +(((b1 - b0) - (i1 - i0) - ours) / perCore).toFixed(2),
  };
}
function procReport(cpu0, cpu1, seconds) {
  return pids.map((p) => ({
    label: p.label, pid: p.pid,
    cpu_s: (cpu1[p.label] - cpu0[p.label]) / CLK_TCK,
    cpu_pct: Math.round(((cpu1[p.label] - cpu0[p.label]) / CLK_TCK / seconds) * 100),
    rss_mb: +(memKb(p.pid, "VmRSS") / 1024).toFixed(1),
    peak_rss_mb: +(memKb(p.pid, "VmHWM") / 1024).toFixed(1),
  }));
}

// ---- HTTP helpers -------------------------------------------------------------------------------
// The generator's HTTP client, the same for both sides: undici (tests/peers/node_modules, a
// keep-alive Pool of `connections` sockets, about a third of node:http's CPU per request, so the
// shared machine measures the servers more than the generator), or node:http (--client http).
function client(connections) {
  if (CLIENT === "http") {
    const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
    return { request: (url, opts) => request(agent, url, opts), close: () => agent.destroy() };
  }
  const { Pool } = createRequire(import.meta.url)("../tests/peers/node_modules/undici");
  const pools = new Map(); // origin -> Pool
  return {
    async request(url, { method = "GET", headers = {}, body = null } = {}) {
      const u = new URL(url);
      let pool = pools.get(u.origin);
      if (!pool) { pool = new Pool(u.origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 }); pools.set(u.origin, pool); }
      const r = await pool.request({ path: u.pathname + u.search, method, headers, body });
      return { status: r.statusCode, body: await r.body.text() };
    },
    close: () => Promise.all([...pools.values()].map((p) => p.close())),
  };
}
function request(agent, url, { method = "GET", headers = {}, body = null } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (body !== null) req.end(body); else req.end();
  });
}
// The message text of request i, on both sides and in tools/http-drive's `{code}` template.
const smsText = (code) => `Your code is ${code}`;
const codeOf = (i) => String(100000 + (i % 900000));
function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a");
async function simCounters() {
  if (!args.control) return null;
  try { return JSON.parse((await request(undefined, `${args.control}/state`)).body).counters; } catch { return null; }
}

// Runs `count` jobs with `c` in flight; job(i) resolves to a truthy value when accepted.
async function drive(c, count, job) {
  let next = 0, accepted = 0, errors = 0, firstError = null, tLastAccept = 0;
  const lat = new Float64Array(count);
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const t = performance.now();
      try {
        const ok = await job(i, t);
        lat[i] = performance.now() - t;
        if (ok === true) { accepted++; tLastAccept = performance.now(); } else { errors++; firstError ??= ok; }
      } catch (e) { errors++; firstError ??= String(e?.message ?? e); }
    }
  }
  await Promise.all(Array.from({ length: Math.min(c, count) }, worker));
  return { accepted, errors, firstError, tLastAccept, lat: Array.from(lat).sort((a, b) => a - b) };
}

// The same closed loop as drive(), run by tools/http-drive: `url` and `body` are templates ({i},
// {code}); resolves to drive()'s result plus `starts` (performance.now() at each request's start).
async function driveNative(c, count, { method = "GET", url, headers = {}, body = null, ok = [200] }) {
  const dir = mkdtempSync(join(tmpdir(), "http-drive-"));
  const out = join(dir, "records.bin");
  const argv = ["--n", String(count), "--c", String(c), "--method", method, "--url", url, "--ok", ok.join(","), "--out", out];
  for (const [k, v] of Object.entries(headers)) argv.push("--header", `${k}: ${v}`);
  if (body !== null) argv.push("--body", body);
  const child = spawn(DRIVE, argv, { stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout.on("data", (b) => { stdout += b; });
  const code = await new Promise((resolve, reject) => { child.on("error", reject); child.on("close", resolve); });
  if (code !== 0) throw new Error(`${DRIVE} exited with ${code}`);
  const summary = JSON.parse(stdout);
  const raw = readFileSync(out);
  rmSync(dir, { recursive: true, force: true });
  const rec = new Float64Array(raw.buffer, raw.byteOffset, raw.length / 8);
  const toPerf = (epochMs) => epochMs - performance.timeOrigin;
  const starts = new Float64Array(count), lat = [];
  for (let i = 0; i < count; i++) {
    starts[i] = toPerf(rec[2 * i]);
    if (!Number.isNaN(rec[2 * i + 1])) lat.push(rec[2 * i + 1]);
  }
  lat.sort((a, b) => a - b);
  return {
    accepted: summary.accepted, errors: summary.errors, firstError: summary.first_error,
    tLastAccept: summary.t_last_accept_epoch_ms === null ? 0 : toPerf(summary.t_last_accept_epoch_ms),
    t0: toPerf(summary.t0_epoch_ms), lat, starts,
  };
}

// ---- kannel -------------------------------------------------------------------------------------
async function runKannel() {
  if (!args.sendsms) usage();
  const mask = int(args["dlr-mask"], 3);
  const sent = new Float64Array(N); // performance.now() at request start
  const finalAt = new Float64Array(N); // first final callback
  const perMsg = new Uint16Array(N); // callbacks per message (any type)
  const types = {};
  let finals = 0, strays = 0, tLastFinal = 0;
  let resolveAll; const allFinal = new Promise((r) => { resolveAll = r; });
  let warmDone; const warmFinal = new Promise((r) => { warmDone = r; });

  const receiver = http.createServer((req, res) => {
    const u = new URL(req.url, "http://x");
    const i = Number(u.searchParams.get("i")), t = u.searchParams.get("t");
    res.writeHead(200, { "content-type": "text/plain", "content-length": 2 });
    res.end("ok");
    if (u.searchParams.get("i") === "warmup") { if (t === "1" || t === "2") warmDone(t); return; }
    if (!(Number.isInteger(i) && i >= 0 && i < N)) { strays++; return; }
    types[t] = (types[t] ?? 0) + 1;
    perMsg[i]++;
    if ((t === "1" || t === "2") && finalAt[i] === 0) {
      finalAt[i] = performance.now();
      tLastFinal = finalAt[i];
      if (++finals === N) resolveAll();
    }
  });
  receiver.keepAliveTimeout = 30_000;
  await new Promise((r) => receiver.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, r));
  const dlrBase = `http://127.0.0.1:${receiver.address().port}/dlr`;

  const cl = client(C);
  const base = new URL(args.sendsms);
  const mkUrl = (i, code = codeOf(Number(i) || 0)) => { // i: message index, or "warmup"
    const u = new URL(base);
    const q = u.searchParams;
    q.set("username", "bench"); q.set("password", "bench");
    q.set("from", "15550100000"); q.set("to", "15557654321");
    q.set("text", smsText(code));
    q.set("dlr-mask", String(mask));
    q.set("dlr-url", `${dlrBase}?i=${i}&t=%d`);
    return u;
  };
  // Warm-up: one message end to end (connections, first use of the bind), not counted.
  const w = await cl.request(mkUrl("warmup")).catch((e) => ({ status: 0, body: String(e.message) }));
  const warmType = await Promise.race([warmFinal, new Promise((r) => setTimeout(() => r(null), 10_000).unref())]);
  if (w.status !== 202 && w.status !== 200) console.error(`warm-up sendsms answered ${w.status}: ${w.body}`);
  if (!warmType) console.error("warm-up: no final DLR callback within 10 s");
  const sim0 = await simCounters();

  const cpu0 = snapCpu();
  let t0 = performance.now();
  let d;
  if (CLIENT === "rust") {
    const template = mkUrl("__I__", "__CODE__").toString().replaceAll("__I__", "{i}").replaceAll("__CODE__", "{code}");
    d = await driveNative(C, N, { url: template, ok: [200, 202] });
    t0 = d.t0;
    sent.set(d.starts);
  } else {
    d = await drive(C, N, async (i, t) => {
      sent[i] = t;
      const r = await cl.request(mkUrl(i));
      return r.status === 202 || r.status === 200 ? true : `HTTP ${r.status}: ${r.body.slice(0, 120)}`;
    });
  }
  const tAccepted = d.tLastAccept;
  const timer = setTimeout(resolveAll, TIMEOUT_S * 1000);
  if (d.accepted < N) resolveAll(); // some were refused: do not wait for callbacks that never come
  await allFinal;
  clearTimeout(timer);
  const tEnd = finals === N ? tLastFinal : performance.now();
  const cpu1 = snapCpu();
  // Late duplicates: give stragglers a moment to show up before counting.
  await new Promise((r) => setTimeout(r, 1000));
  const sim1 = await simCounters();
  await cl.close();
  receiver.closeAllConnections?.();
  receiver.close();

  const e2eLat = [];
  let dup = 0, missing = 0;
  for (let i = 0; i < N; i++) {
    if (finalAt[i]) e2eLat.push(finalAt[i] - sent[i]); else missing++;
    if (perMsg[i] > 1) dup++;
  }
  e2eLat.sort((a, b) => a - b);
  const secs = (tEnd - t0) / 1000;
  const res = {
    mode, n: N, c: C, dlr_mask: mask, warmup_dlr_type: warmType,
    accepted: d.accepted, http_errors: d.errors, first_error: d.firstError,
    accept_s: (tAccepted - t0) / 1000, accept_rate: d.accepted / ((tAccepted - t0) / 1000),
    e2e_s: secs, e2e_rate: finals / secs, finals, missing, dup_msgs: dup, strays, dlr_types: types,
    http_ms: { p50: pct(d.lat, 50), p99: pct(d.lat, 99), max: d.lat.at(-1) },
    e2e_ms: { p50: pct(e2eLat, 50), p90: pct(e2eLat, 90), p99: pct(e2eLat, 99), max: e2eLat.at(-1) },
    procs: procReport(cpu0, cpu1, secs), machine: machineReport(cpu0, cpu1),
    sim: sim1 && sim0 ? diffCounters(sim0, sim1) : null,
  };
  print(res);
}

// ---- agentline ----------------------------------------------------------------------------------
async function runAgentline() {
  if (!args.base || !args.token) usage();
  const to = args.to ?? "+15557654321";
  const pollMs = int(args["poll-ms"], 10);
  const cl = client(C);
  const poll = client(1);
  const headers = { authorization: `Bearer ${args.token}`, "content-type": "application/json" };
  const sendOne = async (i) => {
    const body = JSON.stringify({ to, body: smsText(codeOf(i)) });
    const r = await cl.request(`${args.base}/sms/send`, { method: "POST", headers: { ...headers, "content-length": Buffer.byteLength(body) }, body });
    if (r.status !== 200) return `HTTP ${r.status}: ${r.body.slice(0, 160)}`;
    return JSON.parse(r.body).status === "queued" ? true : `unexpected body: ${r.body.slice(0, 160)}`;
  };
  const readMetrics = async () => {
    const r = await poll.request(`${args.base}/metrics`);
    let delivered = 0, failed = 0;
    for (const line of r.body.split("\n")) {
      if (!line.startsWith("agentline_sms_messages_total{") || !line.includes('direction="outbound"')) continue;
      const v = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (line.includes('status="delivered"')) delivered += v;
      else if (line.includes('status="failed"')) failed += v;
    }
    return { delivered, failed };
  };

  // Warm-up: one message until delivered (not counted), so the bind and the DB are warm.
  const w0 = await readMetrics();
  const wr = await sendOne(0);
  if (wr !== true) { console.error(`warm-up send failed: ${wr}`); }
  const wDeadline = performance.now() + 10_000;
  let warm = w0;
  while (wr === true && performance.now() < wDeadline) {
    warm = await readMetrics();
    if (warm.delivered > w0.delivered || warm.failed > w0.failed) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const warmOk = warm.delivered > w0.delivered;
  if (!warmOk) console.error(`warm-up message not delivered within 10 s (metrics: ${JSON.stringify(warm)})`);
  const base0 = await readMetrics();
  const sim0 = await simCounters();

  const cpu0 = snapCpu();
  let t0 = performance.now();
  let done = false, delivered = 0, failed = 0, tLastDelivered = 0, polls = 0, target = N;
  const poller = (async () => {
    const deadline = t0 + TIMEOUT_S * 1000;
    while (!done) {
      try {
        const m = await readMetrics();
        polls++;
        const nd = m.delivered - base0.delivered;
        if (nd > delivered) { delivered = nd; tLastDelivered = performance.now(); }
        failed = m.failed - base0.failed;
        if (delivered + failed >= target) return;
      } catch { /* server busy or gone: keep trying until the deadline */ }
      if (performance.now() > deadline) return;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();
  const d = CLIENT === "rust"
    ? await driveNative(C, N, {
      method: "POST", url: `${args.base}/sms/send`, headers,
      body: JSON.stringify({ to, body: smsText("{code}") }), ok: [200],
    })
    : await drive(C, N, (i) => sendOne(i));
  if (d.t0 !== undefined) t0 = d.t0; // the first request, not the driver's start
  const tAccepted = d.tLastAccept;
  target = d.accepted; // refused sends never reach a final state
  await poller;
  done = true;
  const tEnd = delivered >= N ? tLastDelivered : performance.now();
  const cpu1 = snapCpu();
  const sim1 = await simCounters();
  await cl.close(); await poll.close();

  const secs = (tEnd - t0) / 1000;
  const res = {
    mode, n: N, c: C, warmup_delivered: warmOk,
    accepted: d.accepted, http_errors: d.errors, first_error: d.firstError,
    accept_s: (tAccepted - t0) / 1000, accept_rate: d.accepted / ((tAccepted - t0) / 1000),
    e2e_s: secs, e2e_rate: delivered / secs, delivered, failed, metric_polls: polls, poll_ms: pollMs,
    http_ms: { p50: pct(d.lat, 50), p99: pct(d.lat, 99), max: d.lat.at(-1) },
    procs: procReport(cpu0, cpu1, secs), machine: machineReport(cpu0, cpu1),
    sim: sim1 && sim0 ? diffCounters(sim0, sim1) : null,
  };
  print(res);
}

function diffCounters(a, b) {
  const keys = ["submits", "accepted", "throttled", "queue_full", "receipts_sent", "receipts_acked"];
  return Object.fromEntries(keys.map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
}

function print(r) {
  const L = [];
  const complete = mode === "kannel" ? r.finals === r.n : r.delivered === r.n;
  L.push(`  sent ${r.n} with ${r.c} in flight: HTTP accepted ${r.accepted}${r.http_errors ? `, ${r.http_errors} errors (first: ${r.first_error})` : ""}`);
  L.push(`  HTTP accept rate      ${f0(r.accept_rate)} req/s   (${r.accept_s.toFixed(2)} s; request latency p50 ${f1(r.http_ms.p50)} ms, p99 ${f1(r.http_ms.p99)} ms)`);
  if (mode === "kannel") {
    L.push(`  end to end (final DLR callback received) ${f0(r.e2e_rate)} msg/s   (${r.finals}/${r.n} in ${r.e2e_s.toFixed(2)} s)${complete ? "" : "  ** INCOMPLETE **"}`);
    L.push(`  per-message send->DLR callback: p50 ${f0(r.e2e_ms.p50)} ms, p90 ${f0(r.e2e_ms.p90)} ms, p99 ${f0(r.e2e_ms.p99)} ms, max ${f0(r.e2e_ms.max)} ms`);
    L.push(`  DLR callbacks by type (dlr-mask=${r.dlr_mask}): ${JSON.stringify(r.dlr_types)}; messages with >1 callback: ${r.dup_msgs}; missing: ${r.missing}; unmatched: ${r.strays}`);
  } else {
    L.push(`  end to end (delivered, /metrics)        ${f0(r.e2e_rate)} msg/s   (${r.delivered}/${r.n} in ${r.e2e_s.toFixed(2)} s, failed ${r.failed})${complete ? "" : "  ** INCOMPLETE **"}`);
    L.push(`  /metrics polled ${r.metric_polls} times (every ${r.poll_ms} ms); warm-up message delivered: ${r.warmup_delivered}`);
  }
  const server = r.procs.filter((p) => p.label !== "smsc-sim" && p.label !== "load-gen");
  const serverCpu = server.reduce((a, p) => a + p.cpu_s, 0);
  r.server_cpu_us_per_msg = (serverCpu / r.n) * 1e6;
  L.push(`  server CPU per message (${server.map((p) => p.label).join(" + ")}): ${f0((serverCpu / r.n) * 1e6)} µs; peak RSS ${f1(server.reduce((a, p) => a + p.peak_rss_mb, 0))} MB`);
  for (const p of r.procs) L.push(`  ${p.label.padEnd(10)} CPU ${p.cpu_s.toFixed(2)} s (${p.cpu_pct}% of one core over the e2e window), RSS ${p.rss_mb} MB, peak ${p.peak_rss_mb} MB`);
  L.push(`  machine: ${r.machine.busy_pct}% of ${r.machine.ncpu} CPUs busy over the window; softirq/irq ${r.machine.irq_cores} cores, processes not listed above ${r.machine.others_cores} cores`);
  if (r.sim) L.push(`  simulator counters over the run: ${JSON.stringify(r.sim)}`);
  console.log(L.join("\n"));
  console.log(`RESULT ${JSON.stringify(r)}`);
  process.exitCode = complete && r.http_errors === 0 ? 0 : 2;
}

if (mode === "kannel") await runKannel(); else await runAgentline();
