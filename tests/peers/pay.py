#!/usr/bin/env python3
"""Pays an x402-protected URL with the official PyPI `x402` client (v2, requests flavour).

    python3 pay.py --key 0x.. --url http://127.0.0.1:PORT/sms/subscribe [--idempotency-key K]

Uses x402ClientSync + register_exact_evm_client(eth_account LocalAccount) + x402HTTPAdapter
mounted on a requests.Session, unmodified except that its spend controls (default: known
assets only, <= $1 per payment) are switched off. Reads the PAYMENT-REQUIRED header (or a v1
JSON body) and answers with PAYMENT-SIGNATURE (or X-PAYMENT for v1).

Sends POST with body "{}" (Content-Type: application/json) and prints one line:
  {"status": <http status>, "body": <JSON body or text>, "paymentResponse": <decoded
   PAYMENT-RESPONSE / X-PAYMENT-RESPONSE JSON, or null>}
Exit 0 whatever the HTTP status. If the client library raises, prints
{"status": null, "body": null, "paymentResponse": null, "error": "..."} and exits 3.
Dependencies come from tests/peers/.pydeps (see setup.sh / requirements.txt).
"""

import argparse
import base64
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".pydeps"))


def decode_header(value):
    if not value:
        return None
    try:
        return json.loads(base64.b64decode(value).decode("utf-8"))
    except Exception:
        return {"undecodable": value}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--idempotency-key")
    ap.add_argument("--client", default="v2", choices=["v2", "py"], help="accepted for symmetry with pay.mjs")
    args = ap.parse_args()

    try:
        import requests
        from eth_account import Account
        from x402 import x402ClientSync
        from x402.http.clients.requests import x402HTTPAdapter
        from x402.mechanisms.evm.exact.register import register_exact_evm_client

        client = x402ClientSync()
        register_exact_evm_client(client, Account.from_key(args.key))
        client.set_spend_controls(False)  # any asset, no per-payment cap

        session = requests.Session()
        adapter = x402HTTPAdapter(client)
        session.mount("http://", adapter)
        session.mount("https://", adapter)

        headers = {"Content-Type": "application/json"}
        if args.idempotency_key is not None:
            headers["Idempotency-Key"] = args.idempotency_key
        res = session.post(args.url, data=b"{}", headers=headers, timeout=120)
        try:
            body = res.json()
        except ValueError:
            body = res.text
        pr = res.headers.get("PAYMENT-RESPONSE") or res.headers.get("X-PAYMENT-RESPONSE")
        print(json.dumps({"status": res.status_code, "body": body, "paymentResponse": decode_header(pr)}))
        return 0
    except Exception as e:  # noqa: BLE001 - report any client failure to the test
        msg = f"{type(e).__name__}: {e}"
        print(f"pay.py: {msg}", file=sys.stderr)
        print(json.dumps({"status": None, "body": None, "paymentResponse": None, "error": msg}))
        return 3


if __name__ == "__main__":
    sys.exit(main())
