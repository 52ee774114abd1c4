// Compiles src/*.sol with the solcjs pinned in package-lock.json and writes
// artifacts/<Contract>.{abi,bin,bin-runtime,metadata.json}.
//
// Output is deterministic: sources are passed by content under relative
// names (src/X.sol), so the metadata (and the metadata hash at the end of
// the bytecode) holds no absolute path and no timestamp. Run from anywhere:
//   npm ci && node build.mjs
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const SOLC_VERSION = "0.8.37+commit.f401782d";
const SETTINGS = {
  // Anchoring runs every few seconds for the life of the log: optimise
  // runtime gas over deployment size.
  optimizer: { enabled: true, runs: 10000 },
  // Ganache 7.9.2 runs up to shanghai; solc 0.8.37 defaults to osaka.
  evmVersion: "shanghai",
  viaIR: false,
  metadata: { bytecodeHash: "ipfs", appendCBOR: true },
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] },
  },
};

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, "src");
const outDir = join(here, "artifacts");

if (!solc.version().startsWith(SOLC_VERSION)) {
  throw new Error(`solc ${solc.version()} is installed, want ${SOLC_VERSION}: run npm ci`);
}

const sources = {};
for (const name of readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[`src/${name}`] = { content: readFileSync(join(srcDir, name), "utf8") };
}

const output = JSON.parse(
  solc.compile(JSON.stringify({ language: "Solidity", sources, settings: SETTINGS })),
);
const diagnostics = output.errors ?? [];
for (const d of diagnostics) console.error(d.formattedMessage);
if (diagnostics.some((d) => d.severity === "error")) process.exit(1);
// Warnings are errors too: the committed build must be clean.
if (diagnostics.length > 0) {
  console.error("build.mjs: compiler warnings; fix them");
  process.exit(1);
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir);
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    if (c.evm.bytecode.object === "") continue; // interfaces, abstract contracts
    // .bin files are bare hex without a newline: abigen embeds them verbatim.
    writeFileSync(join(outDir, `${name}.abi`), JSON.stringify(c.abi, null, 2) + "\n");
    writeFileSync(join(outDir, `${name}.bin`), c.evm.bytecode.object);
    writeFileSync(join(outDir, `${name}.bin-runtime`), c.evm.deployedBytecode.object);
    // Byte-exact: its IPFS hash is the one embedded in the bytecode.
    writeFileSync(join(outDir, `${name}.metadata.json`), c.metadata);
    console.log(`${file}:${name}: ${c.evm.deployedBytecode.object.length / 2} bytes runtime`);
  }
}
