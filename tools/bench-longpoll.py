#!/usr/bin/env python3
"""Long-poll wake-up latency: an inbound message committed -> the waiting /sms/receive answered.

Starts `target/release/agentline serve` on loopback, comp-grants two wallets, then N times:
B parks a `GET /sms/receive?wait=10` (confirmed parked through the `agentline_sms_longpoll_waiting`
gauge), A sends B a message through the simulated network, B's long-poll returns it. Reports the
server-side histogram `agentline_sms_longpoll_wakeup_seconds` (commit -> response built, read off
25%-wide buckets) and the client-observed send-response -> receive-response gap. Stdlib only.

usage: tools/bench-longpoll.py [sqlite|postgres] [rounds]
"""
import json, os, subprocess, sys, tempfile, threading, time, urllib.request

backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 500
port, key = 18403, "bench-admin-key-0123456789"
base = f"http://127.0.0.1:{port}"
tmp = tempfile.mkdtemp()
pg_admin = os.environ.get("TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
if backend == "postgres":
    db = f"bench_lp_{os.getpid()}"
    subprocess.run(["psql", pg_admin, "-qc", f"CREATE DATABASE {db}"], check=True)
    url = f"postgres://postgres@127.0.0.1:5432/{db}"
else:
    url = f"sqlite://{tmp}/bench.db"
env = dict(os.environ, AGENTLINE_LISTEN=f"127.0.0.1:{port}", AGENTLINE_DATABASE_URL=url,
           AGENTLINE_ADMIN_KEY=key, AGENTLINE_LOG="warn")
server = subprocess.Popen(["target/release/agentline", "serve"], env=env, stderr=open(f"{tmp}/server.log", "w"))


def call(method, path, token=None, body=None, timeout=30):
    req = urllib.request.Request(base + path, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, data=data, timeout=timeout) as r:
        raw = r.read().decode()
        return json.loads(raw) if r.headers.get("content-type", "").startswith("application/json") else raw


try:
    for _ in range(100):
        try:
            call("GET", "/health"); break
        except Exception:
            time.sleep(0.1)
    grant = lambda w: call("POST", "/admin/subscriptions", key, {"wallet": w, "days": 30})
    a, b = grant("0x" + "11" * 20), grant("0x" + "22" * 20)
    gaps = []
    for i in range(rounds):
        result = {}
        def wait():
            result["resp"] = call("GET", "/sms/receive?wait=10", b["token"])
            result["at"] = time.perf_counter()
        t = threading.Thread(target=wait); t.start()
        while "agentline_sms_longpoll_waiting 1" not in call("GET", "/metrics"):
            pass
        call("POST", "/sms/send", a["token"], {"to": b["number"], "body": f"code {i:06d}"})
        sent_at = time.perf_counter()
        t.join()
        assert result["resp"]["count"] == 1, result
        gaps.append((result["at"] - sent_at) * 1000)
    metrics = call("GET", "/metrics")
    buckets, count = [], 0
    for line in metrics.splitlines():
        if line.startswith("agentline_sms_longpoll_wakeup_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), int(float(line.split()[-1]))))
        elif line.startswith("agentline_sms_longpoll_wakeup_seconds_count"):
            count = int(float(line.split()[-1]))
    def quantile(q):
        rank = q * count
        for le, c in buckets:
            if c >= rank:
                return le * 1000
    gaps.sort()
    pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))]
    print(f"backend={backend} rounds={rounds} wakeups_counted={count}")
    print(f"server commit->response (bucket upper bound): p50<={quantile(0.5):.3f} ms p99<={quantile(0.99):.3f} ms")
    print(f"client send-response->receive-response: p50={pick(0.5):.2f} ms p99={pick(0.99):.2f} ms max={gaps[-1]:.2f} ms")
finally:
    server.terminate(); server.wait(timeout=20)
    if backend == "postgres":
        subprocess.run(["psql", pg_admin, "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])
