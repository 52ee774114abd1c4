// Unit tests of the portal's own modules (web/static/assets), run in Node:
// they are plain ES modules with no browser-only code at import time.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keccak_256 } from '@noble/hashes/sha3.js';

import { keccak256 } from '../static/assets/keccak.js';
import { checksumAddress, selector, topic, bytesToHex, hexToBytes, utf8, wordUint } from '../static/assets/eth.js';
import { leafHashOf, rootFromInclusion, verifyConsistency, leafText } from '../static/assets/merkle.js';
import { parseProof, verifyProof, ROOT_AT } from '../static/assets/proof.js';
import { bundleResourceTexts } from '../static/assets/rawjson.js';
import { siweMessage, addChainParams } from '../static/assets/wallet.js';
import * as consent from '../static/assets/consent.js';
import { typedDataDigest, hashStruct } from './lib/devwallet.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const hex = (b) => Buffer.from(b).toString('hex');
// the independent Keccak-256 (noble), with strings hashed as UTF-8
const nk = (x) => keccak_256(typeof x === 'string' ? new TextEncoder().encode(x) : x);

describe('keccak256', () => {
  it('matches the known vectors', () => {
    assert.equal(hex(keccak256('')), 'c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470');
    assert.equal(hex(keccak256('abc')), '4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45');
    assert.equal(hex(keccak256('The quick brown fox jumps over the lazy dog')), '4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15');
    assert.equal(hex(keccak256('The quick brown fox jumps over the lazy dog.')), '578951e24efd62a3d63a86f7cd19aaa53c898fe287d2552133220370240b572d');
  });
  it('agrees with an independent implementation at every length around the rate', () => {
    for (let n = 0; n <= 600; n++) {
      const b = randomBytes(n);
      assert.equal(hex(keccak256(b)), hex(nk(b)), `length ${n}`);
    }
    const big = randomBytes(1 << 20);
    assert.equal(hex(keccak256(big)), hex(nk(big)));
  });
  it('hashes AuditAnchor\'s runtime code to the hash the gateway checks', () => {
    const code = readFileSync(join(repo, 'contracts/artifacts/AuditAnchor.bin-runtime'), 'utf8').trim().replace(/^0x/, '');
    assert.equal('0x' + hex(keccak256(Buffer.from(code, 'hex'))), '0x29ef576d446d56804aae26fec0a0379afb0b3f512ddb8b1acd38027aad96863a');
  });
});

describe('Ethereum encodings', () => {
  it('computes function selectors and event topics', () => {
    assert.equal(selector(ROOT_AT), '0xeaa38b41'); // docs/audit.md
    assert.equal(selector('transfer(address,uint256)'), '0xa9059cbb');
    assert.equal(selector('grant(bytes32,bytes32,uint64)'), '0x' + hex(nk('grant(bytes32,bytes32,uint64)')).slice(0, 8));
    assert.equal(topic('Transfer(address,address,uint256)'), '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef');
  });
  it('ConsentRegistry ABI names the functions and events the portal uses', () => {
    const abi = JSON.parse(readFileSync(join(repo, 'contracts/artifacts/ConsentRegistry.abi'), 'utf8'));
    const sig = (x) => `${x.name}(${x.inputs.map((i) => i.type).join(',')})`;
    const fns = abi.filter((x) => x.type === 'function').map(sig);
    for (const f of ['grant(bytes32,bytes32,uint64)', 'revoke(bytes32,bytes32)', 'nonces(address)']) assert.ok(fns.includes(f), f);
    const evs = abi.filter((x) => x.type === 'event').map(sig);
    assert.ok(evs.includes(consent.SIG_GRANTED) && evs.includes(consent.SIG_REVOKED));
    const granted = abi.find((x) => x.type === 'event' && x.name === 'ConsentGranted');
    assert.deepEqual(granted.inputs.map((i) => i.indexed), [true, true, true, false], 'patient, grantee, scope are topics; expiry is data');
    const anchorAbi = JSON.parse(readFileSync(join(repo, 'contracts/artifacts/AuditAnchor.abi'), 'utf8'));
    const rootAt = anchorAbi.find((x) => x.name === 'rootAt');
    assert.equal(sig(rootAt), ROOT_AT);
    assert.deepEqual(rootAt.outputs.map((o) => o.type), ['bytes32', 'uint64']);
  });
  it('EIP-55 checksums (the EIP\'s examples)', () => {
    for (const a of ['0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359',
      '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB', '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb']) {
      assert.equal(checksumAddress(a.toLowerCase()), a);
    }
  });
  it('encodes grant and revoke calldata', () => {
    const data = consent.grantCalldata('Practitioner/42', 'DiagnosticReport.rs', 2n ** 64n - 1n);
    assert.equal(data.length, 2 + 8 + 3 * 64);
    assert.equal(data.slice(0, 10), selector('grant(bytes32,bytes32,uint64)'));
    assert.equal(data.slice(10, 74), hex(nk('Practitioner/42')));
    assert.equal(data.slice(74, 138), hex(nk('DiagnosticReport.rs')));
    assert.equal(data.slice(138), '0'.repeat(48) + 'f'.repeat(16));
    const r = consent.revokeCalldata('Practitioner/42', 'DiagnosticReport.rs');
    assert.equal(r.length, 2 + 8 + 2 * 64);
    assert.throws(() => wordUint(-1n));
    assert.deepEqual([...hexToBytes('0x00ff10')], [0, 255, 16]);
    assert.equal(bytesToHex(Uint8Array.of(1, 2)), '0x0102');
  });
  it('builds EIP-712 typed data with the registry\'s own type strings', () => {
    const sol = readFileSync(join(repo, 'contracts/src/ConsentRegistry.sol'), 'utf8');
    const grantType = /"(Grant\([^"]+\))"/.exec(sol)[1];
    const revokeType = /"(Revoke\([^"]+\))"/.exec(sol)[1];
    const td = consent.typedData({ kind: 'Grant', chainId: 1337, registry: '0xe7f1725e7734ce288f8367e1bb143e90bb3f0512', patient: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', grantee: 'Practitioner/1', scope: 'DiagnosticReport.rs', expiry: 99999999999n, nonce: 0n, deadline: 1900000000 });
    const typeString = (name, fields) => `${name}(${fields.map((f) => `${f.type} ${f.name}`).join(',')})`;
    assert.equal(typeString('Grant', td.types.Grant), grantType);
    const rv = consent.typedData({ kind: 'Revoke', chainId: 1337, registry: '0xe7f1725e7734ce288f8367e1bb143e90bb3f0512', patient: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', grantee: 'Practitioner/1', scope: 'DiagnosticReport.rs', nonce: 3n, deadline: 1900000000 });
    assert.equal(typeString('Revoke', rv.types.Revoke), revokeType);
    assert.equal(rv.message.expiry, undefined);
    assert.equal(td.domain.verifyingContract, '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512');
    assert.equal(td.message.grantee, '0x' + hex(nk('Practitioner/1')));
    // The digest the contract checks: keccak256(0x1901 || domain separator || struct hash).
    const dom = nk(Buffer.concat([
      Buffer.from(nk('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)')),
      Buffer.from(nk('fhirgate ConsentRegistry')), Buffer.from(nk('1')),
      Buffer.from(BigInt(1337).toString(16).padStart(64, '0'), 'hex'),
      Buffer.from('e7f1725e7734ce288f8367e1bb143e90bb3f0512'.padStart(64, '0'), 'hex')]));
    assert.equal(hex(hashStruct(td.types, 'EIP712Domain', td.domain)), hex(dom));
    assert.equal(typedDataDigest(td).length, 32);
  });
  it('names scopes from their hashes and in plain words', () => {
    assert.equal(consent.scopeName(consent.scopeHash('DiagnosticReport.rs')), 'DiagnosticReport.rs');
    assert.equal(consent.scopeName(consent.scopeHash('*.cruds')), '*.cruds');
    assert.equal(consent.scopeName(consent.scopeHash('Nothing.rs')), '');
    assert.deepEqual(consent.scopeWords('DiagnosticReport.rs'), { what: 'Test reports', can: 'view' });
    assert.deepEqual(consent.scopeWords('Patient.crus'), { what: 'My personal details', can: 'view, add and edit' });
  });
  it('replays consent events into live grants', () => {
    const e = (kind, scope, block, expiry = 2n ** 64n - 1n) => ({ kind, patient: '0xA', grantee: '0xG', scopeHash: scope, scope, expiry, block, logIndex: 0 });
    const live = consent.liveGrants([e('granted', 'a', 1), e('granted', 'b', 2), e('revoked', 'a', 3), e('granted', 'c', 4, 10n)], 100);
    assert.deepEqual(live.map((g) => [g.scope, g.active]), [['b', true], ['c', false]]);
  });
  it('reads grants from projected Consent resources', () => {
    const c = { resourceType: 'Consent', status: 'active', patient: { reference: 'Patient/1' },
      provision: { actor: [{ reference: { reference: 'Practitioner/2' } }], action: [{ text: 'SMART DiagnosticReport.rs' }], period: { start: '2026-01-01T00:00:00Z' } },
      sourceReference: { identifier: { value: 'eip155:1337:0xabc' } } };
    const [g] = consent.grantsFromConsents([c, { ...c, status: 'inactive' }]);
    assert.equal(g.scope, 'DiagnosticReport.rs');
    assert.equal(g.granteeRef, 'Practitioner/2');
    assert.equal(g.grantee, consent.granteeHash('Practitioner/2'));
    assert.equal(g.txHash, '0xabc');
  });
});

describe('sign-in and wallet', () => {
  it('writes an EIP-4361 message', () => {
    const m = siweMessage({ domain: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080', address: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', chainId: 1337, nonce: 'abcdef12', issuedAt: '2026-01-01T00:00:00.000Z', expiration: '2026-01-01T01:00:00.000Z' });
    assert.equal(m, [
      '127.0.0.1:8080 wants you to sign in with your Ethereum account:',
      '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', '',
      'Sign in to fhirgate to see and manage your health records.', '',
      'URI: http://127.0.0.1:8080/', 'Version: 1', 'Chain ID: 1337', 'Nonce: abcdef12',
      'Issued At: 2026-01-01T00:00:00.000Z', 'Expiration Time: 2026-01-01T01:00:00.000Z'].join('\n'));
  });
  it('offers the chain to wallets with the gateway\'s values', () => {
    assert.deepEqual(addChainParams({ chainId: 1337, chainName: 'fhirgate dev chain', rpc: 'http://127.0.0.1:8545' }),
      { chainId: '0x539', chainName: 'fhirgate dev chain', nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: ['http://127.0.0.1:8545'] });
  });
});

// RFC 6962 reference: MTH, PATH and PROOF/SUBPROOF (section 2.1), written
// directly from the definitions, to test the verifiers.
const sha = (...parts) => createHash('sha256').update(Buffer.concat(parts)).digest();
const lh = (d) => sha(Buffer.of(0), d);
const k = (n) => { let x = 1; while (x * 2 < n) x *= 2; return x; };
function mth(leaves) {
  if (leaves.length === 0) return sha(Buffer.alloc(0));
  if (leaves.length === 1) return lh(leaves[0]);
  const s = k(leaves.length);
  return sha(Buffer.of(1), mth(leaves.slice(0, s)), mth(leaves.slice(s)));
}
function path(m, leaves) {
  const n = leaves.length;
  if (n === 1) return [];
  const s = k(n);
  return m < s ? [...path(m, leaves.slice(0, s)), mth(leaves.slice(s))] : [...path(m - s, leaves.slice(s)), mth(leaves.slice(0, s))];
}
function subproof(m, leaves, b) {
  const n = leaves.length;
  if (m === n) return b ? [] : [mth(leaves)];
  const s = k(n);
  return m <= s ? [...subproof(m, leaves.slice(0, s), b), mth(leaves.slice(s))] : [...subproof(m - s, leaves.slice(s), false), mth(leaves.slice(0, s))];
}

describe('Merkle proofs (RFC 6962 / 9162)', () => {
  const leaves = Array.from({ length: 40 }, (_, i) => Buffer.from(`leaf ${i}`));
  it('inclusion: every leaf of every tree up to 40', async () => {
    for (let n = 1; n <= 40; n++) {
      const root = mth(leaves.slice(0, n));
      for (let m = 0; m < n; m++) {
        const p = path(m, leaves.slice(0, n));
        const r = await rootFromInclusion(m, n, lh(leaves[m]), p);
        assert.equal(hex(r.root), hex(root), `leaf ${m} of ${n}`);
      }
    }
    await assert.rejects(rootFromInclusion(0, 4, lh(leaves[0]), path(0, leaves.slice(0, 4)).slice(1)), /too short/);
    await assert.rejects(rootFromInclusion(0, 2, lh(leaves[0]), [...path(0, leaves.slice(0, 2)), lh(leaves[1])]), /too long/);
  });
  it('consistency: every pair of sizes up to 40, and tampering is caught', async () => {
    for (let n = 1; n <= 40; n++) {
      for (let m = 1; m <= n; m++) {
        const p = m === n ? [] : subproof(m, leaves.slice(0, n), true);
        const r1 = mth(leaves.slice(0, m)), r2 = mth(leaves.slice(0, n));
        assert.equal(await verifyConsistency(m, n, p, r1, r2), '', `${m} -> ${n}`);
        if (m < n) {
          const bad = Buffer.from(r1); bad[0] ^= 1;
          assert.notEqual(await verifyConsistency(m, n, p, bad, r2), '', `tampered old root ${m} -> ${n}`);
          assert.notEqual(await verifyConsistency(m, n, p, r1, mth(leaves.slice(1, n + 1))), '', `other new tree ${m} -> ${n}`);
        }
      }
    }
  });
  it('checks the example proof of docs/audit.md', async () => {
    const proof = parseProof(readFileSync(join(repo, 'anchor/testdata/proof-example.json'), 'utf8'));
    const bytes = readFileSync(join(repo, 'anchor/testdata/proof-example-resource.json'));
    assert.equal(leafText(proof.leaf).split('\n')[1], 'Patient/p8/_history/1');
    assert.equal('0x' + hex(await leafHashOf(proof.leaf)), proof.leafHash);
    const r = await verifyProof(proof, { bytes });
    assert.deepEqual(r.steps.map((s) => [s.id, s.status]), [['record', 'ok'], ['leaf', 'ok'], ['inclusion', 'ok'], ['chain', 'skip']]);
    assert.ok(r.ok && !r.complete);
    const changed = Buffer.from(bytes); changed[changed.length - 2] ^= 1;
    assert.equal((await verifyProof(proof, { bytes: changed })).steps[0].status, 'fail');
    const p2 = structuredClone(proof); p2.leaf.salt = p2.leaf.salt.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    assert.equal((await verifyProof(p2, {})).steps[1].status, 'fail');
    const p3 = structuredClone(proof); p3.leafIndex += 1;
    assert.equal((await verifyProof(p3, {})).steps[2].status, 'fail');
    assert.throws(() => parseProof('{"format":"other"}'), /not a fhirgate proof/);
    assert.throws(() => parseProof('not json'), /not valid JSON/);
    assert.throws(() => parseProof({ ...proof, leaf: { ...proof.leaf, type: 'patient' } }), /leaf.type/);
  });
  it('checks a proof whose content is withheld (a regulator\'s, fhirgate-proof-v2)', async () => {
    const full = parseProof(readFileSync(join(repo, 'anchor/testdata/proof-example.json'), 'utf8'));
    const text = readFileSync(join(repo, 'anchor/testdata/proof-example-withheld.json'), 'utf8');
    assert.ok(!/salt|sha256/.test(text), 'no salt or content hash in the withheld proof');
    const proof = parseProof(text);
    const bytes = readFileSync(join(repo, 'anchor/testdata/proof-example-resource.json'));
    const r = await verifyProof(proof, { bytes });
    assert.deepEqual(r.steps.map((s) => [s.id, s.status]), [['record', 'skip'], ['leaf', 'skip'], ['inclusion', 'ok'], ['chain', 'skip']]);
    assert.ok(r.ok && !r.complete);
    const p2 = structuredClone(proof); p2.leafHash = full.inclusion[0];
    assert.equal((await verifyProof(p2, {})).steps[2].status, 'fail');
    assert.throws(() => parseProof({ ...proof, format: 'fhirgate-proof-v1' }), /only a fhirgate-proof-v2/);
    assert.throws(() => parseProof({ ...proof, leaf: { ...proof.leaf, salt: full.leaf.salt } }), /withheld/);
    assert.throws(() => parseProof({ ...full, leaf: { ...full.leaf, sha256: undefined } }), /leaf.sha256/);
    // a full proof may say v2 too
    assert.ok((await verifyProof(parseProof({ ...full, format: 'fhirgate-proof-v2' }), { bytes })).ok);
  });
});

describe('raw JSON scanner', () => {
  it('returns the exact text of each bundle entry\'s resource', () => {
    const r1 = '{"resourceType":"AuditEvent","id":"a","x":"quote \\" brace } and \\u00e9 é","n":[1,2.50,-3e2,{"t":true,"f":false,"z":null}]}';
    const r2 = '{"resourceType":"AuditEvent","id":"b","e":{},"a":[]}';
    const text = `{"resourceType":"Bundle","type":"searchset","entry":[ {"fullUrl":"x","resource":${r1},"search":{"mode":"match"}} ,\n{"resource": ${r2}},{"search":{"mode":"outcome"}}],"link":[]}`;
    assert.deepEqual(bundleResourceTexts(text), [r1, r2, '']);
    assert.deepEqual(bundleResourceTexts('{"resourceType":"Bundle"}'), []);
  });
});

describe('registration words', () => {
  // Every refusal of the registration API the portal can meet, in the
  // sentence it shows (ApiError as api.js builds it: status, friendly, detail).
  it('says each refusal in plain words', async () => {
    const { refusal } = await import('../static/assets/register.js');
    const { ApiError } = await import('../static/assets/api.js');
    const cases = [
      ['submit', 409, 'you already have a request waiting; withdraw it first', /^You already have a request waiting\. Withdraw it first/],
      ['submit', 403, 'this wallet is already linked to a record: sign in again to use it, or ask the clinic if you think this is wrong', /^This wallet is already linked to a record/],
      ['submit', 429, 'This wallet has made 20 registration requests, the most one wallet may make.', /too many registration requests\. Ask the clinic/],
      ['submit', 429, 'The clinic has too many registration requests waiting to be checked.', /^The clinic has too many requests waiting/],
      ['verify', 409, 'this wallet is already linked to another record: a wallet speaks for one person only', /^This person's wallet is already linked to another record/],
      ['verify', 409, 'the registration request is being changed by someone else; try again', /^Someone else is changing this request/],
      ['verify', 422, 'there is no such Practitioner record', /^That practitioner's record no longer exists/],
      ['submit', 400, 'name.family: at most 100 characters', /^Some of the information could not be accepted: name\.family: at most 100 characters\. Correct it/],
      ['withdraw', 403, 'not your request', /^Only the person who sent a request can withdraw it\.$/],
      ['verify', 422, "no single record with that number and birth date: check the number in the clinic's own files", /^No single record has that record number and the birth date in the request\./],
      ['verify', 409, 'this record is already linked to another wallet; if that wallet was lost, verify again with replaceWallet set to replace it', /already linked to another wallet\. If the person lost that wallet/],
      ['reject', 409, 'this request was verified already; it cannot be rejected now', /^This request was already handled/],
      ['verify', 409, 'this request was verified in another way; reload it', /^This request was already handled/],
      ['verify', 403, 'administrators only', /^Only an administrator of this gateway may do this\.$/],
      ['list', 404, 'not found', /^This request or record was not found/],
      ['deactivate', 401, 'your session has ended: ...', /^Your session has ended\. Please sign in again\.$/],
    ];
    for (const [action, status, detail, want] of cases) {
      const got = refusal(new ApiError(status, 'generic words', detail), action);
      assert.match(got, want, `${action} ${status}`);
      assert.doesNotMatch(got, /OperationOutcome|\bHTTP\b|undefined/, `${action} ${status}: plain words`);
    }
  });

  it('says a request\'s state, with one full stop after the administrator\'s reason', async () => {
    const { statusWords } = await import('../static/assets/register.js');
    assert.equal(statusWords({ status: 'pending' })[2], 'Waiting for the clinic to check your details.');
    assert.equal(statusWords({ status: 'verified' })[2], 'Verified: sign in again to start.');
    assert.equal(statusWords({ status: 'withdrawn' })[2], 'Withdrawn.');
    assert.equal(statusWords({ status: 'rejected', reason: 'Not in our files. Please call.' })[2], 'Not accepted: Not in our files. Please call.');
    assert.equal(statusWords({ status: 'rejected', reason: 'Not in our files' })[2], 'Not accepted: Not in our files.');
    assert.equal(statusWords({ status: 'rejected' })[2], 'Not accepted: no reason was given.');
  });
});
