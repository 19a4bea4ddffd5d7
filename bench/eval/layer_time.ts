// Where the text detector's time goes, against where its FLOPs go: `deno run -A bench/eval/layer_time.ts [--size
// 1088x1920] [--threads 1] [--runs 4] [--front 0.896] [--tail 0.375]` runs the graph the workers load (lib/models.ts
// `workerModels`: elementwise runs folded) on onnxruntime-node with its profiler at that input size, sums each kernel's
// time into the model's tail (lib/onnx/tail.ts: what the default plan runs near ink only) and the rest (its front, run
// on every window with its halo), and prints each part's share of the time and of the FLOPs (the model's own graph,
// lib/onnx/counter.ts). A part with a larger share of the time than of the FLOPs costs more time per FLOP. A plan that
// runs the front on `--front` of the page and the tail on `--tail` (docs/EVAL.md's "what sets the default's price" on
// the test screenshots) then spends, at each part's own time per FLOP and with no overhead at all, the printed share
// of full resolution's time for its share of the FLOPs: the bound on the wall-clock target's ratio for that plan's
// shape. docs/EVAL.md's text section (`deno task eval`) reports the same bound for the test screenshots' shares.

import * as ort from "onnxruntime-node";
import { registry } from "./_common.ts";
import { payloadOf, rawFields } from "../../lib/onnx/_wire.ts";
import { TAIL_DUMMY } from "../../lib/onnx/page.ts";
import { option as arg } from "../_bench.ts";
import { nativeSessionOptions } from "../../workers/runtime_node.ts";

const MODEL = "text-ppocrv4-det";

/** Where one run of the detector's served graph spends its time: its tail's and front's shares of time and FLOPs. */
export interface LayerTime {
  width: number;
  height: number;
  threads: number;
  /** Wall-clock per run, ms, and the kernels' sum (of which changes of memory layout between kernels). */
  wallMs: number;
  kernelMs: number;
  layoutMs: number;
  /** The tail's share of the kernels' time and of the FLOPs (the front: the rest of each). */
  tailTime: number;
  tailFlops: number;
}

/** The tail's nodes in the served graph, by name and output, and every node's (the page parts flag the tail's). */
function tailNodeNames(served: NonNullable<ReturnType<typeof registry.workerModels>[number]["levels"]>) {
  // A node as its graph holds it (field 1 of GraphProto) or bare (NodeProto: outputs 2, name 3).
  const fields = (bytes: Uint8Array) => {
    const f = rawFields(bytes);
    return f.length === 1 && f[0].field === 1 ? rawFields(payloadOf(f[0])) : f;
  };
  const text = new TextDecoder(), parts = served.page.window;
  const tail = new Set<string>(), known = new Set<string>();
  parts.nodes.forEach((bytes, i) => {
    for (const f of fields(bytes)) {
      if (f.field !== 2 && f.field !== 3) continue;
      const name = text.decode(payloadOf(f));
      known.add(name);
      if (parts.tail?.[i]) tail.add(name);
    }
  });
  if (!tail.size) throw new Error(`${MODEL} has no tail`);
  return { tail, known };
}

/** Profiles `runs` runs (after a warm-up) of the detector's served graph at width×height on onnxruntime-node. */
export async function layerTime(width: number, height: number, threads = 1, runs = 4): Promise<LayerTime> {
  const model = registry.model(MODEL);
  const served = registry.workerModels().find((w) => w.id === MODEL)!;
  const m = model.spec.input.multiple;
  if (height % m || width % m) throw new Error(`layer time: both sides a multiple of ${m}`);
  const dims = [1, model.spec.input.channels, height, width];
  // The profiler names the kernels it re-lays out by their output, with "_nchwc" added.
  const { tail, known } = tailNodeNames(served.levels!);
  const dir = await Deno.makeTempDir({ prefix: "layer_time_" });
  const session = await ort.InferenceSession.create(served.bytes, {
    ...nativeSessionOptions(threads),
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
  await session.release();
  const file = [...Deno.readDirSync(dir)].find((e) => e.name.startsWith("profile"))!.name;
  type Event = { cat?: string; name: string; dur: number; ts: number };
  const events = JSON.parse(await Deno.readTextFile(`${dir}/${file}`)) as Event[];
  await Deno.remove(dir, { recursive: true });

  // Per run, the warm-up's events dropped: each kernel's time in the tail, the front, or layout changes between them.
  const sessionRuns = events.filter((e) => e.cat === "Session" && e.name === "model_run").sort((a, b) => a.ts - b.ts);
  const warmEnd = sessionRuns[0].ts + sessionRuns[0].dur;
  const time = { tail: 0, front: 0, layout: 0 };
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time") || e.ts < warmEnd) continue;
    const name = e.name.slice(0, -"_kernel_time".length).replace(/_nchwc$/, "");
    const part = tail.has(name) ? "tail" : known.has(name) ? "front" : "layout";
    time[part] += e.dur / 1000 / (sessionRuns.length - 1);
  }
  const kernelMs = time.tail + time.front + time.layout;
  const { cost } = model.levels!, whole = model.counter.count(dims).flops;
  const tailFlops = (cost.window(dims).flops - cost.window(dims, [[TAIL_DUMMY, TAIL_DUMMY]]).flops) / whole;
  // The front's time counts the layout changes (on its maps, some for the tail's input).
  return { width, height, threads, wallMs, kernelMs, layoutMs: time.layout, tailTime: time.tail / kernelMs, tailFlops };
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
 * docs/EVAL.md's sentence on what bounds the wall-clock target for a plan that runs the front on `front` of the page and
 * the tail on `tail`, from one {@link layerTime} per thread count.
 */
export function boundSentence(times: LayerTime[], front: number, tail: number): string {
  if (!times.length) return "";
  const { width, height } = times[0], each = (f: (t: LayerTime, i: number) => string) => times.map(f).join(" / ");
  const bounds = times.map((t) => planBound(t, front, tail));
  const threads = each((t) => String(t.threads)), tailTime = each((t) => pct(t.tailTime));
  const time = each((_, i) => pct(bounds[i].time)), saving = each((_, i) => pct(bounds[i].saving));
  return ` What bounds it on the native backend, with no overhead at all: the model's tail is ` +
    `${pct(times[0].tailFlops)} of its FLOPs at ${width}×${height} but ${tailTime} of its time on ${threads} ` +
    "thread(s) (`bench/eval/layer_time.ts`: onnxruntime-node's profiler on the served graph; the front's depthwise " +
    "and 1×1 convolutions and resizes take more time per FLOP than the tail's dense 3×3 convolutions), so a plan " +
    `that runs the front on ${pct(front)} of the page and the tail on ${pct(tail)} (the screenshots' means above) ` +
    `spends at best ${time} of full resolution's time for ${pct(bounds[0].flops)} of its FLOPs: ${saving} of the ` +
    "FLOP saving. The 90% line needs a plan that saves as much of the front's FLOPs as of the tail's.";
}

if (import.meta.main) {
  const [height, width] = arg("--size", "1088x1920").split("x").map(Number);
  const t = await layerTime(width, height, Number(arg("--threads", "1")), Number(arg("--runs", "4")));
  const front = Number(arg("--front", "0.896")), tail = Number(arg("--tail", "0.375"));
  console.log(
    `${MODEL} at ${width}×${height}, onnxruntime-node, ${t.threads} thread(s): ${t.wallMs.toFixed(1)} ms per run ` +
      `(kernels ${t.kernelMs.toFixed(1)} ms, of which layout changes ${t.layoutMs.toFixed(1)})`,
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
