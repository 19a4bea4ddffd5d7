// Bounds-checked integer reads for header parsing. Every read past the end
// of the upload becomes an InvalidImageError, so a truncated or hostile
// header can never surface as a RangeError or an `undefined` dimension.

import { InvalidImageError } from "../errors.ts";

function need(bytes: Uint8Array, pos: number, n: number, what: string): void {
  if (pos < 0 || pos + n > bytes.length) {
    throw new InvalidImageError(`${what} is truncated`);
  }
}

/** Unsigned 8-bit read. */
export function u8(bytes: Uint8Array, pos: number, what: string): number {
  need(bytes, pos, 1, what);
  return bytes[pos];
}

/** Unsigned 16-bit read, big-endian when `be`, little-endian otherwise. */
export function u16(
  bytes: Uint8Array,
  pos: number,
  be: boolean,
  what: string,
): number {
  need(bytes, pos, 2, what);
  return be ? (bytes[pos] << 8) | bytes[pos + 1] : bytes[pos] | (bytes[pos + 1] << 8);
}

/** Unsigned 32-bit read, big-endian when `be`, little-endian otherwise. */
export function u32(
  bytes: Uint8Array,
  pos: number,
  be: boolean,
  what: string,
): number {
  need(bytes, pos, 4, what);
  const [a, b, c, d] = be
    ? [bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]
    : [bytes[pos + 3], bytes[pos + 2], bytes[pos + 1], bytes[pos]];
  // Multiply instead of shifting so values >= 2^31 stay positive.
  return a * 0x1000000 + ((b << 16) | (c << 8) | d);
}

/**
 * Unsigned 64-bit read as a JS number (BigTIFF offsets). Values past 2^53
 * cannot address bytes of an in-memory upload anyway, so they are reported
 * as Infinity, which every caller treats as out of range.
 */
export function u64(
  bytes: Uint8Array,
  pos: number,
  be: boolean,
  what: string,
): number {
  need(bytes, pos, 8, what);
  const hi = u32(bytes, be ? pos : pos + 4, be, what);
  const lo = u32(bytes, be ? pos + 4 : pos, be, what);
  return hi >= 0x200000 ? Infinity : hi * 0x100000000 + lo;
}

/** True when `bytes` starts with `prefix` at `pos`. */
export function startsWith(
  bytes: Uint8Array,
  prefix: ArrayLike<number>,
  pos = 0,
): boolean {
  if (pos + prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (bytes[pos + i] !== prefix[i]) return false;
  }
  return true;
}

/** `text` as ASCII byte values, for magic-number comparisons. */
export function ascii(text: string): number[] {
  return Array.from(text, (ch) => ch.charCodeAt(0));
}

/** The parts one after another in one new array (PNG chunks, fixture files). */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
