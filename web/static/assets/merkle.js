// RFC 6962 / RFC 9162 Merkle tree verification with Web Crypto SHA-256:
// leaf hashes, inclusion proofs (RFC 9162 section 2.1.3.2) and
// consistency proofs (section 2.1.4.2). Hashes are Uint8Arrays.
import { concatBytes, utf8 } from './eth.js';

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

export const leafHash = (data) => sha256(concatBytes(Uint8Array.of(0), data));
export const nodeHash = (l, r) => sha256(concatBytes(Uint8Array.of(1), l, r));

export function equalBytes(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** leafText is the fhirgate-leaf-v1 text of a proof's leaf (docs/audit.md section 1). */
export function leafText(leaf) {
  return `fhirgate-leaf-v1\n${leaf.type}/${leaf.id}/_history/${leaf.versionId}\n${leaf.salt}\n${leaf.sha256}`;
}

/**
 * checkLeafFields refuses anything the leaf format does not allow; returns an error text or "".
 * withheld: the proof withholds the salt and content hash (fhirgate-proof-v2), which must then be absent.
 */
export function checkLeafFields(leaf, { withheld = false } = {}) {
  if (!leaf || typeof leaf !== 'object') return 'the proof has no leaf';
  if (!/^[A-Z][A-Za-z]{0,63}$/.test(leaf.type || '')) return 'leaf.type is not a FHIR resource type';
  if (!/^[A-Za-z0-9\-.]{1,64}$/.test(leaf.id || '')) return 'leaf.id is not a FHIR id';
  if (!/^[1-9][0-9]*$/.test(leaf.versionId || '')) return 'leaf.versionId is not a version number';
  if (withheld) {
    if (leaf.salt !== undefined || leaf.sha256 !== undefined) return 'the content is withheld, yet the leaf has a salt or sha256';
    return '';
  }
  if (!/^[0-9a-f]{64}$/.test(leaf.salt || '')) return 'leaf.salt is not 64 lowercase hex digits';
  if (!/^[0-9a-f]{64}$/.test(leaf.sha256 || '')) return 'leaf.sha256 is not 64 lowercase hex digits';
  return '';
}

export const leafHashOf = (leaf) => leafHash(utf8(leafText(leaf)));

/**
 * rootFromInclusion returns the root an inclusion path leads to, with each
 * step for display ({level, side, sibling, result}); throws when the path
 * has the wrong length for (index, size).
 */
export async function rootFromInclusion(index, size, leaf, path) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size)) || index < 0 || index >= size) {
    throw new Error('the leaf index is outside the tree');
  }
  let fn = index, sn = size - 1, r = leaf;
  const steps = [];
  for (const p of path) {
    if (sn === 0) throw new Error('the inclusion path is too long');
    let side;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      side = 'left';
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await nodeHash(r, p);
      side = 'right';
    }
    steps.push({ side, sibling: p, result: r });
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('the inclusion path is too short');
  return { root: r, steps };
}

/**
 * verifyConsistency checks an RFC 9162 consistency proof between trees of
 * size1 and size2 with roots root1 and root2; returns "" or an error text.
 */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  if (size1 > size2) return 'the older checkpoint is larger than the newer one';
  if (size1 === size2) return proof.length === 0 && equalBytes(root1, root2) ? '' : 'same size, different roots';
  if (size1 === 0) return proof.length === 0 ? '' : 'a proof from the empty tree must be empty';
  if (proof.length === 0) return 'the consistency proof is empty';
  let path = proof.slice();
  // If size1 is an exact power of two, prepend root1.
  if (isPow2(size1)) path = [root1, ...path];
  let fn = size1 - 1, sn = size2 - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return 'the consistency proof is too long';
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return 'the consistency proof is too short';
  if (!equalBytes(fr, root1)) return 'the proof does not rebuild the older root: history was rewritten';
  if (!equalBytes(sr, root2)) return 'the proof does not rebuild the newer root';
  return '';
}

function isPow2(n) {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
}
