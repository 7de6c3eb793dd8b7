#!/usr/bin/env python3
"""Drives agentline's /mcp with the official MCP Python SDK (PyPI `mcp`, streamable HTTP).

    python3 mcp_client.py --url http://127.0.0.1:PORT/mcp --token an_...

Opens a session (initialize with the SDK's handshake protocol version, so the server gives an
Mcp-Session-Id), lists the tools, calls `get_number` (must succeed) and `send_sms` with a
destination that is not E.164 (must be refused as a tool error), then leaves the session, which
makes the SDK send DELETE /mcp. The SDK logs "Session termination failed" (stderr) if that
DELETE is not answered 200/204/405.

Prints one JSON line:
  {"protocol": <negotiated version>, "tools": [names], "ok": {"isError", "structured"},
   "bad": {"isError", "structured"}}
and exits 0. If the SDK raises, prints {"error": "..."} and exits 3.
Dependencies come from tests/peers/.pydeps (see setup.sh / requirements.txt).
"""

import argparse
import json
import logging
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".pydeps"))


def outcome(result):
    return {"isError": bool(result.is_error), "structured": result.structured_content}


async def drive(url, token):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                listed = await session.list_tools()
                ok = await session.call_tool("get_number", {})
                bad = await session.call_tool("send_sms", {"to": "12345", "body": "hello"})
    return {
        "protocol": init.protocol_version,
        "tools": sorted(t.name for t in listed.tools),
        "ok": outcome(ok),
        "bad": outcome(bad),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        import anyio

        out = anyio.run(drive, args.url, args.token)
    except Exception as e:  # noqa: BLE001 - report any SDK failure to the test
        msg = f"{type(e).__name__}: {e}"
        print(f"mcp_client.py: {msg}", file=sys.stderr)
        print(json.dumps({"error": msg}))
        return 3
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
