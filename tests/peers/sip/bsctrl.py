#!/usr/bin/env python3
"""A tiny client for baresip's ctrl_tcp (netstring-framed JSON), for manual use and debugging.

    bsctrl.py CTRL_PORT COMMAND [PARAMS] [--events SECONDS]

Sends {"command": COMMAND, "params": PARAMS, "token": "cli"} to 127.0.0.1:CTRL_PORT and prints
every JSON message received (the response, then events) one per line, until the response arrived
and, with --events, until SECONDS after the start passed. Exit 0 if the response says "ok": true, else 1.
Examples: bsctrl.py 4444 dial sip:service@127.0.0.1:5090 ; bsctrl.py 4444 hangup ;
          bsctrl.py 4444 sndcode 1 ; bsctrl.py 4444 help
"""
import json
import socket
import sys
import time


def netstring(obj):
    data = json.dumps(obj).encode()
    return str(len(data)).encode() + b":" + data + b","


def read_netstrings(buf):
    out = []
    while True:
        colon = buf.find(b":")
        if colon < 0 or not buf[:colon].isdigit():
            return out, buf
        n = int(buf[:colon])
        if len(buf) < colon + 1 + n + 1:
            return out, buf
        out.append(json.loads(buf[colon + 1:colon + 1 + n]))
        buf = buf[colon + 1 + n + 1:]


def main(argv):
    events = 0.0
    if "--events" in argv:
        i = argv.index("--events")
        events = float(argv[i + 1])
        del argv[i:i + 2]
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    port, command, params = int(argv[1]), argv[2], " ".join(argv[3:])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(netstring({"command": command, "params": params, "token": "cli"}))
    start = time.monotonic()
    deadline = start + 10.0  # for the response
    ok, buf = None, b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        msgs, buf = read_netstrings(buf + chunk)
        for msg in msgs:
            print(json.dumps(msg), flush=True)
            if msg.get("response") and msg.get("token") == "cli":
                ok = bool(msg.get("ok"))
                deadline = start + events
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
