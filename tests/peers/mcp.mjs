#!/usr/bin/env node
// An agent that knows only MCP, driven by the official TypeScript SDK (@modelcontextprotocol/sdk,
// streamable HTTP): it subscribes with an x402 payment it signs itself (viem, EIP-3009) through
// the x402 MCP transport (_meta["x402/payment"]), then uses its number through the tools.
// Prints one JSON object on stdout with everything it saw; diagnostics go to stderr.
//
//   node mcp.mjs --url http://127.0.0.1:PORT/mcp --key 0x<payer key> --sender-token T --echo +15005550006
//
// --sender-token is another agent's REST token: once wait_for_code has reported progress (so it is
// really waiting), the script has that agent text this agent's new number a code.
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const mcpUrl = new URL(args.url);
const base = `${mcpUrl.protocol}//${mcpUrl.host}`;

async function connect(token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const client = new Client({ name: "agentline-test-agent", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(mcpUrl, { requestInit: { headers } });
  await client.connect(transport);
  return client;
}

async function call(client, name, toolArgs = {}, { meta, progress } = {}) {
  const seen = [];
  const started = performance.now();
  const params = { name, arguments: toolArgs };
  if (meta) params._meta = meta;
  const options = progress ? { onprogress: (p) => { seen.push(p); progress(p); }, timeout: 60_000 } : { timeout: 60_000 };
  const result = await client.callTool(params, undefined, options);
  return { result, progress: seen, ms: performance.now() - started };
}

/// Builds and signs an x402 v2 `exact` payment for the first offer of a PaymentRequired.
async function pay(required, key) {
  const offer = required.accepts[0];
  const account = privateKeyToAccount(key);
  const now = Math.floor(Date.now() / 1000);
  const authorization = {
    from: account.address,
    to: getAddress(offer.payTo.toLowerCase()),
    value: offer.amount,
    validAfter: "0",
    validBefore: String(now + (offer.maxTimeoutSeconds ?? 300)),
    nonce: "0x" + randomBytes(32).toString("hex"),
  };
  const chainId = Number(offer.network.split(":")[1]);
  const signature = await account.signTypedData({
    domain: { name: offer.extra.name, version: offer.extra.version, chainId, verifyingContract: getAddress(offer.asset.toLowerCase()) },
    types: {
      TransferWithAuthorization: [
        { name: "from", type: "address" },
        { name: "to", type: "address" },
        { name: "value", type: "uint256" },
        { name: "validAfter", type: "uint256" },
        { name: "validBefore", type: "uint256" },
        { name: "nonce", type: "bytes32" },
      ],
    },
    primaryType: "TransferWithAuthorization",
    message: {
      ...authorization,
      value: BigInt(authorization.value),
      validAfter: BigInt(authorization.validAfter),
      validBefore: BigInt(authorization.validBefore),
    },
  });
  return { x402Version: 2, resource: required.resource, accepted: offer, payload: { authorization, signature } };
}

const out = {};
try {
  // 1. No token yet: discover the tools, subscribe over MCP.
  const anon = await connect();
  const tools = (await anon.listTools()).tools;
  out.tools = tools.map((t) => ({ name: t.name, description: t.description, required: t.inputSchema?.required ?? [] }));
  out.protocolVersion = anon.transport?.protocolVersion ?? null;
  const unpaid = await call(anon, "subscribe", {});
  out.unpaid = { isError: unpaid.result.isError, structured: unpaid.result.structuredContent, text: unpaid.result.content?.[0]?.text };
  const payment = await pay(unpaid.result.structuredContent, args.key);
  const paid = await call(anon, "subscribe", { idempotency_key: "mcp-test-subscribe-0001" }, { meta: { "x402/payment": payment } });
  out.paid = { isError: paid.result.isError ?? false, structured: paid.result.structuredContent, meta: paid.result._meta ?? null };
  await anon.close();
  const token = paid.result.structuredContent.token;

  // 2. With the token: the agent's number, an empty long-poll with progress.
  const agent = await connect(token);
  out.number = (await call(agent, "get_number")).result.structuredContent;
  out.status = (await call(agent, "subscription_status")).result.structuredContent;
  const empty = await call(agent, "receive_sms", { wait_seconds: 2 }, { progress: () => {} });
  out.emptyReceive = { structured: empty.result.structuredContent, progress: empty.progress, ms: empty.ms };

  // 3. Another agent texts a plain message and, once wait_for_code is really waiting, a code.
  const number = out.number.number;
  const text = (body) =>
    fetch(`${base}/sms/send`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${args["sender-token"]}` },
      body: JSON.stringify({ to: number, body }),
    }).then((r) => r.status);
  out.plainSent = await text("hello from another agent");
  let codeSent = null;
  const code = await call(agent, "wait_for_code", { wait_seconds: 20 }, {
    progress: () => {
      if (!codeSent) codeSent = text("Your verification code is 314159");
    },
  });
  out.codeSendStatus = codeSent ? await codeSent : null;
  out.code = { structured: code.result.structuredContent, progress: code.progress.length };

  // 4. The plain message via receive_sms, then repeated with the cursor from before it.
  const got = await call(agent, "receive_sms", { wait_seconds: 10 });
  out.receive = got.result.structuredContent;
  const again = await call(agent, "receive_sms", { wait_seconds: 0, cursor: 0 });
  out.receiveAgain = again.result.structuredContent;
  out.send = (await call(agent, "send_sms", { to: args.echo, body: "sent over MCP" })).result.structuredContent;
  out.messages = (await call(agent, "list_messages", { limit: 10 })).result.structuredContent;

  // 5. A call to the echo number, hung up.
  out.call = (await call(agent, "place_call", { to: args.echo })).result.structuredContent;
  out.hangup = (await call(agent, "hangup_call", { call_id: out.call.call_id })).result.structuredContent;
  await new Promise((r) => setTimeout(r, 200));
  out.calls = (await call(agent, "list_calls", {})).result.structuredContent;
  out.badArgs = (await call(agent, "send_sms", { to: "12", body: "x" })).result;
  await agent.close();

  // 6. A wrong token is refused by every tool.
  const stranger = await connect("an_not_a_token");
  out.stranger = (await call(stranger, "get_number")).result;
  await stranger.close();
} catch (err) {
  out.error = String(err?.stack ?? err);
}
console.log(JSON.stringify(out));
// Keep-alive sockets would hold the process open for seconds after the work is done.
process.exit(0);
