// Decoders in Deno: imagescript's WebAssembly decoders against sharp (libvips through N-API), each through what
// lib/image runs (imagescript: `decodeImage`, header limits first; sharp: `sharpDecode`, the call `decodeImage` makes
// natively), into one reused buffer as the server's decode worker writes (fresh memory is paid in page faults). On the
// bench's synthetic pages (bench/_http.ts) and on screenshots of real documentation (bench/eval/render_pages.ts, the
// text evaluation's test pages, rendered with Chromium when missing). Part of `deno task bench` (docs/BENCHMARKS.md);
// alone it prints the table:
//
//   deno run -A bench/decoders.ts

import { checkImageHeader, decodeImage, nativeDecodes } from "../lib/image/decode.ts";
import { sharpDecode } from "../lib/image/_sharp.ts";
import { median } from "./_bench.ts";
import { benchImages } from "./_http.ts";
import { renderMissing } from "./eval/render_pages.ts";

/** One image's decode times, median ms. */
export interface DecoderRow {
  label: string;
  bytes: number;
  imagescript: number;
  sharp: number;
  /** Which of the two the native backend decodes this image with. */
  native: "imagescript" | "sharp";
}

/** The screenshots measured: one test page at each view size (phone 2×, laptop 1×, desktop 1.25×). */
const SCREENSHOTS = ["nodejs-fs-laptop@1", "zlib1g-dev-zlib_how-phone@2", "valgrind-mc-manual-desktop@1.25"];

/** The images: the bench's five, then the screenshots (skipped, with a line on stderr, where Chromium is missing). */
async function images(): Promise<{ label: string; bytes: Uint8Array }[]> {
  const out: { label: string; bytes: Uint8Array }[] = (await benchImages()).map((i) => ({
    label: `${i.label} (text lines)`,
    bytes: i.bytes,
  }));
  try {
    const pages = await renderMissing(undefined, SCREENSHOTS);
    for (const p of pages) {
      const bytes = await Deno.readFile(p.path);
      const { width, height } = await decodeImage(bytes);
      out.push({ label: `${width}×${height} PNG (screenshot: ${p.name})`, bytes });
    }
  } catch (err) {
    console.error(`decoders: no screenshots (${err instanceof Error ? err.message : err})`);
  }
  return out;
}

/** Median decode times of every image, `iter` decodes each (after one warm-up), the two decoders alternating. */
export async function measureDecoders(iter: number): Promise<DecoderRow[]> {
  let reused = new Uint8Array(0);
  const into = (n: number) => (reused = reused.length >= n ? reused : new Uint8Array(n)).subarray(0, n);
  const rows: DecoderRow[] = [];
  for (const { label, bytes } of await images()) {
    const header = checkImageHeader(bytes), pixels = header.width * header.height;
    const is: number[] = [], sh: number[] = [];
    for (let i = 0; i < iter + 1; i++) {
      let t = performance.now();
      await decodeImage(bytes, {}, undefined, { into });
      is.push(performance.now() - t);
      t = performance.now();
      await sharpDecode(bytes, pixels, into);
      sh.push(performance.now() - t);
    }
    rows.push({
      label,
      bytes: bytes.length,
      imagescript: median(is.slice(1)),
      sharp: median(sh.slice(1)),
      native: nativeDecodes(header) ? "sharp" : "imagescript",
    });
  }
  return rows;
}

/** The table's Markdown lines. */
export function decoderTable(rows: DecoderRow[]): string[] {
  return [
    "| image | bytes | imagescript ms | sharp ms | imagescript ÷ sharp | native backend |",
    "|---|---|---|---|---|---|",
    ...rows.map((d) =>
      `| ${d.label} | ${(d.bytes / 1024).toFixed(0)} KiB | ${d.imagescript.toFixed(2)} | ${d.sharp.toFixed(2)} | ${
        (d.imagescript / d.sharp).toFixed(2)
      }× | ${d.native} |`
    ),
  ];
}

if (import.meta.main) {
  console.log(decoderTable(await measureDecoders(Number(Deno.env.get("BENCH_ITER") ?? 16))).join("\n"));
  Deno.exit(0);
}
