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
import { type LayerTime, pct, planBound } from "./bound.ts";
import { nativeSessionOptions } from "../../workers/runtime_node.ts";

const MODEL = "text-ppocrv4-det";

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
