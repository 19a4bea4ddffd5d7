// Progressive JPEGs with as many scans as asked for, written from scratch:
// the heavy-but-legal inputs of the soak (decode time grows with pixels ×
// scans while the file stays a few KB). Grey, every coefficient zero, each AC
// scan one spectral band coded as end-of-band runs, refined down to bit 0 —
// a valid progression that any decoder must walk scan by scan.

class BitWriter {
  #bytes: number[] = [];
  #acc = 0;
  #n = 0;
  write(bits: number, count: number): void {
    for (let i = count - 1; i >= 0; i--) {
      this.#acc = (this.#acc << 1) | ((bits >> i) & 1);
      if (++this.#n === 8) this.#flush();
    }
  }
  #flush(): void {
    this.#bytes.push(this.#acc);
    if (this.#acc === 0xff) this.#bytes.push(0); // byte stuffing
    this.#acc = 0;
    this.#n = 0;
  }
  /** Pads the last byte with 1s, as the standard asks. */
  end(): number[] {
    while (this.#n !== 0) this.write(1, 1);
    return this.#bytes;
  }
}

const segment = (
  marker: number,
  body: number[],
) => [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];

/**
 * A grey progressive JPEG of `width`×`height` with exactly `scans` scans
 * (1 ≤ scans ≤ 1 + 63·11 = 694).
 *
 * @example
 * ```ts
 * const bytes = progressiveJpeg(2000, 2000, 499); // ~10 KB
 * ```
 */
export function progressiveJpeg(width: number, height: number, scans: number): Uint8Array {
  const AL = 10; // first scan of a band at bit 10, then 10 refinements
  if (scans < 1 || scans > 1 + 63 * (AL + 1)) throw new RangeError(`scans must be 1..${1 + 63 * (AL + 1)}`);
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const out: number[] = [0xff, 0xd8];
  out.push(...segment(0xdb, [0x00, ...new Array(64).fill(1)]));
  out.push(...segment(0xc2, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]));
  // DC table: one code "0" for category 0. AC table: EOB0..EOB14 as 4-bit codes 0000..1110.
  const dcCounts = [1, ...new Array(15).fill(0)];
  const acCounts = [0, 0, 0, 15, ...new Array(12).fill(0)];
  out.push(...segment(0xc4, [0x00, ...dcCounts, 0x00]));
  out.push(...segment(0xc4, [0x10, ...acCounts, ...Array.from({ length: 15 }, (_, n) => n << 4)]));

  const sos = (ss: number, se: number, ah: number, al: number) => segment(0xda, [1, 1, 0x00, ss, se, (ah << 4) | al]);
  // DC first scan: category 0 for every block.
  const dc = new BitWriter();
  for (let b = 0; b < blocks; b++) dc.write(0, 1);
  out.push(...sos(0, 0, 0, 0), ...dc.end());
  // Every AC scan is the same run of end-of-bands over all blocks.
  const eob = new BitWriter();
  for (let left = blocks; left > 0;) {
    const run = Math.min(left, 32767);
    const n = Math.floor(Math.log2(run));
    eob.write(n, 4);
    if (n > 0) eob.write(run - 2 ** n, n);
    left -= run;
  }
  const eobBytes = eob.end();
  let written = 1;
  for (let band = 1; band <= 63 && written < scans; band++) {
    out.push(...sos(band, band, 0, AL), ...eobBytes);
    written++;
    for (let al = AL - 1; al >= 0 && written < scans; al--, written++) {
      out.push(...sos(band, band, al + 1, al), ...eobBytes);
    }
  }
  out.push(0xff, 0xd9);
  return new Uint8Array(out);
}
