#!/usr/bin/env node
// A real x402 facilitator for agentline's integration tests, built only from the OFFICIAL
// packages: x402Facilitator (@x402/core/facilitator) with the exact-EVM schemes from @x402/evm
// (ExactEvmScheme for v2, ExactEvmSchemeV1 for v1) and toFacilitatorEvmSigner over a viem
// wallet client. Verification and settlement are the library's; this file only wires HTTP.
//
//   node facilitator.mjs --rpc URL --key 0x.. [--port P]     (P = 0 or omitted: pick a free port)
//     prints one line {"url":"http://127.0.0.1:PORT"} on stdout once listening, then serves
//     until SIGTERM/SIGINT (exit 0). Diagnostics go to stderr; usage/startup errors exit 1.
//
//   POST /verify   {"x402Version":2|1,"paymentPayload":{..},"paymentRequirements":{..}}
//     -> 200 {"isValid":true,"payer"} | 200 {"isValid":false,"invalidReason","invalidMessage"?,"payer"}
//   POST /settle   same body
//     -> 200 {"success":true,"transaction","network","payer"}
//      | 200 {"success":false,"errorReason","transaction":"","network","payer"}
//   GET  /supported -> 200 {"kinds":[..],"extensions":[],"signers":{"eip155:*":["0x.."]}}
//   Bad JSON / missing paymentPayload or paymentRequirements -> 400 {"error"}; an exception in
//   the library (e.g. no scheme registered for that version/network) -> 500 {"error"}, as in
//   the official example facilitator (x402 examples/typescript/facilitator/basic).
//
// Registered kinds: v2 exact on eip155:<chain ID of --rpc>; v1 exact on every v1 network name
// whose chain ID equals the RPC's (base-sepolia for anvil --chain-id 84532). The library picks
// the scheme by paymentPayload.x402Version; the top-level x402Version is accepted and ignored.
import { createServer } from "node:http";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/facilitator";
import { EVM_NETWORK_CHAIN_ID_MAP } from "@x402/evm/v1";
import { createPublicClient, createWalletClient, defineChain, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const MAX_BODY = 1 << 20;

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument: ${JSON.stringify(a)}`);
    if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
    opts[a.slice(2)] = argv[++i];
  }
  for (const k of ["rpc", "key"]) if (opts[k] === undefined) throw new Error(`missing --${k}`);
  const port = Number(opts.port ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error("--port must be 0..65535");
  return { rpc: opts.rpc, key: opts.key, port };
}

async function buildFacilitator({ rpc, key }) {
  const account = privateKeyToAccount(key);
  const chainId = await createPublicClient({ transport: http(rpc) }).getChainId();
  const chain = defineChain({
    id: chainId,
    name: `local-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpc] } },
  });
  const client = createWalletClient({ account, chain, transport: http(rpc) }).extend(publicActions);

  // Same adapter shape as the official example facilitator. One deliberate difference: reads
  // (including the transferWithAuthorization simulation in verify) use block tag "pending",
  // because anvil's "latest" carries the last mined block's timestamp, which lags wall-clock
  // time on an idle chain (see README "Gotchas").
  const signer = toFacilitatorEvmSigner({
    address: account.address,
    getCode: (args) => client.getCode(args),
    readContract: (args) => client.readContract({ ...args, args: args.args || [], blockTag: "pending" }),
    verifyTypedData: (args) => client.verifyTypedData(args),
    writeContract: (args) => client.writeContract({ ...args, args: args.args || [] }),
    sendTransaction: (args) => client.sendTransaction(args),
    waitForTransactionReceipt: (args) => client.waitForTransactionReceipt(args),
  });

  const v2Networks = [`eip155:${chainId}`];
  const v1Networks = Object.entries(EVM_NETWORK_CHAIN_ID_MAP)
    .filter(([, id]) => id === chainId)
    .map(([name]) => name);
  const facilitator = new x402Facilitator().register(v2Networks, new ExactEvmScheme(signer));
  if (v1Networks.length) facilitator.registerV1(v1Networks, new ExactEvmSchemeV1(signer));
  return { facilitator, address: account.address, chainId, v2Networks, v1Networks };
}

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error("body too large"));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        reject(new Error("body is not valid JSON"));
      }
    });
    req.on("error", reject);
  });
}

const errText = (e) => (e instanceof Error ? e.message : String(e));

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`facilitator.mjs: ${e.message}\n`);
  process.exit(1);
}

let fac;
try {
  fac = await buildFacilitator(opts);
} catch (e) {
  process.stderr.write(`facilitator.mjs: startup failed: ${e?.shortMessage ?? errText(e)}\n`);
  process.exit(1);
}
const { facilitator } = fac;

// Settlements are serialized: every one is sent from the same account, and concurrent sends
// would race for its transaction nonce.
let settleQueue = Promise.resolve();
const serialized = (f) => {
  const run = settleQueue.then(f, f);
  settleQueue = run.catch(() => {});
  return run;
};

const server = createServer(async (req, res) => {
  const path = (req.url ?? "/").split("?")[0];
  try {
    if (req.method === "GET" && path === "/supported") return send(res, 200, facilitator.getSupported());
    if (req.method !== "POST" || (path !== "/verify" && path !== "/settle")) {
      return send(res, 404, { error: `no route for ${req.method} ${path}` });
    }
    let body;
    try {
      body = await readJson(req);
    } catch (e) {
      return send(res, 400, { error: errText(e) });
    }
    const { paymentPayload, paymentRequirements } = body ?? {};
    if (!paymentPayload || typeof paymentPayload !== "object" || !paymentRequirements || typeof paymentRequirements !== "object") {
      return send(res, 400, { error: "Missing paymentPayload or paymentRequirements" });
    }
    if (path === "/verify") {
      const out = await facilitator.verify(paymentPayload, paymentRequirements);
      process.stderr.write(`facilitator.mjs: verify -> ${JSON.stringify(out)}\n`);
      return send(res, 200, out);
    }
    try {
      const out = await serialized(() => facilitator.settle(paymentPayload, paymentRequirements));
      process.stderr.write(`facilitator.mjs: settle -> ${JSON.stringify(out)}\n`);
      return send(res, 200, out);
    } catch (e) {
      if (errText(e).includes("Settlement aborted:")) {
        return send(res, 200, {
          success: false,
          errorReason: errText(e).replace("Settlement aborted: ", ""),
          transaction: "",
          network: paymentRequirements.network ?? "unknown",
        });
      }
      throw e;
    }
  } catch (e) {
    process.stderr.write(`facilitator.mjs: ${req.method} ${path} error: ${e?.stack ?? e}\n`);
    if (!res.headersSent) send(res, 500, { error: errText(e) });
  }
});

server.on("error", (e) => {
  process.stderr.write(`facilitator.mjs: ${errText(e)}\n`);
  process.exit(1);
});

server.listen(opts.port, "127.0.0.1", () => {
  const { port } = server.address();
  process.stderr.write(
    `facilitator.mjs: signer ${fac.address}, chain ${fac.chainId}, v2 ${fac.v2Networks.join(",")}, ` +
      `v1 ${fac.v1Networks.join(",") || "(none)"}\n`,
  );
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}` }) + "\n");
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}
