// The sticky sampling hash, bit for bit the one in Go's pkg/migration
// (keyHash): 64-bit FNV-1a over the UTF-8 bytes of the targeting key,
// followed by MurmurHash3's 64-bit finaliser (fmix64). The shared vectors in
// testdata/hash-vectors.json at the repository root pin it for both
// languages.
//
// 64-bit values are carried as two unsigned 32-bit halves so that the hot
// path allocates no BigInt.

const TWO32 = 4294967296;

/** hi:lo of (a × b) mod 2^64, every part an unsigned 32-bit integer. */
function mul64(ah: number, al: number, bh: number, bl: number): [number, number] {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const mid = a0 * b1 + a1 * b0 + (p00 >>> 16); // < 2^34
  const lo = (((mid % 65536) << 16) | (p00 & 0xffff)) >>> 0;
  const carry = a1 * b1 + Math.floor(mid / 65536); // the high half of al × bl
  const hi = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  return [hi, lo];
}

const encoder = new TextEncoder();

/**
 * keyHash returns the 64-bit hash of key as [hi, lo] unsigned 32-bit halves.
 */
export function keyHash(key: string): [number, number] {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  const step = (c: number): void => {
    lo = (lo ^ c) >>> 0;
    // × 0x100000001b3 = × 2^40 + × 0x1b3
    const l = lo * 0x1b3;
    const carry = Math.floor(l / TWO32);
    hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) >>> 0;
    lo = l >>> 0;
  };
  let ascii = true;
  for (let i = 0; i < key.length; i++) {
    if (key.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    for (let i = 0; i < key.length; i++) step(key.charCodeAt(i));
  } else {
    for (const b of encoder.encode(key)) step(b);
  }
  // fmix64
  lo = (lo ^ (hi >>> 1)) >>> 0; // h ^= h >> 33
  [hi, lo] = mul64(hi, lo, 0xff51afd7, 0xed558ccd);
  lo = (lo ^ (hi >>> 1)) >>> 0;
  [hi, lo] = mul64(hi, lo, 0xc4ceb9fe, 0x1a85ec53);
  lo = (lo ^ (hi >>> 1)) >>> 0;
  return [hi, lo];
}

/** keyHashHex is keyHash as 16 lower-case hex digits, as the vectors file writes it. */
export function keyHashHex(key: string): string {
  const [hi, lo] = keyHash(key);
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

/** mod64 returns (hi·2^32 + lo) mod n for a positive safe integer n. */
function mod64(hi: number, lo: number, n: number): number {
  if (n <= 2097152) {
    // (hi mod n) · 2^32 stays below 2^53
    return (((hi % n) * TWO32) % n + (lo % n)) % n;
  }
  return Number(((BigInt(hi) << 32n) | BigInt(lo)) % BigInt(n));
}

/**
 * inSample reports whether the calls of the user with targeting key key are
 * in a sample of one user in n: always for n = 1, never for n = 0, and for
 * n > 1 when keyHash(key) mod n == 0. A call without a key is sampled at
 * random with probability 1/n, as in Go.
 */
export function inSample(key: string, n: number): boolean {
  if (n === 0) return false;
  if (n === 1) return true;
  if (key === "") return Math.random() * n < 1;
  const [hi, lo] = keyHash(key);
  return mod64(hi, lo, n) === 0;
}
