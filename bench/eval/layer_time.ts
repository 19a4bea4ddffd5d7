// Where the text detector's time goes, against where its FLOPs go: `deno run -A bench/eval/layer_time.ts [--size
// 1088x1920] [--threads 1] [--runs 4] [--front 0.896] [--tail 0.375]` runs the graph the workers load (lib/models.ts
// `workerModels`: elementwise runs folded) on onnxruntime-node with its profiler at that input size, sums each kernel's
// time into the model's tail (lib/onnx/tail.ts: what the default plan runs near ink only) and the rest (its front, run
// on every window with its halo), and prints each part's share of the time and of the FLOPs (the model's own graph,
// lib/onnx/counter.ts). A part with a larger share of the time than of the FLOPs costs more time per FLOP. A plan that
// runs the front on `--front` of the page and the tail on `--tail` (docs/EVAL.md's "what sets the default's price" on
// the test screenshots) then spends, at each part's own time per FLOP and with no overhead at all, the printed share
// of full resolution's time for its share of the FLOPs: the bound on the wall-clock target's ratio for that plan's
// shape.

import * as ort from "onnxruntime-node";
import { registry } from "./_common.ts";
import { payloadOf, rawFields } from "../../lib/onnx/_wire.ts";
import { TAIL_DUMMY } from "../../lib/onnx/page.ts";

const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const [height, width] = arg("--size", "1088x1920").split("x").map(Number);
const threads = Number(arg("--threads", "1")), runs = Number(arg("--runs", "4"));
const frontShare = Number(arg("--front", "0.896")), tailShare = Number(arg("--tail", "0.375"));

const MODEL = "text-ppocrv4-det";
const model = registry.model(MODEL);
const served = registry.workerModels().find((w) => w.id === MODEL)!;
const m = model.spec.input.multiple;
if (height % m || width % m) throw new Error(`--size: both sides a multiple of ${m}`);
const dims = [1, model.spec.input.channels, height, width];

// The tail's nodes in the served graph (its page parts: each node encoded, flagged when in the tail), by name and by
// output (the profiler names the kernels it re-lays out by their output, with "_nchwc" added).
const fields = (bytes: Uint8Array) => {
  const f = rawFields(bytes);
  // A node as its graph holds it (field 1 of GraphProto) or bare (NodeProto: outputs 2, name 3).
  return f.length === 1 && f[0].field === 1 ? rawFields(payloadOf(f[0])) : f;
};
const text = new TextDecoder();
const { window: parts } = served.levels!.page;
const tailNames = new Set<string>(), known = new Set<string>();
parts.nodes.forEach((bytes, i) => {
  for (const f of fields(bytes)) {
    if (f.field !== 2 && f.field !== 3) continue;
    const name = text.decode(payloadOf(f));
    known.add(name);
    if (parts.tail?.[i]) tailNames.add(name);
  }
});
if (!tailNames.size) throw new Error(`${MODEL} has no tail`);

const dir = await Deno.makeTempDir({ prefix: "layer_time_" });
const session = await ort.InferenceSession.create(served.bytes, {
  executionProviders: ["cpu"],
  graphOptimizationLevel: "all",
  executionMode: "sequential",
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  enableMemPattern: false,
  enableProfiling: true,
  profileFilePrefix: `${dir}/profile`,
});
// Any pixels: a convolution's time does not depend on its values.
const x = new ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b)).fill(0.5), dims);
const feeds = { [session.inputNames[0]]: x };
await session.run(feeds); // warm-up, left out below
const warm = performance.now();
for (let i = 0; i < runs; i++) await session.run(feeds);
const wallMs = (performance.now() - warm) / runs;
session.endProfiling();
const file = [...Deno.readDirSync(dir)].find((e) => e.name.startsWith("profile"))!.name;
type Event = { cat?: string; name: string; dur: number };
const events = JSON.parse(await Deno.readTextFile(`${dir}/${file}`)) as Event[];
await Deno.remove(dir, { recursive: true });

// Per run, the warm-up's events dropped: each kernel's time in the tail, the front, or layout changes between them.
type Timed = Event & { ts: number };
const sessionRuns = (events as Timed[]).filter((e) => e.cat === "Session" && e.name === "model_run")
  .sort((a, b) => a.ts - b.ts);
const warmEnd = sessionRuns[0].ts + sessionRuns[0].dur;
const time = { tail: 0, front: 0, layout: 0 };
for (const e of events as Timed[]) {
  if (e.cat !== "Node" || !e.name.endsWith("_kernel_time") || e.ts < warmEnd) continue;
  const name = e.name.slice(0, -"_kernel_time".length).replace(/_nchwc$/, "");
  const part = tailNames.has(name) ? "tail" : known.has(name) ? "front" : "layout";
  time[part] += e.dur / 1000 / (sessionRuns.length - 1);
}
const total = time.tail + time.front + time.layout;
// The front's share counts the layout changes it makes (they are on its maps but for the tail's input).
const tailTime = time.tail / total, frontTime = 1 - tailTime;

const { cost } = model.levels!, whole = model.counter.count(dims).flops;
const tailFlops = (cost.window(dims).flops - cost.window(dims, [[TAIL_DUMMY, TAIL_DUMMY]]).flops) / whole;
const frontFlops = 1 - tailFlops;
const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
console.log(
  `${MODEL} at ${width}×${height}, onnxruntime-node, ${threads} thread(s), ${runs} runs: ${wallMs.toFixed(1)} ms ` +
    `per run (kernels ${total.toFixed(1)} ms, of which layout changes ${time.layout.toFixed(1)})`,
);
console.log(
  `tail: ${pct(tailFlops)} of the FLOPs, ${pct(tailTime)} of the time (${(tailTime / tailFlops).toFixed(2)}× the ` +
    `model's mean time per FLOP); front: ${pct(frontFlops)} of the FLOPs, ${pct(frontTime)} of the time ` +
    `(${(frontTime / frontFlops).toFixed(2)}×)`,
);
const flops = frontFlops * frontShare + tailFlops * tailShare, t = frontTime * frontShare + tailTime * tailShare;
console.log(
  `a plan running the front on ${pct(frontShare)} of the page and the tail on ${pct(tailShare)}: FLOPs ${pct(flops)} ` +
    `of full, time at best ${pct(t)} (${(t / flops).toFixed(2)}× per FLOP): time saving at most ` +
    `${pct((1 - t) / (1 - flops))} of the FLOP saving`,
);
Deno.exit(0);
