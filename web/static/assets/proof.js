// Checks a fhirgate proof (docs/audit.md) step by step, in the browser:
// record bytes -> leaf -> inclusion path -> checkpoint root -> the root the
// AuditAnchor contract holds on chain (eth_call rootAt on a node the
// caller chooses) -> the anchoring transaction and block. A
// fhirgate-proof-v2 with contentWithheld (issued to someone who may not
// read the record, such as a regulator) has no salt and content hash: the
// first two steps are skipped and the path is checked from its leaf hash.
import { bytesToHex, hexToBytes, keccakHex, encodeCall, wordUint, words, RPC } from './eth.js';
import { sha256, leafHashOf, rootFromInclusion, equalBytes, checkLeafFields } from './merkle.js';

/** keccak256 of AuditAnchor's runtime bytecode (contracts/artifacts/AuditAnchor.bin-runtime); a Go test checks it. */
export const AUDIT_ANCHOR_CODE_HASH = '0x29ef576d446d56804aae26fec0a0379afb0b3f512ddb8b1acd38027aad96863a';

export const ROOT_AT = 'rootAt(uint64)';

const hex32 = (x) => typeof x === 'string' && /^0x[0-9a-fA-F]{64}$/.test(x);

/** parseProof checks the shape of a proof; throws with a readable message. */
export function parseProof(input) {
  let p = input;
  if (typeof input === 'string') {
    try { p = JSON.parse(input); } catch { throw new Error('This is not valid JSON. Paste the whole proof, from { to }.'); }
  }
  if (!p || typeof p !== 'object') throw new Error('This is not a proof.');
  if (p.format !== 'fhirgate-proof-v1' && p.format !== 'fhirgate-proof-v2') {
    throw new Error('This is not a fhirgate proof (format must be "fhirgate-proof-v1" or "fhirgate-proof-v2").');
  }
  if (p.contentWithheld !== undefined && typeof p.contentWithheld !== 'boolean') throw new Error('The proof is malformed: contentWithheld must be true or false.');
  if (p.contentWithheld && p.format !== 'fhirgate-proof-v2') throw new Error('The proof is malformed: only a fhirgate-proof-v2 may withhold the content hash.');
  const bad = checkLeafFields(p.leaf, { withheld: !!p.contentWithheld });
  if (bad) throw new Error(`The proof is malformed: ${bad}.`);
  if (!hex32(p.leafHash)) throw new Error('The proof is malformed: leafHash is not a 32-byte hash.');
  if (!Number.isSafeInteger(p.leafIndex) || !Number.isSafeInteger(p.treeSize) || p.leafIndex < 0 || p.leafIndex >= p.treeSize) {
    throw new Error('The proof is malformed: leafIndex must be inside treeSize.');
  }
  if (!Array.isArray(p.inclusion) || !p.inclusion.every(hex32)) throw new Error('The proof is malformed: inclusion must be a list of 32-byte hashes.');
  const c = p.checkpoint;
  if (!c || !hex32(c.root) || !Number.isSafeInteger(c.treeSize) || !Number.isSafeInteger(c.chainId) || !/^0x[0-9a-fA-F]{40}$/.test(c.contract || '')) {
    throw new Error('The proof is malformed: the checkpoint needs treeSize, root, chainId and contract.');
  }
  return p;
}

/**
 * verifyProof runs every check and returns {ok, complete, steps}: each step
 * {id, title, status: ok | fail | skip | warn, detail, facts: [[label, value]]}.
 * opts: bytes (Uint8Array of the record as served, optional), rpcUrl (or
 * rpc: an RPC), expectedContract, expectedChainId.
 */
export async function verifyProof(proof, opts = {}) {
  const steps = [];
  const add = (s) => { steps.push(s); return s; };
  const p = proof;
  const ref = `${p.leaf.type}/${p.leaf.id}/_history/${p.leaf.versionId}`;

  // 1. the record's bytes
  if (p.contentWithheld) {
    add({ id: 'record', title: 'Record content', status: 'skip', detail: 'This proof withholds the record\'s hash (it was issued to someone who may not read the record): record bytes cannot be compared with it. Whoever may read the record can fetch the full proof.', facts: [] });
  } else if (opts.bytes) {
    const d = bytesToHex(await sha256(opts.bytes)).slice(2);
    add(d === p.leaf.sha256
      ? { id: 'record', title: 'Record content', status: 'ok', detail: `The SHA-256 of the record (${opts.bytes.length} bytes) is the one in the log.`, facts: [['SHA-256', d]] }
      : { id: 'record', title: 'Record content', status: 'fail', detail: 'The record differs from the version that was logged: it was changed after it was written.', facts: [['SHA-256 of these bytes', d], ['SHA-256 in the log', p.leaf.sha256]] });
  } else {
    add({ id: 'record', title: 'Record content', status: 'skip', detail: 'No record bytes given: the record itself was not compared (the rest of the proof is still checked).', facts: [['SHA-256 in the log', p.leaf.sha256]] });
  }

  // 2. the leaf
  const claimed = hexToBytes(p.leafHash);
  const lh = p.contentWithheld ? null : await leafHashOf(p.leaf);
  add(p.contentWithheld
    ? { id: 'leaf', title: 'Log entry', status: 'skip', detail: `The entry's salt and content hash are withheld, so its hash cannot be recomputed here: that this entry is ${ref} is the gateway's statement. The steps below prove that the leaf hash itself is in the anchored log.`, facts: [['Version (as stated)', ref], ['Leaf hash', p.leafHash]] }
    : equalBytes(lh, claimed)
    ? { id: 'leaf', title: 'Log entry', status: 'ok', detail: `The entry names ${ref} and hashes to the leaf hash.`, facts: [['Version', ref], ['Salt', p.leaf.salt], ['Leaf hash', bytesToHex(lh)]] }
    : { id: 'leaf', title: 'Log entry', status: 'fail', detail: 'The entry does not hash to the leaf hash in the proof: the proof was altered.', facts: [['Recomputed', bytesToHex(lh)], ['In the proof', p.leafHash]] });

  // 3. the inclusion path
  let root = null;
  try {
    if (p.treeSize !== p.checkpoint.treeSize) throw new Error('the path is for another tree size than the checkpoint');
    const r = await rootFromInclusion(p.leafIndex, p.treeSize, claimed, p.inclusion.map(hexToBytes));
    root = r.root;
    const ok = equalBytes(root, hexToBytes(p.checkpoint.root));
    add({
      id: 'inclusion', title: 'Inclusion path', status: ok ? 'ok' : 'fail',
      detail: ok
        ? `Entry ${p.leafIndex} of ${p.treeSize}: ${p.inclusion.length} hashing steps lead to the checkpoint root.`
        : 'The path does not lead to the checkpoint root: the entry is not in that log, or the proof was altered.',
      facts: [['Position', `${p.leafIndex} of ${p.treeSize}`], ...r.steps.map((s, i) => [`After step ${i + 1} (sibling on the ${s.side})`, bytesToHex(s.result)]), ['Checkpoint root', p.checkpoint.root]],
    });
  } catch (e) {
    add({ id: 'inclusion', title: 'Inclusion path', status: 'fail', detail: `The inclusion path is invalid: ${e.message}.`, facts: [] });
  }

  // 4. the chain
  const rpc = opts.rpc || (opts.rpcUrl ? new RPC(opts.rpcUrl) : null);
  const c = p.checkpoint;
  if (!rpc) {
    add({ id: 'chain', title: 'Anchored on Ethereum', status: 'skip', detail: 'No Ethereum node given: the root was not compared with the chain.', facts: [] });
  } else {
    add(await checkChain(rpc, c, opts));
    add(await checkTransaction(rpc, c));
  }
  const failed = steps.some((s) => s.status === 'fail');
  const complete = !failed && steps.every((s) => s.status === 'ok' || s.status === 'warn' || s.id === 'tx');
  return { ok: !failed, complete, steps };
}

/** rootAt asks a node for the root AuditAnchor holds for treeSize: {root, timestamp}. */
export async function rootAt(rpc, contract, treeSize) {
  const out = await rpc.call('eth_call', [{ to: contract, data: encodeCall(ROOT_AT, wordUint(treeSize)) }, 'latest']);
  const w = words(out);
  if (w.length < 2) throw new Error('the contract gave no answer to rootAt');
  return { root: '0x' + w[0], timestamp: Number(BigInt('0x' + w[1])) };
}

async function checkChain(rpc, c, opts) {
  const title = 'Anchored on Ethereum';
  const facts = [['Contract', c.contract], ['Chain', String(c.chainId)], ['Tree size', String(c.treeSize)]];
  try {
    if (opts.expectedContract && opts.expectedContract.toLowerCase() !== c.contract.toLowerCase()) {
      return { id: 'chain', title, status: 'fail', detail: `The proof names an unexpected contract (${c.contract}); the gateway's AuditAnchor is ${opts.expectedContract}.`, facts };
    }
    const chainId = parseInt(await rpc.call('eth_chainId', []), 16);
    if (chainId !== c.chainId) {
      return { id: 'chain', title, status: 'fail', detail: `The node is on chain ${chainId}, the proof is for chain ${c.chainId}. Choose a node of chain ${c.chainId}.`, facts };
    }
    const code = await rpc.call('eth_getCode', [c.contract, 'latest']);
    const codeHash = code && code !== '0x' ? keccakHex(hexToBytes(code)) : '';
    if (codeHash !== AUDIT_ANCHOR_CODE_HASH) {
      return { id: 'chain', title, status: 'fail', detail: codeHash ? 'The contract named by the proof is not an AuditAnchor (its code differs).' : 'There is no contract at the address the proof names on this chain.', facts: [...facts, ['Code hash', codeHash || 'none']] };
    }
    const { root, timestamp } = await rootAt(rpc, c.contract, c.treeSize);
    facts.push(['rootAt(' + c.treeSize + ')', root]);
    if (/^0x0{64}$/.test(root)) {
      return { id: 'chain', title, status: 'fail', detail: `No root is anchored on chain for tree size ${c.treeSize}.`, facts };
    }
    if (root.toLowerCase() !== c.root.toLowerCase()) {
      return { id: 'chain', title, status: 'fail', detail: 'The root anchored on chain differs from the proof\'s checkpoint root: the proof does not match the public record.', facts: [...facts, ['Proof root', c.root]] };
    }
    facts.push(['Anchored at', new Date(timestamp * 1000).toISOString()]);
    return { id: 'chain', title, status: 'ok', detail: `The AuditAnchor contract holds this root for tree size ${c.treeSize} (asked the node directly with eth_call rootAt).`, facts, timestamp };
  } catch (e) {
    return { id: 'chain', title, status: 'fail', detail: `The Ethereum node could not be asked: ${e.message}.`, facts };
  }
}

async function checkTransaction(rpc, c) {
  const title = 'Anchoring transaction';
  if (!hex32(c.txHash)) return { id: 'tx', title, status: 'skip', detail: 'The proof names no transaction.', facts: [] };
  const facts = [['Transaction', c.txHash], ['Block (in the proof)', String(c.blockNumber)]];
  try {
    const rc = await rpc.call('eth_getTransactionReceipt', [c.txHash]);
    if (!rc) return { id: 'tx', title, status: 'warn', detail: 'The node does not know this transaction (after a chain reorganisation the root may have been anchored again in another one; rootAt above is what counts).', facts };
    const block = parseInt(rc.blockNumber, 16);
    const b = await rpc.call('eth_getBlockByNumber', [rc.blockNumber, false]);
    facts.push(['Block (on chain)', String(block)]);
    if (b) facts.push(['Block time', new Date(parseInt(b.timestamp, 16) * 1000).toISOString()]);
    if (rc.status !== '0x1') return { id: 'tx', title, status: 'warn', detail: 'This transaction failed on chain; the root was anchored by another one (rootAt above is what counts).', facts };
    if (block !== c.blockNumber) return { id: 'tx', title, status: 'warn', detail: `The transaction is in block ${block}, not ${c.blockNumber} (re-mined after a reorganisation); rootAt above is what counts.`, facts };
    return { id: 'tx', title, status: 'ok', detail: `Mined successfully in block ${block}.`, facts };
  } catch (e) {
    return { id: 'tx', title, status: 'warn', detail: `The transaction could not be looked up: ${e.message}.`, facts };
  }
}
