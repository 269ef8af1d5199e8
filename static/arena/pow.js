// Proof of work for a new anonymous voter (ARENA_VOTER_GATE=pow): find a nonce such that
// SHA-256("<challenge>:<nonce>") starts with `bits` zero bits (arena/gate.py checks it).
// A plain synchronous SHA-256 (much faster than one crypto.subtle promise per try), run in
// slices so the page stays responsive.
(function (root) {
  "use strict";
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const W = new Uint32Array(64);

  // The digest of an ASCII string as eight 32-bit words.
  function sha256(text) {
    const length = text.length;
    const size = ((length + 9 + 63) >> 6) << 6;
    const bytes = new Uint8Array(size);
    for (let i = 0; i < length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
    bytes[length] = 0x80;
    const view = new DataView(bytes.buffer);
    view.setUint32(size - 4, (length * 8) >>> 0);
    view.setUint32(size - 8, Math.floor((length * 8) / 4294967296));
    const H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    for (let offset = 0; offset < size; offset += 64) {
      for (let i = 0; i < 16; i++) W[i] = view.getUint32(offset + 4 * i);
      for (let i = 16; i < 64; i++) {
        const x = W[i - 15], y = W[i - 2];
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
      }
      let [a, b, c, d, e, f, g, h] = H;
      for (let i = 0; i < 64; i++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
      H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
    }
    return H.map((word) => word >>> 0);
  }

  function leadingZeroBits(words) {
    let bits = 0;
    for (const word of words) {
      if (word === 0) { bits += 32; continue; }
      return bits + Math.clz32(word);
    }
    return bits;
  }

  // Resolves to the first nonce (as a string) that solves the challenge.
  async function solve(challenge, bits, slice = 20000) {
    for (let nonce = 0; ; ) {
      const end = nonce + slice;
      for (; nonce < end; nonce++) {
        if (leadingZeroBits(sha256(challenge + ":" + nonce)) >= bits) return String(nonce);
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  const api = { sha256, leadingZeroBits, solve };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.arenaPow = api;
})(typeof window !== "undefined" ? window : this);
