// Shared by the evaluation's parts: the registry, the worker pool and the Segmenter the server uses, dataset-level
// mIoU, and the row type of the report.

import { ModelRegistry } from "../../lib/models.ts";
import { tuneMalloc } from "../../lib/libc.ts";
import { WorkerPool } from "../../lib/exec/pool.ts";
import { detectBackend } from "../../lib/exec/mod.ts";
import { loadConfig, type PoolLayout, poolLayout } from "../../lib/config.ts";
import { Segmenter } from "../../lib/segment.ts";
import { DecodePool } from "../../lib/image/decode_pool.ts";
import { DEFAULT_PLANNER_OPTIONS } from "../../lib/plan/mod.ts";
import { option } from "../_bench.ts";

export const ROOT = new URL("../../", import.meta.url);
// As the server does at start (main.ts), so wall-clock figures match what it serves.
tuneMalloc();
export const registry = await ModelRegistry.load();
export const workers = Math.max(1, navigator.hardwareConcurrency ?? 2);
const wasmLayout = { size: workers, threads: 1, loneThreads: 0 };
/** The evaluation's WASM pool, in words (as {@link serverSegmenter}'s label). */
export const wasmLabel = layoutLabel(wasmLayout);
export const pool = new WorkerPool({
  ...wasmLayout,
  queueLimit: 1024,
  backend: "wasm-simd",
  models: registry.workerModels(),
});
await pool.start();
export const limits = { maxPixels: 16e6, timeoutMs: 600_000, planner: DEFAULT_PLANNER_OPTIONS };
export const segmenter = new Segmenter(registry, pool, limits);

/** The backends the wall-clock lines run on: onnxruntime-web's WASM-SIMD and onnxruntime-node. */
export type ClockBackend = "wasm" | "native";
/** Each clock backend's runtime: in a target line, in a sentence ("… on WASM") and as a tag ("(WASM)"). */
export const CLOCK_NAMES: Record<ClockBackend, { long: string; on: string; short: string }> = {
  wasm: { long: "WASM-SIMD (onnxruntime-web)", on: "WASM", short: "WASM" },
  native: { long: "native (onnxruntime-node)", on: "the native backend", short: "native" },
};

/**
 * A Segmenter on `backend` in the pool layout the server starts with by default there (lib/config.ts `poolLayout`),
 * decoding as the server does (main.ts): in a DecodePool's worker, natively through sharp for JPEG and large PNG, the
 * pixels in a SharedArrayBuffer the pool reuses once a request is answered (decoded in place instead, each request
 * also copied its pixels into shared memory for the workers, which the server never does: 6–31 ms of a 1920×1080
 * page, native), for the wall-clock lines, with that layout in words; null where onnxruntime-node does not load.
 * `close()` stops both pools.
 */
export async function serverSegmenter(backend: ClockBackend): Promise<
  { segmenter: Segmenter; layout: PoolLayout; label: string; close: () => Promise<void> } | null
> {
  if (backend === "native" && (await detectBackend("auto")) !== "native") return null;
  const kind = backend === "native" ? "native" : "wasm-simd";
  const config = loadConfig({});
  const layout = poolLayout(config, kind);
  const served = new WorkerPool({ ...layout, queueLimit: 1024, backend: kind, models: registry.workerModels() });
  await served.start();
  const decoder = new DecodePool({ size: config.DECODE_WORKERS, timeoutMs: config.DECODE_TIMEOUT_MS });
  await decoder.decodeNatively(backend === "native");
  const segmenter = new Segmenter(
    registry,
    served,
    limits,
    // Copied to the worker, not transferred as the server's uploads are: the clock sends the same bytes again.
    (b, l, t) => decoder.decode(b, l, t),
    (image) => decoder.release(image),
  );
  const close = async () => {
    decoder.close();
    await served.close();
  };
  return { segmenter, layout, label: layoutLabel(layout), close };
}

/**
 * For a command-line script: {@link serverSegmenter} on the backend its `--backend` option names (native unless it
 * says wasm); where that does not load, a line saying so, and the script ends (exit 0).
 */
export async function servedByOption(): Promise<NonNullable<Awaited<ReturnType<typeof serverSegmenter>>>> {
  const backend = option("--backend", "native") as ClockBackend;
  const served = await serverSegmenter(backend);
  if (!served) {
    console.log(`${backend}: not available here`);
    Deno.exit(0);
  }
  return served;
}

/** A pool layout in words, e.g. "2 workers × 1 thread + a lone worker × 2". */
function layoutLabel({ size, threads, loneThreads }: PoolLayout): string {
  return `${size} worker${size > 1 ? "s" : ""} × ${threads} thread${threads > 1 ? "s" : ""}` +
    (loneThreads ? ` + a lone worker × ${loneThreads}` : "");
}

/** One line of a results table. */
export interface Row {
  family: string;
  name: string;
  miou: number;
  gflops: number;
  ms: number;
  /** Extra text shown in the table (e.g. glimpse steps). */
  note?: string;
}

/** Dataset-level mIoU: intersections and unions summed over all scenes, then averaged over classes. */
export class IoU {
  inter: number[];
  union: number[];
  constructor(readonly classes: number) {
    this.inter = new Array(classes).fill(0);
    this.union = new Array(classes).fill(0);
  }
  add(mask: Uint8Array, label: Uint8Array) {
    for (let p = 0; p < mask.length; p++) {
      const a = mask[p], b = label[p];
      if (a === b) {
        this.inter[a]++;
        this.union[a]++;
      } else {
        this.union[a]++;
        this.union[b]++;
      }
    }
  }
  get miou() {
    let s = 0, n = 0;
    for (let c = 0; c < this.classes; c++) {
      if (this.union[c]) {
        s += this.inter[c] / this.union[c];
        n++;
      }
    }
    return s / n;
  }
}
