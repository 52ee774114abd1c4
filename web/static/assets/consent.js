// Consent on chain: the ConsentRegistry encoding (grantee and scope
// hashes), direct grant/revoke transactions, EIP-712 typed data for
// gas-free grants relayed by the gateway, and reading grants back: from
// the chain's events when its JSON-RPC is reachable, else from the
// gateway's projected FHIR Consent resources.
import { keccakHex, utf8, encodeCall, wordBytes32, wordUint, wordAddress, words, topic, RPC, MAX_UINT64, checksumAddress } from './eth.js';
import { request, wellKnown, ApiError } from './api.js';
import { provider } from './wallet.js';

/** The identifier system of the gateway's projected Consents (consent.RegistrySystem). */
export const REGISTRY_SYSTEM = 'urn:fhirgate:consent-registry';

/** Record kinds a patient may share, in plain words. */
export const SHAREABLE = [
  { type: 'DiagnosticReport', label: 'Test reports' },
  { type: 'Observation', label: 'Test results and measurements' },
  { type: 'Appointment', label: 'Appointments' },
  { type: 'Condition', label: 'Conditions and diagnoses' },
  { type: 'MedicationRequest', label: 'Prescriptions' },
  { type: 'Patient', label: 'My personal details' },
];

/** Access levels: SMART v2 permission letters in the order cruds. */
export const LEVELS = [
  { perms: 'rs', label: 'View' },
  { perms: 'crus', label: 'View and edit' },
];

export const typeLabel = (t) => (t === '*' ? 'All my records' : SHAREABLE.find((s) => s.type === t)?.label || t);

export function scopeWords(scope) {
  const [t, p = ''] = scope.split('.');
  const can = [];
  if (/[rs]/.test(p)) can.push('view');
  if (/[cu]/.test(p)) can.push(p.includes('c') && p.includes('u') ? 'add and edit' : p.includes('c') ? 'add' : 'edit');
  if (p.includes('d')) can.push('delete');
  return { what: typeLabel(t), can: can.join(', ') || p };
}

export const granteeHash = (ref) => keccakHex(utf8(ref));
export const scopeHash = (scope) => keccakHex(utf8(scope));

// Every permission string in the order cruds (31 of them).
const PERM_SETS = [];
for (let bits = 1; bits < 32; bits++) PERM_SETS.push([...'cruds'].filter((_, i) => bits & (1 << i)).join(''));

let scopeTable;
/** scopeName returns the scope string of a scope hash, for the record kinds the portal knows. */
export function scopeName(hash) {
  if (!scopeTable) {
    scopeTable = new Map();
    for (const t of ['*', ...SHAREABLE.map((s) => s.type)]) for (const p of PERM_SETS) scopeTable.set(scopeHash(`${t}.${p}`), `${t}.${p}`);
  }
  return scopeTable.get(hash.toLowerCase()) || '';
}

export const SIG_GRANTED = 'ConsentGranted(address,bytes32,bytes32,uint64)';
export const SIG_REVOKED = 'ConsentRevoked(address,bytes32,bytes32)';

/** chainRPC is the gateway's chain: its public JSON-RPC URL, or the wallet when none is published. */
export async function chainRPC() {
  const info = await wellKnown();
  if (info.rpc) return new RPC(info.rpc);
  if (provider()) return new RPC(provider());
  throw new Error('no way to reach the chain');
}

export async function registry() {
  const info = await wellKnown();
  const a = info.contracts?.ConsentRegistry;
  if (!a) throw new Error('this gateway publishes no ConsentRegistry');
  return { address: a, chainId: Number(info.chainId) };
}

export const grantCalldata = (grantee, scope, expiry) =>
  encodeCall('grant(bytes32,bytes32,uint64)', wordBytes32(granteeHash(grantee)), wordBytes32(scopeHash(scope)), wordUint(expiry));
export const revokeCalldata = (grantee, scope) =>
  encodeCall('revoke(bytes32,bytes32)', wordBytes32(granteeHash(grantee)), wordBytes32(scopeHash(scope)));

export async function chainNonce(rpc, reg, patient) {
  const out = await rpc.call('eth_call', [{ to: reg, data: encodeCall('nonces(address)', wordAddress(patient)) }, 'latest']);
  return BigInt('0x' + (words(out)[0] || '0'));
}

const DOMAIN_TYPE = [
  { name: 'name', type: 'string' },
  { name: 'version', type: 'string' },
  { name: 'chainId', type: 'uint256' },
  { name: 'verifyingContract', type: 'address' },
];
const GRANT_TYPE = [
  { name: 'patient', type: 'address' },
  { name: 'grantee', type: 'bytes32' },
  { name: 'scope', type: 'bytes32' },
  { name: 'expiry', type: 'uint64' },
  { name: 'nonce', type: 'uint256' },
  { name: 'deadline', type: 'uint256' },
];
const REVOKE_TYPE = GRANT_TYPE.filter((f) => f.name !== 'expiry');

/** typedData is the EIP-712 message (eth_signTypedData_v4) of a grant or revocation. */
export function typedData({ kind, chainId, registry: reg, patient, grantee, scope, expiry, nonce, deadline }) {
  const message = {
    patient: checksumAddress(patient),
    grantee: granteeHash(grantee),
    scope: scopeHash(scope),
  };
  if (kind === 'Grant') message.expiry = String(expiry);
  message.nonce = String(nonce);
  message.deadline = String(deadline);
  return {
    types: { EIP712Domain: DOMAIN_TYPE, [kind]: kind === 'Grant' ? GRANT_TYPE : REVOKE_TYPE },
    primaryType: kind,
    domain: { name: 'fhirgate ConsentRegistry', version: '1', chainId, verifyingContract: checksumAddress(reg) },
    message,
  };
}

/** Relay (POST /consent/relay): whether the gateway offers it, submit, status. */
let relayProbe;
export function relayAvailable(token) {
  if (!relayProbe) {
    // An empty request: a gateway with the relay refuses it in its own JSON ({code, error}).
    relayProbe = request('/consent/relay', { method: 'POST', body: {}, contentType: 'application/json', token, raw: true })
      .then((r) => {
        if (r.status === 404 || r.status === 405) return false;
        try { return typeof JSON.parse(r.text).code === 'string' || r.status < 300; } catch { return false; }
      })
      .catch(() => false);
  }
  return relayProbe;
}

const RELAY_WORDS = {
  'wrong-chain': 'The signature was made for another network. Switch your wallet to the gateway\'s network and try again.',
  'wrong-registry': 'The signature was made for another consent registry. Reload the page and try again.',
  'bad-signature': 'Your wallet\'s signature could not be read. Please try again.',
  'wrong-signer': 'The signature does not match your wallet. Make sure the wallet you signed in with is selected and try again.',
  deadline: 'The signature was too old when it arrived. Please sign again.',
  expiry: 'The end date must be in the future.',
  nonce: 'Another change was being processed at the same time. Please try again.',
  'unknown-scope': 'This kind of record cannot be shared this way.',
  'unknown-grantee': 'The gateway does not know this practitioner.',
  'no-such-grant': 'There is no such permission to withdraw (it may already have been withdrawn).',
  'unknown-patient': 'This wallet is not linked to a patient record on this gateway.',
  busy: 'Several of your changes are still on their way. Wait a few seconds and try again.',
  zero: 'The change is incomplete. Reload the page and try again.',
  forbidden: 'Sign in again with the wallet that signs the change.',
  unavailable: 'The network cannot be reached right now. Try again in a moment.',
};

export async function relaySubmit(typed, signature, token) {
  try {
    return await request('/consent/relay', {
      method: 'POST',
      contentType: 'application/json',
      token,
      body: { types: typed.types, primaryType: typed.primaryType, domain: typed.domain, message: typed.message, signature },
    });
  } catch (e) {
    if (e instanceof ApiError && e.body && typeof e.body.code === 'string') {
      const err = new ApiError(e.status, RELAY_WORDS[e.body.code] || 'The gateway could not send your change. Please try again.', e.body.error || e.body.code, e.body);
      err.code = e.body.code;
      throw err;
    }
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
      throw new ApiError(e.status, 'Gas-free changes are not available on this gateway. Use "From my wallet" instead.', 'no relay');
    }
    throw e;
  }
}

export const relayStatus = (txHash, token) => request(`/consent/relay/${txHash}`, { token, contentType: 'application/json' });

/** receipt polls the chain for a transaction's receipt (null until mined). */
export async function receipt(rpc, txHash) {
  return rpc.call('eth_getTransactionReceipt', [txHash]);
}

const pad32 = (addr) => '0x' + wordAddress(addr);

/** consentLogs returns the ConsentGranted/Revoked events, filtered by patient wallet or grantee reference, oldest first. */
export async function consentLogs(rpc, reg, { patient, grantee }) {
  const topics = [[topic(SIG_GRANTED), topic(SIG_REVOKED)], patient ? pad32(patient) : null, grantee ? granteeHash(grantee) : null];
  // From the registry's deployment block: nodes refuse unbounded ranges.
  const info = await wellKnown();
  const from = Number(info.deployBlocks?.ConsentRegistry || 0);
  const logs = await rpc.call('eth_getLogs', [{ address: reg, fromBlock: '0x' + from.toString(16), toBlock: 'latest', topics }]);
  const granted = topic(SIG_GRANTED);
  return logs
    .filter((l) => !l.removed)
    .map((l) => ({
      kind: l.topics[0] === granted ? 'granted' : 'revoked',
      patient: checksumAddress('0x' + l.topics[1].slice(26)),
      grantee: l.topics[2],
      scopeHash: l.topics[3],
      scope: scopeName(l.topics[3]),
      expiry: l.topics[0] === granted ? BigInt('0x' + words(l.data)[0]) : 0n,
      txHash: l.transactionHash,
      block: parseInt(l.blockNumber, 16),
      logIndex: parseInt(l.logIndex, 16),
    }))
    .sort((a, b) => a.block - b.block || a.logIndex - b.logIndex);
}

/** liveGrants replays events into the grants now on record (expired ones included, marked). */
export function liveGrants(events, nowSec = Math.floor(Date.now() / 1000)) {
  const m = new Map();
  for (const e of events) {
    const k = `${e.patient}|${e.grantee}|${e.scopeHash}`;
    if (e.kind === 'granted') m.set(k, { ...e, active: e.expiry > BigInt(nowSec) });
    else m.delete(k);
  }
  return [...m.values()];
}

/** blockTimes fetches the timestamps of blocks (unix seconds), by number. */
export async function blockTimes(rpc, numbers) {
  const out = new Map();
  await Promise.all([...new Set(numbers)].map(async (n) => {
    const b = await rpc.call('eth_getBlockByNumber', ['0x' + n.toString(16), false]);
    if (b) out.set(n, parseInt(b.timestamp, 16));
  }));
  return out;
}

/** grantsFromConsents reads grants from projected FHIR Consent resources (when the chain is not reachable). */
export function grantsFromConsents(consents) {
  const out = [];
  for (const c of consents) {
    const actor = c.provision?.actor?.[0]?.reference;
    const text = (c.provision?.action || []).map((a) => a.text || '').find((t) => t.startsWith('SMART ')) || '';
    const scope = text.slice(6);
    if (!actor?.reference || !scope) continue;
    const end = c.provision?.period?.end;
    out.push({
      grantee: granteeHash(actor.reference),
      granteeRef: actor.reference,
      scope,
      scopeHash: scopeHash(scope),
      expiry: end ? BigInt(Math.floor(Date.parse(end) / 1000)) : MAX_UINT64,
      active: c.status === 'active',
      txHash: (c.sourceReference?.identifier?.value || '').split(':').pop(),
      patientRef: c.patient?.reference,
      source: 'consent',
    });
  }
  return out.filter((g) => g.active);
}
