// Where the text detector's time goes, against where its FLOPs go: `deno run -A bench/eval/layer_time.ts [--size
// 1088x1920] [--threads 1] [--backend node|web] [--runs 7] [--front 0.896] [--tail 0.375]` times the graph the workers
// load (lib/models.ts `workerModels`: elementwise runs folded) at that input size against its front alone (the same
// graph cut before its tail, lib/onnx/tail.ts: what the default plan runs on every window with its halo; the tail runs
// near ink only), interleaved, on onnxruntime-node or onnxruntime-web (WASM), and prints each part's share of the time
// and of the FLOPs (the model's own graph, lib/onnx/counter.ts). A part with a larger share of the time than of the
// FLOPs costs more time per FLOP. A plan that runs the front on `--front` of the page and the tail on `--tail`
// (docs/EVAL.md's "what sets the default's price" on the test screenshots) then spends, at each part's own time per
// FLOP and with no overhead at all, the printed share of full resolution's time for its share of the FLOPs: the bound
// on the wall-clock target's ratio for that plan's shape. docs/EVAL.md's text section (`deno task eval`) reports the
// same bound for the test screenshots' shares.
//
// Timed whole, not summed from onnxruntime's profiler: the profiler's kernel times, attributed to the tail's nodes by
// name, read the tail at 39.5 % of the time at 1920×1088 on one thread (this sentence in docs/EVAL.md before), where
// the front run alone takes 50.7 % of the whole model's wall-clock (`.scratch`-measured: 132.9 of 262.3 ms), and the
// front and the tail, each run alone, add up to the whole (64.0 + 61.5 ms vs 62.6 + 63.6 at 1376×768).

import { registry } from "./_common.ts";
import { assemble, constantNode, nodeIo, opNode as node } from "../../lib/onnx/_splice.ts";
import { type PageSource, TAIL_DUMMY } from "../../lib/onnx/page.ts";
import { option as arg } from "../_bench.ts";
import { nativeSessionOptions } from "../../workers/runtime_node.ts";

const MODEL = "text-ppocrv4-det";

/** Where one run of the detector's served graph spends its time: its tail's and front's shares of time and FLOPs. */
export interface LayerTime {
  width: number;
  height: number;
  threads: number;
  backend: "node" | "web";
  /** Median wall-clock per run of the whole graph and of its front alone, ms. */
  wholeMs: number;
  frontMs: number;
  /** The tail's share of the time (the whole's less the front's) and of the FLOPs (the front: the rest of each). */
  tailTime: number;
  tailFlops: number;
}

/**
 * The served graph cut before its tail: every node but the tail's (and but the pools of maps the tail makes), its
 * outputs the maps the tail reads, each sliced to its first position (made whole, handed out as one value each).
 */
export function frontGraph(g: PageSource): Uint8Array {
  const { page, pools, tail } = g;
  const made = new Set<string>();
  const nodes: Uint8Array[] = [...page.shared];
  page.window.nodes.forEach((bytes, i) => {
    if (page.window.tail?.[i]) return;
    nodes.push(bytes);
    const { outputs } = nodeIo(bytes);
    outputs.forEach((t) => made.add(t));
    // Each pool right after the node that makes its map (the nodes stay in the file's order).
    for (const p of pools) if (outputs.includes(p.map)) nodes.push(node("GlobalAveragePool", [p.map], [p.name]));
  });
  const at = (name: string, v: number[]) => constantNode(name, [v.length], BigInt64Array.from(v, BigInt));
  nodes.push(at("front:starts", [0, 0]), at("front:ends", [1, 1]), at("front:axes", [2, 3]));
  const outputs = tail.cuts.map((c) => `${c.name}::corner`);
  tail.cuts.forEach((c, k) =>
    nodes.push(node("Slice", [c.name, "front:starts", "front:ends", "front:axes"], [outputs[k]]))
  );
  if (tail.cuts.some((c) => !made.has(c.name))) throw new Error(`${MODEL}'s tail reads a map its front does not make`);
  return assemble({ ...page, nodes }, { inputs: [g.input], outputs });
}

/**
 * Times `runs` runs (after a warm-up) of the detector's served graph and of its front alone at width×height, in turn,
 * on onnxruntime-node or onnxruntime-web (whose threads are set once per process: the first call's count).
 */
export async function layerTime(
  width: number,
  height: number,
  threads = 1,
  runs = 7,
  backend: "node" | "web" = "node",
): Promise<LayerTime> {
  const model = registry.model(MODEL);
  const served = registry.workerModels().find((w) => w.id === MODEL)!;
  const m = model.spec.input.multiple;
  if (height % m || width % m) throw new Error(`layer time: both sides a multiple of ${m}`);
  const dims = [1, model.spec.input.channels, height, width];
  const ort = backend === "web" ? await import("onnxruntime-web") : await import("onnxruntime-node");
  if (backend === "web") ort.env.wasm.numThreads = threads;
  const options = backend === "web" ? { executionProviders: ["wasm"] } : nativeSessionOptions(threads);
  const sessions = [served.bytes, frontGraph(served.levels!)].map((b) => ort.InferenceSession.create(b, options));
  const [whole, front] = await Promise.all(sessions);
  // Any pixels: a convolution's time does not depend on its values.
  const x = new ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b)).fill(0.5), dims);
  const times = [[], []] as number[][];
  for (let r = 0; r <= runs; r++) {
    for (const [k, s] of [whole, front].entries()) {
      const t = performance.now();
      await s.run({ [s.inputNames[0]]: x });
      if (r) times[k].push(performance.now() - t);
    }
  }
  await Promise.all([whole.release(), front.release()]);
  const [wholeMs, frontMs] = times.map((t) => t.sort((a, b) => a - b)[t.length >> 1]);
  const { cost } = model.levels!, flops = model.counter.count(dims).flops;
  const tailFlops = (cost.window(dims).flops - cost.window(dims, [[TAIL_DUMMY, TAIL_DUMMY]]).flops) / flops;
  return { width, height, threads, backend, wholeMs, frontMs, tailTime: 1 - frontMs / wholeMs, tailFlops };
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

/**
 * What a plan that runs the front on `front` of the page and the tail on `tail` spends at best, at each part's own time
 * per FLOP and no overhead: its FLOPs and time as shares of full resolution's, and its time saving as a share of its
 * FLOP saving.
 */
export function planBound(t: LayerTime, front: number, tail: number) {
  const flops = (1 - t.tailFlops) * front + t.tailFlops * tail, time = (1 - t.tailTime) * front + t.tailTime * tail;
  return { flops, time, saving: (1 - time) / (1 - flops) };
}

/**
 * Per backend of {@link LayerTime} (`web`: the WASM server, `node`: the native one), the share of a full-resolution
 * request's wall-clock a plan could save at all, where the wall-clock lines measured it: all but decoding the image,
 * which every plan pays alike (a generous bound: the planner, the model's input and the response count as savable).
 */
export type ModelShares = Partial<Record<LayerTime["backend"], number>>;

/**
 * docs/EVAL.md's sentence on what bounds the wall-clock target for a plan that runs the front on `front` of the page and
 * the tail on `tail`, from one {@link layerTime} per thread count; with `shares`, end to end as well, at the thread
 * count the server runs a lone request on there (`threads`).
 */
export function boundSentence(
  times: LayerTime[],
  front: number,
  tail: number,
  shares: ModelShares = {},
  threads = 2,
): string {
  if (!times.length) return "";
  const { width, height } = times[0], each = (f: (t: LayerTime, i: number) => string) => times.map(f).join(" / ");
  const bounds = times.map((t) => planBound(t, front, tail));
  const on = (t: LayerTime) =>
    `${t.threads} ${t.backend === "web" ? "WASM" : "native"} thread${t.threads > 1 ? "s" : ""}`;
  const tailTime = each((t) => pct(t.tailTime));
  const time = each((_, i) => pct(bounds[i].time)), saving = each((_, i) => pct(bounds[i].saving));
  // End to end: what a plan can save of full resolution's time saves at best the shape's share; the decode nothing.
  const served = times.flatMap((t, i) =>
    t.threads === threads && shares[t.backend] !== undefined
      ? [{ t, share: shares[t.backend]!, saving: bounds[i].saving * shares[t.backend]! }]
      : []
  );
  const endToEnd = served.length
    ? " End to end, every plan also pays for decoding the image: the rest of a request is " +
      `${served.map((e) => pct(e.share)).join(" / ")} of full resolution's time on ${
        served.map((e) => on(e.t)).join(" / ")
      } (the wall-clock lines' runs, mean over images), so there the plan's shape allows at best ${
        served.map((e) => pct(e.saving)).join(" / ")
      } of the FLOP saving` +
      (served.every((e) => e.saving < 0.9) ? ": the 90% line is out of its reach on both, overhead or not." : ".")
    : "";
  const beyondEnd = new Set(served.filter((e) => e.saving < 0.9).map((e) => e.t));
  const within = times.filter((t, i) => bounds[i].saving >= 0.9 && !beyondEnd.has(t)).map(on);
  const beyond = times.filter((_, i) => bounds[i].saving < 0.9).map(on);
  return ` What the plan's shape allows, with no overhead at all: the model's tail is ${pct(times[0].tailFlops)} of ` +
    `its FLOPs at ${width}×${height} and ${tailTime} of its time on ${each(on)} (\`bench/eval/layer_time.ts\`: the ` +
    "served graph and its front alone, cut before the tail, timed in turn; the tail's share is what the front alone " +
    `does not take), so a plan that runs the front on ${pct(front)} of the page and the tail on ${pct(tail)} (the ` +
    `screenshots' means above) spends at best ${time} of full resolution's time for ${pct(bounds[0].flops)} of its ` +
    `FLOPs: ${saving} of the FLOP saving.` +
    (within.length
      ? ` On ${within.join(" and ")} the 90% line is within the plan's shape: what the default loses below it there ` +
        "is overhead (the planner, and in the page graph the pools' sums, the blank part and the tail's slots, many " +
        "small kernels)."
      : "") +
    (beyond.length
      ? ` On ${beyond.join(" and ")} it needs a plan that saves as much of the front's FLOPs as of the tail's.`
      : "") +
    endToEnd;
}

if (import.meta.main) {
  const [height, width] = arg("--size", "1088x1920").split("x").map(Number);
  const backend = arg("--backend", "node") === "web" ? "web" : "node";
  const t = await layerTime(width, height, Number(arg("--threads", "1")), Number(arg("--runs", "7")), backend);
  const front = Number(arg("--front", "0.896")), tail = Number(arg("--tail", "0.375"));
  console.log(
    `${MODEL} at ${width}×${height}, onnxruntime-${backend}, ${t.threads} thread(s): ${t.wholeMs.toFixed(1)} ms per ` +
      `run, its front alone ${t.frontMs.toFixed(1)} ms (medians)`,
  );
  const perFlop = (time: number, flops: number) => (time / flops).toFixed(2);
  console.log(
    `tail: ${pct(t.tailFlops)} of the FLOPs, ${pct(t.tailTime)} of the time (${perFlop(t.tailTime, t.tailFlops)}× ` +
      `the model's mean time per FLOP); front: ${pct(1 - t.tailFlops)} of the FLOPs, ${pct(1 - t.tailTime)} of the ` +
      `time (${perFlop(1 - t.tailTime, 1 - t.tailFlops)}×)`,
  );
  const b = planBound(t, front, tail);
  console.log(
    `a plan running the front on ${pct(front)} of the page and the tail on ${pct(tail)}: FLOPs ${pct(b.flops)} of ` +
      `full, time at best ${pct(b.time)} (${(b.time / b.flops).toFixed(2)}× per FLOP): time saving at most ` +
      `${pct(b.saving)} of the FLOP saving`,
  );
  Deno.exit(0);
}
