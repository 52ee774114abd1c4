// Small Ethereum helpers for the portal: hex, EIP-55 addresses, function
// selectors, the few ABI encodings the portal needs, and a JSON-RPC client.
// No third-party code: Keccak-256 is ours (keccak.js).
import { keccak256 } from './keccak.js';

export function bytesToHex(b) {
  let s = '0x';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export function hexToBytes(h) {
  if (typeof h !== 'string') throw new Error('not a hex string');
  let s = h.startsWith('0x') || h.startsWith('0X') ? h.slice(2) : h;
  if (s.length % 2 === 1) throw new Error('odd number of hex digits');
  if (!/^[0-9a-fA-F]*$/.test(s)) throw new Error('not a hex string');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
  return out;
}

export const utf8 = (s) => new TextEncoder().encode(s);

export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** keccakHex is keccak256 as 0x-hex. */
export const keccakHex = (x) => bytesToHex(keccak256(x));

/** isAddress: 0x and 40 hex digits. */
export const isAddress = (a) => typeof a === 'string' && /^0x[0-9a-fA-F]{40}$/.test(a);

/** checksumAddress returns the EIP-55 form of an address. */
export function checksumAddress(a) {
  if (!isAddress(a)) throw new Error('not an address: ' + a);
  const lower = a.slice(2).toLowerCase();
  const h = keccak256(utf8(lower));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const nibble = (h[i >> 1] >> (i % 2 === 0 ? 4 : 0)) & 0xf;
    out += nibble >= 8 ? lower[i].toUpperCase() : lower[i];
  }
  return out;
}

/** selector returns the 4-byte function selector of a signature such as "rootAt(uint64)", as 0x-hex. */
export const selector = (sig) => keccakHex(utf8(sig)).slice(0, 10);

/** topic returns the event topic of a signature such as "ConsentGranted(address,bytes32,bytes32,uint64)". */
export const topic = (sig) => keccakHex(utf8(sig));

// ABI words (32 bytes, big-endian) as 64 hex digits without 0x.
export function wordUint(n) {
  const v = BigInt(n);
  if (v < 0n || v >= 1n << 256n) throw new Error('uint out of range');
  return v.toString(16).padStart(64, '0');
}
export function wordBytes32(h) {
  const b = hexToBytes(h);
  if (b.length !== 32) throw new Error('want 32 bytes');
  return bytesToHex(b).slice(2);
}
export function wordAddress(a) {
  if (!isAddress(a)) throw new Error('not an address');
  return a.slice(2).toLowerCase().padStart(64, '0');
}

/** encodeCall builds calldata: selector of sig followed by the static words given (already encoded). */
export const encodeCall = (sig, ...words) => selector(sig) + words.join('');

/** words splits 0x-hex ABI return data into 32-byte words (hex without 0x). */
export function words(data) {
  const s = (data || '0x').slice(2);
  const out = [];
  for (let i = 0; i + 64 <= s.length; i += 64) out.push(s.slice(i, i + 64));
  return out;
}

export const MAX_UINT64 = (1n << 64n) - 1n;

/** RPC is a JSON-RPC client over fetch (a node URL), or over an EIP-1193 provider. */
export class RPC {
  constructor(target) {
    this.target = target;
    this.id = 0;
  }
  async call(method, params = []) {
    if (typeof this.target !== 'string') return this.target.request({ method, params });
    let res;
    try {
      res = await fetch(this.target, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: ++this.id, method, params }),
      });
    } catch (e) {
      throw new RPCError(`the Ethereum node at ${this.target} cannot be reached`, 'unreachable');
    }
    if (!res.ok) throw new RPCError(`the Ethereum node answered HTTP ${res.status}`, 'http');
    const body = await res.json();
    if (body.error) throw new RPCError(body.error.message || 'node error', 'rpc', body.error);
    return body.result;
  }
}

export class RPCError extends Error {
  constructor(message, kind, detail) {
    super(message);
    this.kind = kind;
    this.detail = detail;
  }
}
