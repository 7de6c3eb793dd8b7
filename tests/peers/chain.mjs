#!/usr/bin/env node
// Chain helper for agentline's Rust integration tests (TestEip3009 on a local anvil).
// Every command prints exactly one JSON object on stdout; errors go to stderr, exit code 1.
//
//   node chain.mjs deploy     --rpc URL [--name "USD Coin"] [--version 2] [--key 0x..]  -> {"token":"0x.."}
//   node chain.mjs mint       --rpc URL --token 0x.. --to 0x.. --amount N [--key 0x..]  -> {"tx":"0x.."}
//   node chain.mjs balance    --rpc URL --token 0x.. --of 0x..                          -> {"balance":"N"}
//   node chain.mjs auth-state --rpc URL --token 0x.. --from 0x.. --nonce 0x..           -> {"used":bool}
//   node chain.mjs settle     --rpc URL --token 0x.. --from 0x.. --to 0x.. --value N
//                             --valid-after N --valid-before N --nonce 0x.. --signature 0x.. [--key 0x..]
//                                                                                      -> {"tx":"0x..","status":"success"}
//   node chain.mjs domain     --rpc URL --token 0x..  -> {"name","version","chainId","domainSeparator"}
//   node chain.mjs deploy-wallet      --rpc URL --owner 0x.. [--key 0x..]              -> {"wallet":"0x.."}
//   node chain.mjs is-valid-signature --rpc URL --wallet 0x.. --hash 0x.. --signature 0x..
//                                                                   -> {"magic":"0x1626ba7e"|"0xffffffff"|..}
//     (TestWallet1271, ERC-1271: the wallet ecrecovers its owner from the 32-byte hash as given)
//
// --key defaults to anvil account 0. Write commands wait for the receipt and fail if it reverted.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createPublicClient, createWalletClient, defineChain, getAddress, http, parseSignature } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const ANVIL_KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const here = dirname(fileURLToPath(import.meta.url));
const artifact = JSON.parse(readFileSync(join(here, "..", "..", "contracts", "TestEip3009.json"), "utf8"));
const abi = artifact.abi;
const wallet1271 = JSON.parse(readFileSync(join(here, "..", "..", "contracts", "TestWallet1271.json"), "utf8"));

function parseArgs(argv) {
  const [cmd, ...rest] = argv;
  const opts = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument: ${a}`);
    const k = a.slice(2);
    if (i + 1 >= rest.length) throw new Error(`missing value for ${a}`);
    opts[k] = rest[++i];
  }
  return { cmd, opts };
}

function need(opts, k) {
  if (opts[k] === undefined) throw new Error(`missing --${k}`);
  return opts[k];
}

async function clients(opts) {
  const url = need(opts, "rpc");
  const probe = createPublicClient({ transport: http(url) });
  const id = await probe.getChainId();
  const chain = defineChain({
    id,
    name: `local-${id}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
  });
  const pub = createPublicClient({ chain, transport: http(url) });
  const account = privateKeyToAccount(opts.key ?? ANVIL_KEY0);
  const wallet = createWalletClient({ chain, account, transport: http(url) });
  return { pub, wallet, account, chainId: id };
}

async function waitOk(pub, hash) {
  const r = await pub.waitForTransactionReceipt({ hash, timeout: 60_000 });
  if (r.status !== "success") throw new Error(`transaction ${hash} reverted`);
  return r;
}

const commands = {
  async deploy(opts) {
    const { pub, wallet } = await clients(opts);
    const hash = await wallet.deployContract({
      abi,
      bytecode: artifact.bytecode,
      args: [opts.name ?? "USD Coin", opts.version ?? "2"],
    });
    const r = await waitOk(pub, hash);
    return { token: getAddress(r.contractAddress) };
  },

  async mint(opts) {
    const { pub, wallet } = await clients(opts);
    const hash = await wallet.writeContract({
      address: need(opts, "token"),
      abi,
      functionName: "mint",
      args: [need(opts, "to"), BigInt(need(opts, "amount"))],
    });
    await waitOk(pub, hash);
    return { tx: hash };
  },

  async balance(opts) {
    const { pub } = await clients(opts);
    const b = await pub.readContract({
      address: need(opts, "token"),
      abi,
      functionName: "balanceOf",
      args: [need(opts, "of")],
    });
    return { balance: b.toString() };
  },

  async "auth-state"(opts) {
    const { pub } = await clients(opts);
    const used = await pub.readContract({
      address: need(opts, "token"),
      abi,
      functionName: "authorizationState",
      args: [need(opts, "from"), need(opts, "nonce")],
    });
    return { used };
  },

  async settle(opts) {
    const { pub, wallet } = await clients(opts);
    const sig = parseSignature(need(opts, "signature"));
    const v = sig.v !== undefined ? Number(sig.v) : 27 + sig.yParity;
    const hash = await wallet.writeContract({
      address: need(opts, "token"),
      abi,
      functionName: "transferWithAuthorization",
      args: [
        need(opts, "from"),
        need(opts, "to"),
        BigInt(need(opts, "value")),
        BigInt(need(opts, "valid-after")),
        BigInt(need(opts, "valid-before")),
        need(opts, "nonce"),
        v,
        sig.r,
        sig.s,
      ],
    });
    await waitOk(pub, hash);
    return { tx: hash, status: "success" };
  },

  async domain(opts) {
    const { pub, chainId } = await clients(opts);
    const address = need(opts, "token");
    const [name, version, domainSeparator] = await Promise.all(
      ["name", "version", "DOMAIN_SEPARATOR"].map((functionName) =>
        pub.readContract({ address, abi, functionName }),
      ),
    );
    return { name, version, chainId, domainSeparator };
  },

  async "deploy-wallet"(opts) {
    const { pub, wallet } = await clients(opts);
    const hash = await wallet.deployContract({
      abi: wallet1271.abi,
      bytecode: wallet1271.bytecode,
      args: [getAddress(need(opts, "owner").toLowerCase())],
    });
    const r = await waitOk(pub, hash);
    return { wallet: getAddress(r.contractAddress) };
  },

  async "is-valid-signature"(opts) {
    const { pub } = await clients(opts);
    const magic = await pub.readContract({
      address: need(opts, "wallet"),
      abi: wallet1271.abi,
      functionName: "isValidSignature",
      args: [need(opts, "hash"), need(opts, "signature")],
    });
    return { magic };
  },
};

try {
  const { cmd, opts } = parseArgs(process.argv.slice(2));
  const f = commands[cmd];
  if (!f) throw new Error(`unknown command ${JSON.stringify(cmd)}; one of: ${Object.keys(commands).join(", ")}`);
  const out = await f(opts);
  process.stdout.write(JSON.stringify(out) + "\n");
} catch (e) {
  process.stderr.write(`chain.mjs: ${e?.shortMessage ?? e?.message ?? e}\n`);
  if (e?.details) process.stderr.write(`  details: ${e.details}\n`);
  process.exit(1);
}
