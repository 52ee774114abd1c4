// Recompiles Store.sol into Store.bin and Store.abi (not needed by the tests).
//   npm install solc@0.8.37 && node compile.js
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const src = fs.readFileSync(path.join(__dirname, 'Store.sol'), 'utf8');
const input = {
  language: 'Solidity',
  sources: { 'Store.sol': { content: src } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'shanghai',
    metadata: { bytecodeHash: 'none' },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
for (const e of out.errors || []) {
  console.error(e.formattedMessage);
  if (e.severity === 'error') process.exit(1);
}
const c = out.contracts['Store.sol'].Store;
fs.writeFileSync(path.join(__dirname, 'Store.bin'), c.evm.bytecode.object + '\n');
fs.writeFileSync(path.join(__dirname, 'Store.abi'), JSON.stringify(c.abi) + '\n');
console.log('solc', solc.version(), 'bytes', c.evm.bytecode.object.length / 2);
