// Keccak-256 as Ethereum uses it (the original Keccak padding 0x01, not
// SHA-3's 0x06), written from the Keccak reference (FIPS 202 section 3
// for Keccak-f[1600]; rate 1088 bits, capacity 512). The round constants
// and rotation offsets are derived below from their definitions rather
// than copied. Lanes are 64-bit words held as two 32-bit halves.

const ROUNDS = 24;

// rc(t): the output bit of the degree-8 LFSR of FIPS 202 algorithm 5.
function rcBit(t) {
  if (t % 255 === 0) return 1;
  let r = 0x01; // R[0..7], R[0] as bit 0
  for (let i = 1; i <= t % 255; i++) {
    r <<= 1; // R = 0 || R, R[8] now at bit 8
    const b8 = (r >> 8) & 1;
    r ^= b8 | (b8 << 4) | (b8 << 5) | (b8 << 6);
    r &= 0xff;
  }
  return r & 1;
}

// Round constants as [lo, hi] 32-bit halves (FIPS 202 algorithm 6).
const RC_LO = new Uint32Array(ROUNDS);
const RC_HI = new Uint32Array(ROUNDS);
for (let ir = 0; ir < ROUNDS; ir++) {
  for (let j = 0; j <= 6; j++) {
    if (rcBit(j + 7 * ir)) {
      const bit = (1 << j) - 1; // 2^j - 1
      if (bit < 32) RC_LO[ir] |= 1 << bit;
      else RC_HI[ir] |= 1 << (bit - 32);
    }
  }
}

// Rotation offsets r[x + 5y] (FIPS 202 algorithm 2, rho).
const ROT = new Uint8Array(25);
{
  let x = 1, y = 0;
  for (let t = 0; t < 24; t++) {
    ROT[x + 5 * y] = (((t + 1) * (t + 2)) / 2) % 64;
    [x, y] = [y, (2 * x + 3 * y) % 5];
  }
}

// pi: lane (x, y) moves to (y, 2x + 3y).
const PI = new Uint8Array(25);
for (let x = 0; x < 5; x++) for (let y = 0; y < 5; y++) PI[x + 5 * y] = y + 5 * ((2 * x + 3 * y) % 5);

function keccakF(s) {
  const bl = new Uint32Array(25), bh = new Uint32Array(25);
  const cl = new Uint32Array(5), ch = new Uint32Array(5);
  for (let ir = 0; ir < ROUNDS; ir++) {
    // theta
    for (let x = 0; x < 5; x++) {
      let l = 0, h = 0;
      for (let y = 0; y < 25; y += 5) { l ^= s[2 * (x + y)]; h ^= s[2 * (x + y) + 1]; }
      cl[x] = l; ch[x] = h;
    }
    for (let x = 0; x < 5; x++) {
      const pl = cl[(x + 4) % 5], ph = ch[(x + 4) % 5];
      const nl = cl[(x + 1) % 5], nh = ch[(x + 1) % 5];
      const dl = pl ^ ((nl << 1) | (nh >>> 31));
      const dh = ph ^ ((nh << 1) | (nl >>> 31));
      for (let y = 0; y < 25; y += 5) { s[2 * (x + y)] ^= dl; s[2 * (x + y) + 1] ^= dh; }
    }
    // rho and pi
    for (let i = 0; i < 25; i++) {
      const l = s[2 * i], h = s[2 * i + 1], n = ROT[i];
      let rl, rh;
      if (n === 0) { rl = l; rh = h; }
      else if (n < 32) { rl = (l << n) | (h >>> (32 - n)); rh = (h << n) | (l >>> (32 - n)); }
      else if (n === 32) { rl = h; rh = l; }
      else { const m = n - 32; rl = (h << m) | (l >>> (32 - m)); rh = (l << m) | (h >>> (32 - m)); }
      bl[PI[i]] = rl; bh[PI[i]] = rh;
    }
    // chi
    for (let y = 0; y < 25; y += 5) {
      for (let x = 0; x < 5; x++) {
        const a = x + y, b = ((x + 1) % 5) + y, c = ((x + 2) % 5) + y;
        s[2 * a] = bl[a] ^ (~bl[b] & bl[c]);
        s[2 * a + 1] = bh[a] ^ (~bh[b] & bh[c]);
      }
    }
    // iota
    s[0] ^= RC_LO[ir]; s[1] ^= RC_HI[ir];
  }
}

const RATE = 136; // bytes: (1600 - 2 * 256) / 8

/** keccak256 returns the 32-byte Keccak-256 digest of bytes (Uint8Array or string, hashed as UTF-8). */
export function keccak256(input) {
  const data = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  const s = new Uint32Array(50);
  const absorb = (block) => {
    for (let i = 0; i < RATE / 4; i++) {
      s[i] ^= block[4 * i] | (block[4 * i + 1] << 8) | (block[4 * i + 2] << 16) | (block[4 * i + 3] << 24);
    }
    keccakF(s);
  };
  let off = 0;
  for (; off + RATE <= data.length; off += RATE) absorb(data.subarray(off, off + RATE));
  // pad10*1 with Keccak's domain bit: 0x01 first, 0x80 last (one byte 0x81 when they coincide)
  const last = new Uint8Array(RATE);
  last.set(data.subarray(off));
  last[data.length - off] ^= 0x01;
  last[RATE - 1] ^= 0x80;
  absorb(last);
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const w = s[i];
    out[4 * i] = w; out[4 * i + 1] = w >>> 8; out[4 * i + 2] = w >>> 16; out[4 * i + 3] = w >>> 24;
  }
  return out;
}
