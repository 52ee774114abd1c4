// Recomputes the golden vectors of consentsig_test.go without go-ethereum:
// keccak256 from js-sha3 (installed with solc) and abi.encode by hand.
//   cd contracts && npm ci && node consentsig/testdata/vectors.mjs
import { createRequire } from "node:module";

const { keccak256 } = createRequire(import.meta.url)("../../node_modules/js-sha3");
const word = (hex) => hex.replace(/^0x/, "").toLowerCase().padStart(64, "0");
const uint = (x) => BigInt(x).toString(16).padStart(64, "0");
const hash = (hex) => keccak256(Buffer.from(hex, "hex"));

for (const s of ["Practitioner/123", "client/ehr-1", "DiagnosticReport.rs", "*.rs"]) {
  console.log(`${s}\t0x${keccak256(s)}`);
}

const registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const patient = "0x1111111111111111111111111111111111111111";
const domain = hash(
  keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)") +
    keccak256("fhirgate ConsentRegistry") + keccak256("1") + uint(1337) + word(registry),
);
const grant = hash(
  keccak256("Grant(address patient,bytes32 grantee,bytes32 scope,uint64 expiry,uint256 nonce,uint256 deadline)") +
    word(patient) + keccak256("Practitioner/123") + keccak256("DiagnosticReport.rs") +
    uint(1767225600) + uint(7) + uint(1767229200),
);
const revoke = hash(
  keccak256("Revoke(address patient,bytes32 grantee,bytes32 scope,uint256 nonce,uint256 deadline)") +
    word(patient) + keccak256("Practitioner/123") + keccak256("DiagnosticReport.rs") +
    uint(8) + uint(1767229200),
);
console.log(`domain separator\t0x${domain}`);
console.log(`grant digest\t0x${hash("1901" + domain + grant)}`);
console.log(`revoke digest\t0x${hash("1901" + domain + revoke)}`);
