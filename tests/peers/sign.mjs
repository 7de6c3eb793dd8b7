#!/usr/bin/env node
// Independent signer (viem) for hand-made, possibly deliberately wrong, payment payloads.
// Prints one JSON object on stdout; errors go to stderr, exit code 1.
//
//   node sign.mjs eip3009 --key 0x.. --name "USD Coin" --version 2 --chain-id N --token 0x..
//                         --to 0x.. --value N --valid-after N --valid-before N [--nonce 0x<32 bytes>]
//     -> {"from","to","value","validAfter","validBefore","nonce","signature"}   (all strings)
//   node sign.mjs personal --key 0x.. --message "text"
//     -> {"address","signature"}   (EIP-191 personal_sign; the message is used byte-for-byte as given)
//   node sign.mjs hash-message --message "text"
//     -> {"hash"}   (EIP-191 hash of the message, viem hashMessage: what `personal` signs)
import { randomBytes } from "node:crypto";
import { getAddress, hashMessage } from "viem";
import { privateKeyToAccount } from "viem/accounts";

function parseArgs(argv) {
  const [cmd, ...rest] = argv;
  const opts = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument: ${JSON.stringify(a)}`);
    if (i + 1 >= rest.length) throw new Error(`missing value for ${a}`);
    opts[a.slice(2)] = rest[++i];
  }
  return { cmd, opts };
}

function need(opts, k) {
  if (opts[k] === undefined) throw new Error(`missing --${k}`);
  return opts[k];
}

const commands = {
  async eip3009(opts) {
    const account = privateKeyToAccount(need(opts, "key"));
    const nonce = opts.nonce ?? "0x" + randomBytes(32).toString("hex");
    if (!/^0x[0-9a-fA-F]{64}$/.test(nonce)) throw new Error("--nonce must be 0x + 64 hex digits");
    const message = {
      from: account.address,
      to: getAddress(need(opts, "to").toLowerCase()),
      value: BigInt(need(opts, "value")),
      validAfter: BigInt(need(opts, "valid-after")),
      validBefore: BigInt(need(opts, "valid-before")),
      nonce,
    };
    const signature = await account.signTypedData({
      domain: {
        name: need(opts, "name"),
        version: need(opts, "version"),
        chainId: Number(need(opts, "chain-id")),
        verifyingContract: getAddress(need(opts, "token").toLowerCase()),
      },
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
      message,
    });
    return {
      from: message.from,
      to: message.to,
      value: message.value.toString(),
      validAfter: message.validAfter.toString(),
      validBefore: message.validBefore.toString(),
      nonce,
      signature,
    };
  },

  async personal(opts) {
    const account = privateKeyToAccount(need(opts, "key"));
    const signature = await account.signMessage({ message: need(opts, "message") });
    return { address: account.address, signature };
  },

  async "hash-message"(opts) {
    return { hash: hashMessage(need(opts, "message")) };
  },
};

try {
  const { cmd, opts } = parseArgs(process.argv.slice(2));
  const f = commands[cmd];
  if (!f) throw new Error(`unknown command ${JSON.stringify(cmd)}; one of: ${Object.keys(commands).join(", ")}`);
  process.stdout.write(JSON.stringify(await f(opts)) + "\n");
} catch (e) {
  process.stderr.write(`sign.mjs: ${e?.shortMessage ?? e?.message ?? e}\n`);
  process.exit(1);
}
