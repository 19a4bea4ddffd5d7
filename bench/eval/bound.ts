// What bounds docs/EVAL.md's wall-clock line for the text default's plan shape: each part of the detector (its front,
// its tail) at its own time per FLOP (./layer_time.ts measures them), and, end to end, the part of a request no plan
// saves (decoding the image). Pure: the numbers come from the caller.

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

/** A share as a percentage with one decimal. */
export const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

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
export type SavableShares = Partial<Record<LayerTime["backend"], number>>;

/**
 * docs/EVAL.md's sentence on what bounds the wall-clock target for a plan that runs the front on `front` of the page
 * and the tail on `tail`, from one `layerTime` (./layer_time.ts) per thread count; with `shares`, end to end as well,
 * at the thread count the server runs a lone request on there (`threads`).
 */
export function boundSentence(
  times: LayerTime[],
  front: number,
  tail: number,
  shares: SavableShares = {},
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
  const served = times.flatMap((t, i) => {
    const share = shares[t.backend];
    return t.threads === threads && share !== undefined ? [{ t, share, saving: bounds[i].saving * share }] : [];
  });
  const short = served.filter((e) => e.saving < 0.9);
  const endToEnd = served.length
    ? " End to end, every plan also pays for decoding the image: the rest of a request is " +
      `${served.map((e) => pct(e.share)).join(" / ")} of full resolution's time on ${
        served.map((e) => on(e.t)).join(" / ")
      } (the wall-clock lines' runs, mean over images), so there the plan's shape allows at best ${
        served.map((e) => pct(e.saving)).join(" / ")
      } of the FLOP saving` +
      (short.length
        ? `: the 90% line is out of its reach on ${short.map((e) => on(e.t)).join(" and ")}, overhead or not.`
        : ".")
    : "";
  const beyondEnd = new Set(short.map((e) => e.t));
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
