// The soak's hostile-input generator: seeded, so a failing case can be
// replayed by its index. Tiny legal images with huge dimensions, extreme
// aspect ratios, truncations, bit flips, lying headers, decompression bombs,
// many-scan progressive JPEGs, many-frame GIFs, deflate TIFFs, multipart
// abuse and absurd headers — every one a request a client could send.

import { crc32, deflateSync } from "node:zlib";
import { progressiveJpeg } from "./jpeg.ts";
import { encodeGif, gradient, tiff } from "../../dev/image_fixtures.ts";

/** One multipart body with a 4 MiB file in the field `image`, shared by every case that sends it. */
const BIG_FORM = (() => {
  const boundary = "soakbigform";
  const enc = new TextEncoder();
  const head = enc.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n`,
  );
  const tail = enc.encode(`\r\n--${boundary}--\r\n`);
  const body = new Uint8Array(head.length + 4 * 2 ** 20 + tail.length);
  body.set(head);
  for (let i = head.length; i < head.length + 4 * 2 ** 20; i++) body[i] = (i * 131) & 0x7f;
  body.set(tail, body.length - tail.length);
  return { boundary, body };
})();

/** One request of the soak. */
export interface HostileCase {
  index: number;
  kind: string;
  name: string;
  task: string;
  headers: Record<string, string>;
  body: Uint8Array;
  /** A legal image that is heavy to process: sent alone, with a long timeout. */
  heavy?: boolean;
}

const TASKS = ["digits", "micrograph", "text"];

function rng(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function be32(n: number): number[] {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(type);
  const body = new Uint8Array(head.length + data.length);
  body.set(head);
  body.set(data, head.length);
  const out = new Uint8Array(12 + data.length);
  out.set(be32(data.length));
  out.set(body, 4);
  out.set(be32(crc32(body) >>> 0), 8 + data.length);
  return out;
}

const pngCache = new Map<string, Uint8Array>();

/** An 8-bit grey PNG of `width`×`height`, pixels from `pixel(x, y)` (default 0); zlib-compressed. */
export function greyPng(width: number, height: number, pixel?: (x: number, y: number) => number): Uint8Array {
  const key = `${width}x${height}`;
  if (!pixel && pngCache.has(key)) return pngCache.get(key)!;
  const raw = new Uint8Array(height * (width + 1));
  if (pixel) {
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw[y * (width + 1) + 1 + x] = pixel(x, y);
  }
  const ihdr = new Uint8Array([...be32(width), ...be32(height), 8, 0, 0, 0, 0]);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(deflateSync(raw, { level: 9 }))),
    chunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  if (!pixel) pngCache.set(key, out);
  return out;
}

/** A GIF with its one frame repeated `frames` times. */
async function manyFrameGif(frames: number, size: number): Promise<Uint8Array> {
  const one = await encodeGif(gradient(size, size), size, size);
  // Header + logical screen + global table end where the first extension or image starts.
  let start = 13;
  if (one[10] & 0x80) start += 3 * (1 << ((one[10] & 7) + 1));
  const frame = one.subarray(start, one.length - 1); // without the trailer
  const out = new Uint8Array(start + frame.length * frames + 1);
  out.set(one.subarray(0, start));
  for (let i = 0; i < frames; i++) out.set(frame, start + i * frame.length);
  out[out.length - 1] = 0x3b;
  return out;
}

/** Heavy legal images (sent alone): huge dimensions in a few KB, bombs at the limit. */
export function heavyCases(): HostileCase[] {
  const zeros = (w: number, h: number) =>
    tiff({ width: w, height: h, channels: 1, pixels: new Uint8Array(w * h), compression: 8 });
  const list: [string, string, () => Uint8Array, string][] = [
    ["png 1x16000000", "micrograph", () => greyPng(1, 16_000_000), "image/png"],
    ["png 16000000x1", "digits", () => greyPng(16_000_000, 1), "image/png"],
    ["png 4000x4000 zeros", "micrograph", () => greyPng(4000, 4000), "image/png"],
    ["png 1x100000", "digits", () => greyPng(1, 100_000), "image/png"],
    ["png 100000x1", "text", () => greyPng(100_000, 1), "image/png"],
    ["tiff deflate 4000x4000 zeros", "micrograph", () => zeros(4000, 4000), "image/tiff"],
    ["jpeg 4000x4000 60 scans", "digits", () => progressiveJpeg(4000, 4000, 60), "image/jpeg"],
    ["jpeg 1400x1400 499 scans", "text", () => progressiveJpeg(1400, 1400, 499), "image/jpeg"],
  ];
  return list.map(([name, task, make, type], index) => ({
    index,
    kind: "heavy-legal",
    name,
    task,
    headers: { "content-type": type },
    body: make(),
    heavy: true,
  }));
}

interface Base {
  type: string;
  bytes: Uint8Array;
}

async function bases(): Promise<Base[]> {
  const fixture = (p: string) => Deno.readFileSync(new URL(`../../${p}`, import.meta.url));
  const g = gradient(48, 40);
  return [
    { type: "image/png", bytes: fixture("tests/fixtures/digits-test-0.png") },
    { type: "image/png", bytes: fixture("tests/fixtures/micrograph-test-0.png") },
    { type: "image/jpeg", bytes: progressiveJpeg(96, 80, 12) },
    { type: "image/gif", bytes: await encodeGif(g, 48, 40) },
    { type: "image/tiff", bytes: tiff({ width: 48, height: 40, channels: 4, pixels: g, compression: 8 }) },
    { type: "image/tiff", bytes: tiff({ width: 48, height: 40, channels: 4, pixels: g, compression: 5 }) },
  ];
}

const ABSURD: Record<string, string>[] = [
  { "x-budget-gflops": "-1" },
  { "x-budget-gflops": "NaN" },
  { "x-budget-gflops": "1e309" },
  { "x-budget-gflops": "0.0000001" },
  { "x-mode": "\u00ff\u00fe" },
  { "x-mode": "glimpse", "x-confidence": "7" },
  { "x-mode": "fixed", "x-model": "../../etc/passwd" },
  { "x-deadline-ms": "0" },
  { "x-deadline-ms": "1" },
  { "x-deadline-ms": "99999999999999999999" },
  { "accept": "image/png;q=0, */*;q=0" },
  { "idempotency-key": "x".repeat(300) },
  { "x-budget-gflops": "1".repeat(4000) },
  { "content-type": "image/png; charset=\u0000" },
  { "content-type": "image/webp" },
  { "content-type": "multipart/form-data" },
  { "authorization": "Bearer " + "A".repeat(600) },
  { "x-confidence": "-0" },
];

/**
 * `count` hostile cases, deterministic in `seed`.
 *
 * @example
 * ```ts
 * for (const c of await hostileCases(500)) await send(c);
 * ```
 */
export async function hostileCases(count: number, seed = 1): Promise<HostileCase[]> {
  const base = await bases();
  const gifs = new Map<number, Uint8Array>();
  const out: HostileCase[] = [];
  for (let index = 0; index < count; index++) {
    const r = rng(seed * 1_000_003 + index);
    const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
    const task = pick(TASKS);
    const b = pick(base);
    const kinds = 12;
    const k = index % kinds;
    let c: Omit<HostileCase, "index" | "task">;
    if (k === 0) {
      const n = Math.floor(r() * b.bytes.length);
      c = {
        kind: "truncation",
        name: `${b.type} cut at ${n}`,
        headers: { "content-type": b.type },
        body: b.bytes.slice(0, n),
      };
    } else if (k === 1) {
      const bytes = b.bytes.slice();
      const flips = 1 + Math.floor(r() * 16);
      for (let i = 0; i < flips; i++) bytes[Math.floor(r() * bytes.length)] ^= 1 << Math.floor(r() * 8);
      c = { kind: "bit-flip", name: `${b.type} ${flips} flips`, headers: { "content-type": b.type }, body: bytes };
    } else if (k === 2) {
      // PNG header claiming other dimensions (CRC fixed half the time), or a lying Content-Type.
      const png = base[0].bytes.slice();
      const w = pick([1, 7, 65535, 2 ** 31 - 1, 0, 100_000]), h = pick([1, 3, 40_000, 2 ** 31 - 1, 0]);
      png.set(be32(w), 16);
      png.set(be32(h), 20);
      if (r() < 0.5) png.set(be32(crc32(png.subarray(12, 29)) >>> 0), 29);
      const type = r() < 0.3
        ? pick(["image/jpeg", "image/gif", "image/tiff", "application/octet-stream"])
        : "image/png";
      c = { kind: "lying-header", name: `png says ${w}x${h} as ${type}`, headers: { "content-type": type }, body: png };
    } else if (k === 3) {
      const w = pick([1, 2, 3, 5000, 20_000, 65_535]), h = w > 100 ? pick([1, 2, 3]) : pick([5000, 20_000, 65_535]);
      c = {
        kind: "extreme-aspect",
        name: `png ${w}x${h}`,
        headers: { "content-type": "image/png" },
        body: greyPng(w, h),
      };
    } else if (k === 4) {
      const [w, h] = pick([[20_000, 20_000], [5000, 4000], [65_535, 65_535], [16_001, 1000]]);
      const body = r() < 0.5 ? greyPng(w, h) : tiff({ width: 2, height: 2, channels: 1, pixels: [0, 0, 0, 0] });
      if (body.length < 100) {
        // A TIFF whose IFD claims w×h over a 4-pixel strip.
        const dv = new DataView(body.buffer);
        for (let off = 8; off + 12 <= body.length; off += 2) {
          if (dv.getUint16(off, true) === 256) dv.setUint16(off + 8, Math.min(w, 65535), true);
          if (dv.getUint16(off, true) === 257) dv.setUint16(off + 8, Math.min(h, 65535), true);
        }
      }
      c = {
        kind: "bomb",
        name: `${body.length < 100 ? "tiff" : "png"} ${w}x${h}`,
        headers: { "content-type": body.length < 100 ? "image/tiff" : "image/png" },
        body,
      };
    } else if (k === 5) {
      const w = 8 + Math.floor(r() * 1200), h = 8 + Math.floor(r() * 1200), scans = 100 + Math.floor(r() * 420);
      c = {
        kind: "many-scan-jpeg",
        name: `jpeg ${w}x${h} ${scans} scans`,
        headers: { "content-type": "image/jpeg" },
        body: progressiveJpeg(w, h, Math.min(scans, 694)),
      };
    } else if (k === 6) {
      const frames = pick([2, 50, 500, 5000, 12_000]);
      if (!gifs.has(frames)) gifs.set(frames, await manyFrameGif(frames, 16));
      c = {
        kind: "many-frame-gif",
        name: `gif ${frames} frames`,
        headers: { "content-type": "image/gif" },
        body: gifs.get(frames)!,
      };
    } else if (k === 7) {
      const w = 1 + Math.floor(r() * 300), h = 1 + Math.floor(r() * 300);
      const bytes = tiff({
        width: w,
        height: h,
        channels: 1,
        pixels: new Uint8Array(w * h).map(() => r() * 255),
        compression: 8,
      });
      if (r() < 0.5) bytes[Math.floor(r() * bytes.length)] ^= 0xff;
      c = {
        kind: "deflate-tiff",
        name: `tiff deflate ${w}x${h}`,
        headers: { "content-type": "image/tiff" },
        body: bytes,
      };
    } else if (k === 8) {
      const variant = Math.floor(r() * 8);
      const bd = "b" + Math.floor(r() * 1e9);
      const enc = new TextEncoder();
      const part = (name: string, type: string, data: string) =>
        `--${bd}\r\nContent-Disposition: form-data; name="${name}"; filename="x"\r\nContent-Type: ${type}\r\n\r\n${data}\r\n`;
      const bodies = [
        `--${bd}\r\nno headers at all`,
        part("other", "image/png", "abc") + `--${bd}--\r\n`,
        part("image", "image/png", "not a png") + `--${bd}--\r\n`,
        Array.from({ length: 2000 }, (_, i) => part(`f${i}`, "text/plain", "x")).join("") + `--${bd}--\r\n`,
        part("image", "image/png", "\x89PNG\r\n\x1a\n") + part("image", "image/png", "dup") + `--${bd}--\r\n`,
        `--${bd}\r\nContent-Disposition: form-data; name="image"; filename="${"a".repeat(10_000)}"\r\n\r\n`,
        part("image", "text/html", `--${bd}`) + `--${bd}--\r\n`,
      ];
      const type = variant === 0 && r() < 0.5 ? "multipart/form-data" : `multipart/form-data; boundary=${bd}`;
      c = {
        kind: "multipart",
        name: `multipart variant ${variant}`,
        headers: { "content-type": variant === 7 ? `multipart/form-data; boundary=${BIG_FORM.boundary}` : type },
        // 7: a 4 MiB file that is not an image (the form parser takes ~20 ms of its thread for it; one shared body)
        body: variant === 7 ? BIG_FORM.body : enc.encode(bodies[variant]),
      };
    } else if (k === 9) {
      const h = pick(ABSURD);
      c = {
        kind: "absurd-headers",
        name: `headers ${JSON.stringify(h).slice(0, 60)}`,
        headers: { "content-type": b.type, ...h },
        body: b.bytes,
      };
    } else if (k === 10) {
      const n = Math.floor(r() * 4096);
      const bytes = new Uint8Array(n).map(() => Math.floor(r() * 256));
      c = {
        kind: "garbage",
        name: `${n} random bytes`,
        headers: {
          "content-type": pick(["image/png", "image/jpeg", "image/gif", "image/tiff", "application/octet-stream"]),
        },
        body: bytes,
      };
    } else {
      const w = 1 + Math.floor(r() * 64), h = 1 + Math.floor(r() * 64);
      c = {
        kind: "small-legal",
        name: `png ${w}x${h}`,
        headers: { "content-type": "image/png" },
        body: greyPng(w, h, (x, y) => (x * 7 + y * 13) & 255),
      };
    }
    out.push({ index, task, ...c });
  }
  return out;
}
