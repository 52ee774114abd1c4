// Compiles RecordStore.sol with the solc pinned in package-lock.json (the
// same version and settings as contracts/build.mjs) and prints
// {"solc", "abi", "bin"} as JSON on stdout. fhirbench ganache runs it;
// nothing is written to disk. Run `npm ci` in this directory first.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const SOLC_VERSION = "0.8.37+commit.f401782d";
const SETTINGS = {
  optimizer: { enabled: true, runs: 10000 },
  // Ganache 7.9.2 runs up to shanghai; solc 0.8.37 defaults to osaka.
  evmVersion: "shanghai",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
};

if (!solc.version().startsWith(SOLC_VERSION)) {
  throw new Error(`solc ${solc.version()} is installed, want ${SOLC_VERSION}: run npm ci`);
}
const here = dirname(fileURLToPath(import.meta.url));
const sources = { "RecordStore.sol": { content: readFileSync(join(here, "RecordStore.sol"), "utf8") } };
const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings: SETTINGS })));
const diagnostics = output.errors ?? [];
for (const d of diagnostics) console.error(d.formattedMessage);
if (diagnostics.length > 0) process.exit(1); // warnings too
const c = output.contracts["RecordStore.sol"].RecordStore;
process.stdout.write(JSON.stringify({ solc: solc.version(), abi: c.abi, bin: c.evm.bytecode.object }) + "\n");
