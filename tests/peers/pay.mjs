#!/usr/bin/env node
// Pays an x402-protected URL with an OFFICIAL, unmodified x402 client. Only the clients'
// default spend caps are lifted (a 1000 USDC price on a local test token must be allowed).
//
//   node pay.mjs --client v2 --key 0x.. --url http://127.0.0.1:PORT/sms/subscribe [--idempotency-key K]
//       @x402/fetch wrapFetchWithPayment + @x402/evm registerExactEvmScheme, spend controls off.
//       Reads the PAYMENT-REQUIRED header, answers with PAYMENT-SIGNATURE.
//   node pay.mjs --client v1 --key 0x.. --url ... [--idempotency-key K]
//       legacy x402-fetch wrapFetchWithPayment(fetch, account, 10^12). Reads the v1 JSON body
//       (v1 network names such as "base-sepolia" only), answers with X-PAYMENT.
//
// Sends POST with body "{}" (Content-Type: application/json) and prints one line:
//   {"status": <http status>, "body": <JSON body or text>, "paymentResponse": <decoded
//    PAYMENT-RESPONSE / X-PAYMENT-RESPONSE JSON, or null>}
// Exit 0 whatever the HTTP status. If the client library itself throws (e.g. it cannot parse
// the 402), prints {"status": null, "body": null, "paymentResponse": null, "error": "..."} and
// exits 3; usage errors exit 1.
import { privateKeyToAccount } from "viem/accounts";

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument: ${JSON.stringify(a)}`);
    if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
    opts[a.slice(2)] = argv[++i];
  }
  for (const k of ["client", "key", "url"]) if (opts[k] === undefined) throw new Error(`missing --${k}`);
  if (!["v1", "v2"].includes(opts.client)) throw new Error("--client must be v1 or v2");
  return opts;
}

function decodeHeader(value) {
  if (!value) return null;
  try {
    return JSON.parse(Buffer.from(value, "base64").toString("utf8"));
  } catch {
    return { undecodable: value };
  }
}

async function makeFetch(opts) {
  const account = privateKeyToAccount(opts.key);
  if (opts.client === "v2") {
    const { wrapFetchWithPayment, x402Client } = await import("@x402/fetch");
    const { registerExactEvmScheme } = await import("@x402/evm/exact/client");
    const client = new x402Client();
    registerExactEvmScheme(client, { signer: account });
    client.setSpendControls(false); // any asset, no per-payment cap (default: known assets, <= $1)
    return wrapFetchWithPayment(fetch, client);
  }
  const { wrapFetchWithPayment } = await import("x402-fetch");
  return wrapFetchWithPayment(fetch, account, 10n ** 12n); // default cap is 0.10 USDC
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`pay.mjs: ${e.message}\n`);
  process.exit(1);
}

try {
  const payingFetch = await makeFetch(opts);
  const headers = { "Content-Type": "application/json" };
  if (opts["idempotency-key"] !== undefined) headers["Idempotency-Key"] = opts["idempotency-key"];
  const res = await payingFetch(opts.url, { method: "POST", headers, body: "{}" });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  const paymentResponse = decodeHeader(res.headers.get("payment-response") ?? res.headers.get("x-payment-response"));
  process.stdout.write(JSON.stringify({ status: res.status, body, paymentResponse }) + "\n");
} catch (e) {
  const msg = e?.shortMessage ?? e?.message ?? String(e);
  process.stderr.write(`pay.mjs (${opts.client}): ${msg}\n`);
  process.stdout.write(JSON.stringify({ status: null, body: null, paymentResponse: null, error: msg }) + "\n");
  process.exit(3);
}
