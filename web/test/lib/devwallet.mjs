// A test-only EIP-1193 wallet backed by a dev-chain private key, for
// Playwright: the page's window.ethereum forwards every request to
// DevWallet.request in Node (exposeFunction), which signs with
// @noble/secp256k1 and forwards reads and raw transactions to the chain's
// JSON-RPC. MetaMask cannot be installed in headless CI; this stands in
// for it with the same methods and error codes (EIP-1193, EIP-3085,
// EIP-3326).
import { createHash, createHmac } from 'node:crypto';
import * as secp from '@noble/secp256k1';
import { keccak_256 } from '@noble/hashes/sha3.js';

secp.hashes.sha256 = (m) => new Uint8Array(createHash('sha256').update(m).digest());
secp.hashes.hmacSha256 = (k, m) => new Uint8Array(createHmac('sha256', k).update(m).digest());

export const hex = (b) => '0x' + Buffer.from(b).toString('hex');
export const unhex = (h) => new Uint8Array(Buffer.from(h.replace(/^0x/, ''), 'hex'));
const concat = (...a) => { const o = new Uint8Array(a.reduce((n, x) => n + x.length, 0)); let i = 0; for (const x of a) { o.set(x, i); i += x.length; } return o; };
export const keccak = (b) => keccak_256(typeof b === 'string' ? new TextEncoder().encode(b) : b);

export function checksum(addrLower) {
  const a = addrLower.toLowerCase().replace(/^0x/, '');
  const h = Buffer.from(keccak(a)).toString('hex');
  return '0x' + [...a].map((c, i) => (parseInt(h[i], 16) >= 8 ? c.toUpperCase() : c)).join('');
}

export function addressOf(privHex) {
  const pub = secp.getPublicKey(unhex(privHex), false); // 0x04 || X || Y
  return checksum(hex(keccak(pub.subarray(1)).subarray(12)));
}

function signDigest(privHex, digest) {
  const sig = secp.sign(digest, unhex(privHex), { prehash: false, format: 'recovered', lowS: true });
  return { rec: sig[0], rs: sig.subarray(1) };
}

/** personalSign is EIP-191 personal_sign: r || s || v (27/28). */
export function personalSign(privHex, msgBytes) {
  const prefix = new TextEncoder().encode(`\x19Ethereum Signed Message:\n${msgBytes.length}`);
  const { rec, rs } = signDigest(privHex, keccak(concat(prefix, msgBytes)));
  return hex(concat(rs, Uint8Array.of(27 + rec)));
}

// ---- EIP-712 (typed structured data), written from the EIP's definitions.
function typeDeps(types, primary, found = new Set()) {
  if (found.has(primary) || !types[primary]) return found;
  found.add(primary);
  for (const f of types[primary]) typeDeps(types, f.type.replace(/\[\d*\]$/, ''), found);
  return found;
}
function encodeType(types, primary) {
  const deps = [...typeDeps(types, primary)].filter((t) => t !== primary).sort();
  return [primary, ...deps].map((t) => `${t}(${types[t].map((f) => `${f.type} ${f.name}`).join(',')})`).join('');
}
const word = (n) => { const b = new Uint8Array(32); let v = BigInt(n); if (v < 0n) v += 1n << 256n; for (let i = 31; i >= 0; i--) { b[i] = Number(v & 0xffn); v >>= 8n; } return b; };
function encodeValue(types, type, value) {
  if (types[type]) return hashStruct(types, type, value);
  if (type === 'string') return keccak(String(value));
  if (type === 'bytes') return keccak(unhex(value));
  if (type === 'address') return word(BigInt(value));
  if (type === 'bool') return word(value ? 1 : 0);
  if (/^bytes\d+$/.test(type)) { const b = new Uint8Array(32); b.set(unhex(value)); return b; }
  if (/^u?int\d*$/.test(type)) return word(BigInt(value));
  if (type.endsWith(']')) {
    const inner = type.replace(/\[\d*\]$/, '');
    return keccak(concat(...value.map((v) => encodeValue(types, inner, v))));
  }
  throw new Error('EIP-712: unsupported type ' + type);
}
export function hashStruct(types, primary, data) {
  const typeHash = keccak(encodeType(types, primary));
  return keccak(concat(typeHash, ...types[primary].map((f) => encodeValue(types, f.type, data[f.name]))));
}
export function typedDataDigest(td) {
  const domainFields = ['name', 'version', 'chainId', 'verifyingContract', 'salt'].filter((k) => td.domain[k] !== undefined);
  const types = { ...td.types };
  const order = { name: 'string', version: 'string', chainId: 'uint256', verifyingContract: 'address', salt: 'bytes32' };
  types.EIP712Domain = types.EIP712Domain || domainFields.map((k) => ({ name: k, type: order[k] }));
  return keccak(concat(Uint8Array.of(0x19, 0x01), hashStruct(types, 'EIP712Domain', td.domain), hashStruct(types, td.primaryType, td.message)));
}
export function signTypedData(privHex, td) {
  const { rec, rs } = signDigest(privHex, typedDataDigest(td));
  return hex(concat(rs, Uint8Array.of(27 + rec)));
}

// ---- RLP and legacy EIP-155 transactions
function rlp(x) {
  if (Array.isArray(x)) {
    const body = concat(...x.map(rlp));
    return concat(lenPrefix(body.length, 0xc0), body);
  }
  if (x.length === 1 && x[0] < 0x80) return x;
  return concat(lenPrefix(x.length, 0x80), x);
}
function lenPrefix(n, base) {
  if (n <= 55) return Uint8Array.of(base + n);
  const b = minimal(BigInt(n));
  return concat(Uint8Array.of(base + 55 + b.length), b);
}
function minimal(v) {
  const out = [];
  while (v > 0n) { out.unshift(Number(v & 0xffn)); v >>= 8n; }
  return Uint8Array.from(out);
}
const q = (v) => minimal(BigInt(v ?? 0));

export function signLegacyTx(privHex, tx, chainId) {
  const fields = [q(tx.nonce), q(tx.gasPrice), q(tx.gas), unhex(tx.to || '0x'), q(tx.value || 0), unhex(tx.data || '0x')];
  const { rec, rs } = signDigest(privHex, keccak(rlp([...fields, q(chainId), q(0), q(0)])));
  const v = BigInt(chainId) * 2n + 35n + BigInt(rec);
  return hex(rlp([...fields, q(v), minimal(BigInt(hex(rs.subarray(0, 32)))), minimal(BigInt(hex(rs.subarray(32))))]));
}

export async function rpcCall(url, method, params = []) {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  const body = await res.json();
  if (body.error) { const e = new Error(body.error.message); e.code = body.error.code; e.data = body.error.data; throw e; }
  return body.result;
}

const userRejected = { code: 4001, message: 'User rejected the request.' };

/** DevWallet answers EIP-1193 requests for one account. */
export class DevWallet {
  constructor({ key, rpc, chainId, startChainId, knowsChain = true }) {
    this.key = key;
    this.address = addressOf(key);
    this.chains = new Map(); // chains the wallet knows: id -> RPC URL
    if (knowsChain) this.chains.set(Number(chainId), rpc);
    this.chainId = Number(startChainId ?? chainId);
    if (!this.chains.has(this.chainId)) this.chains.set(this.chainId, null); // a chain it cannot reach
    this.connected = false;
    this.rejectNext = new Set(); // methods whose next call the "user" rejects
    this.calls = [];
  }
  get rpc() { return this.chains.get(this.chainId); }

  /** handle returns {result} or {error: {code, message}}, plus events to emit in the page. */
  async handle({ method, params = [] }) {
    this.calls.push({ method, params });
    try {
      if (this.rejectNext.has(method)) { this.rejectNext.delete(method); return { error: userRejected }; }
      return await this.request(method, params);
    } catch (e) {
      return { error: { code: e.code ?? -32603, message: e.message } };
    }
  }

  async request(method, params) {
    const hexChain = '0x' + this.chainId.toString(16);
    switch (method) {
      case 'eth_requestAccounts':
        this.connected = true;
        return { result: [this.address.toLowerCase()] };
      case 'eth_accounts':
        return { result: this.connected ? [this.address.toLowerCase()] : [] };
      case 'eth_chainId':
        return { result: hexChain };
      case 'net_version':
        return { result: String(this.chainId) };
      case 'wallet_switchEthereumChain': {
        const id = parseInt(params[0].chainId, 16);
        if (!this.chains.has(id) || !this.chains.get(id)) return { error: { code: 4902, message: `Unrecognized chain ID "${params[0].chainId}". Try adding the chain using wallet_addEthereumChain first.` } };
        this.chainId = id;
        return { result: null, events: [['chainChanged', params[0].chainId]] };
      }
      case 'wallet_addEthereumChain': {
        const p = params[0];
        const id = parseInt(p.chainId, 16);
        const remote = parseInt(await rpcCall(p.rpcUrls[0], 'eth_chainId'), 16);
        if (remote !== id) return { error: { code: -32602, message: 'the RPC answers another chain id' } };
        this.chains.set(id, p.rpcUrls[0]);
        this.added = p;
        return { result: null };
      }
      case 'personal_sign': {
        const [msg, addr] = params;
        if (addr.toLowerCase() !== this.address.toLowerCase()) return { error: { code: 4100, message: 'unknown account' } };
        return { result: personalSign(this.key, unhex(msg)) };
      }
      case 'eth_signTypedData_v4': {
        const [addr, json] = params;
        if (addr.toLowerCase() !== this.address.toLowerCase()) return { error: { code: 4100, message: 'unknown account' } };
        const td = typeof json === 'string' ? JSON.parse(json) : json;
        if (Number(td.domain.chainId) !== this.chainId) return { error: { code: -32602, message: `Provided chainId "${td.domain.chainId}" must match the active chainId "${this.chainId}"` } };
        return { result: signTypedData(this.key, td) };
      }
      case 'eth_sendTransaction': {
        const tx = { ...params[0] };
        if (!this.rpc) return { error: { code: -32603, message: 'no RPC for this chain' } };
        tx.nonce = tx.nonce ?? await rpcCall(this.rpc, 'eth_getTransactionCount', [this.address, 'pending']);
        tx.gasPrice = tx.gasPrice ?? await rpcCall(this.rpc, 'eth_gasPrice');
        tx.gas = tx.gas ?? hex(q(Math.ceil(Number(await rpcCall(this.rpc, 'eth_estimateGas', [{ from: this.address, to: tx.to, data: tx.data, value: tx.value || '0x0' }])) * 1.3)));
        const raw = signLegacyTx(this.key, tx, this.chainId);
        return { result: await rpcCall(this.rpc, 'eth_sendRawTransaction', [raw]) };
      }
      default:
        if (!this.rpc) return { error: { code: 4901, message: 'the wallet is not connected to this chain' } };
        if (/^(eth_|net_|web3_)/.test(method)) return { result: await rpcCall(this.rpc, method, params) };
        return { error: { code: 4200, message: `unsupported method ${method}` } };
    }
  }
}

/** injectScript is the page-side window.ethereum (an EIP-1193 provider calling the exposed function). */
export const injectScript = `(() => {
  const listeners = {};
  const emit = (ev, arg) => (listeners[ev] || []).slice().forEach((f) => { try { f(arg); } catch (e) { console.error(e); } });
  window.ethereum = {
    isFhirgateTestWallet: true,
    async request(args) {
      if (!args || typeof args.method !== 'string') throw Object.assign(new Error('invalid request'), { code: -32600 });
      const r = await window.__fhirgateWallet({ method: args.method, params: args.params || [] });
      for (const [ev, arg] of r.events || []) setTimeout(() => emit(ev, arg), 0);
      if (r.error) throw Object.assign(new Error(r.error.message), { code: r.error.code });
      return r.result;
    },
    on(ev, f) { (listeners[ev] = listeners[ev] || []).push(f); return this; },
    removeListener(ev, f) { listeners[ev] = (listeners[ev] || []).filter((x) => x !== f); return this; },
  };
})();`;

/** attach installs a DevWallet as window.ethereum in a Playwright browser context. */
export async function attach(context, wallet) {
  await context.exposeFunction('__fhirgateWallet', (req) => wallet.handle(req));
  await context.addInitScript(injectScript);
  return wallet;
}
