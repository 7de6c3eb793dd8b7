#!/usr/bin/env node
// Compiles contracts/TestEip3009.sol and contracts/TestWallet1271.sol with the pinned npm `solc`
// (tests/peers/node_modules) and writes contracts/<Name>.json = {"abi": [...], "bytecode": "0x..."}.
// Deterministic: fixed compiler version, fixed settings, no metadata hash appended.
//
// Usage: (cd tests/peers && npm ci) && node contracts/build.mjs [--check]
//   --check  compile and fail (exit 1) if any committed JSON differs.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SOLC_VERSION = "0.8.37";
const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "tests", "peers", "package.json"));
const solc = require("solc");

const full = solc.version();
if (!full.startsWith(SOLC_VERSION + "+")) {
  console.error(`expected solc ${SOLC_VERSION}, got ${full}; run npm ci in tests/peers`);
  process.exit(1);
}

// Each contract is compiled on its own (one source per standard-JSON input), so adding a
// contract never changes another one's artifact.
const CONTRACTS = ["TestEip3009", "TestWallet1271"];

function build(name) {
  const file = `${name}.sol`;
  const input = {
    language: "Solidity",
    sources: { [file]: { content: readFileSync(join(here, file), "utf8") } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "cancun",
      metadata: { bytecodeHash: "none", appendCBOR: false },
      outputSelection: { [file]: { [name]: ["abi", "evm.bytecode.object"] } },
    },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === "error");
  for (const e of out.errors || []) console.error(e.formattedMessage);
  if (errors.length) process.exit(1);
  const c = out.contracts[file][name];
  return { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
}

const check = process.argv.includes("--check");
let stale = false;
for (const name of CONTRACTS) {
  const artifact = build(name);
  const text = JSON.stringify(artifact, null, 2) + "\n";
  const dest = join(here, `${name}.json`);
  if (check) {
    const old = existsSync(dest) ? readFileSync(dest, "utf8") : "";
    if (old !== text) {
      console.error(`${dest} is out of date; run node contracts/build.mjs`);
      stale = true;
    } else {
      console.log(`${dest} is up to date (solc ${full})`);
    }
  } else {
    writeFileSync(dest, text);
    console.log(`wrote ${dest} (solc ${full}, ${(artifact.bytecode.length - 2) / 2} bytes)`);
  }
}
if (stale) process.exit(1);
