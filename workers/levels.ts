// Windows run level by level (lib/onnx/levels.ts): the worker side of a `levels` job. Each segment of the model runs
// on every window in turn; between segments the level's pooled vectors are reduced over the page — every page
// position once (the windows' counted regions first, then what their halos add), and every position no window covers
// at the value the maps take far inside blank page of that position's colour (the blank graph on one pixel per
// colour, under the vectors known so far). The windows' FLOPs are the whole model's at their shapes: each node runs
// once per window, and the reduction does a global average pool's work.

import { type InputFormat, windowsTensor } from "../lib/image/mod.ts";
import type { LevelGraphs } from "../lib/onnx/levels.ts";
import { pageNames, type PageSource, poolStrides } from "../lib/onnx/page.ts";
import type { LevelsInput, Tensor } from "./protocol.ts";

/** The blank graphs' input: one pixel per colour (RGBA bytes, 4 per colour) in the model's format, [colours, C, 1, 1]. */
export function blankPixels(colours: Uint8Array, fmt: InputFormat & { channels: number }): Tensor {
  const n = colours.length / 4;
  const windows = Array.from({ length: n }, (_, x) => ({ x, y: 0, w: 1, h: 1 }));
  return {
    dims: [n, fmt.channels, 1, 1],
    data: windowsTensor({ width: n, height: 1, data: colours }, fmt, windows, 1, 1),
  };
}

/**
 * The inputs of a page graph (lib/onnx/page.ts) for one job: each window's model input, the blank pixels, and per
 * stride each window's pooling weights (1 ÷ page positions where {@link ownership} has it count a position, else 0)
 * and each blank colour's (its uncovered positions ÷ page positions): the pools' sums are then the page means
 * {@link pageMean} computes.
 */
export function pageFeeds(
  g: PageSource,
  job: Pick<LevelsInput, "windows" | "counted" | "page" | "cell" | "cellColour">,
  inputs: Tensor[],
  blankInput: Tensor,
): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = { [pageNames.blank(g)]: blankInput };
  inputs.forEach((t, i) => feeds[pageNames.input(g, i)] = t);
  for (const s of poolStrides(g)) {
    const own = ownership(job, s, blankInput.dims[0]), share = 1 / own.positions;
    job.windows.forEach((w, i) => {
      const weights = new Float32Array((w.h / s) * (w.w / s)), runs = own.owned[i];
      for (let j = 0; j < runs.length; j += 2) weights.fill(share, runs[j], runs[j + 1]);
      feeds[pageNames.weights(s, i)] = { dims: [weights.length, 1], data: weights };
    });
    feeds[pageNames.blankWeights(s)] = {
      dims: [1, own.uncovered.length],
      data: Float32Array.from(own.uncovered, (u) => u * share),
    };
  }
  return feeds;
}

/** Runs segment `k` of the model, or level `k`'s blank graph, on named inputs. */
export type SegmentRunner = (
  graph: "segment" | "blank",
  k: number,
  feeds: Record<string, Tensor>,
) => Promise<Record<string, Tensor>>;

/**
 * Every window's model output ([1, C, h, w]), with pooled vectors over the page.
 *
 * @param input the model input of window `i` (only segment 0 reads it; it may reuse one buffer)
 * @param blankInput the model input of one pixel per blank colour, [colours, C, 1, 1]
 * @param vectors receives the pooled vectors by name (given some, the job uses them instead of reducing those)
 */
export async function runLevels(
  g: LevelGraphs,
  job: Omit<LevelsInput, "kind" | "image" | "colours">,
  input: (i: number) => Tensor,
  blankInput: Tensor,
  run: SegmentRunner,
  vectors = new Map<string, Tensor>(),
): Promise<Tensor[]> {
  const stores = job.windows.map(() => new Map<string, Tensor>());
  const owners = new Map<number, Ownership>();
  for (let k = 0; k <= g.levels; k++) {
    const seg = g.segments[k];
    const maps = new Set(g.pools.filter((p) => p.level === k).map((p) => p.map));
    for (const [i, store] of stores.entries()) {
      const feeds: Record<string, Tensor> = {};
      for (const name of seg.inputs) {
        const t = name === g.input ? input(i) : vectors.get(name) ?? store.get(name);
        if (!t) throw new Error(`level segment ${k} needs ${name}, which nothing computed`);
        feeds[name] = t;
      }
      const out = await run("segment", k, feeds);
      for (const name of seg.outputs) store.set(name, out[name]);
      // What no later segment reads goes now; this level's maps once they are pooled.
      for (const name of g.lastUse[k]) if (!maps.has(name)) store.delete(name);
    }
    if (k === g.levels) break;
    const blankFeeds: Record<string, Tensor> = {};
    for (const name of g.blank[k].inputs) blankFeeds[name] = name === g.input ? blankInput : vectors.get(name)!;
    const blank = await run("blank", k, blankFeeds);
    for (const p of g.pools) {
      if (p.level !== k || vectors.has(p.name)) continue;
      const maps = stores.map((s) => s.get(p.map)!);
      const stride = job.windows[0].h / maps[0].dims[2];
      if (!owners.has(stride)) owners.set(stride, ownership(job, stride, blankInput.dims[0]));
      vectors.set(p.name, pageMean(maps, blank[p.map], owners.get(stride)!));
    }
    for (const name of g.lastUse[k]) if (maps.has(name)) { for (const s of stores) s.delete(name); }
  }
  return stores.map((s) => s.get(g.output)!);
}

/** Which map positions each window counts at one stride, and how many positions of each blank colour none covers. */
export interface Ownership {
  /** Per window, the runs of its map's plane it counts: [start, end) index pairs, in order. */
  owned: Int32Array[];
  /** Per blank colour, uncovered positions. */
  uncovered: Float64Array;
  /** Positions of the page at this stride. */
  positions: number;
}

/**
 * Every page position at `stride` once: each window's counted region first, then what its halo adds; the rest by the
 * blank colour of its cell. The same for every map of that stride.
 */
export function ownership(
  job: Pick<LevelsInput, "windows" | "counted" | "page" | "cell" | "cellColour">,
  stride: number,
  colours: number,
): Ownership {
  const { windows, counted, page, cell, cellColour } = job;
  const gw = Math.round(page.w / stride), gh = Math.round(page.h / stride);
  const seen = new Uint8Array(gw * gh);
  // Runs of consecutive unseen positions (parts of a region's rows), so that the sums read each run straight through.
  const runs: number[][] = windows.map(() => []);
  for (const boxes of [counted, windows]) {
    windows.forEach((win, k) => {
      const r = boxes[k], w = win.w / stride, h = win.h / stride, ox = win.x / stride, oy = win.y / stride;
      const x0 = Math.max(0, (r.x - win.x) / stride), y0 = Math.max(0, (r.y - win.y) / stride);
      const x1 = Math.min(w, (r.x + r.w - win.x) / stride), y1 = Math.min(h, (r.y + r.h - win.y) / stride);
      for (let y = y0; y < y1; y++) {
        let start = -1;
        for (let x = x0; x <= x1; x++) {
          const at = (y + oy) * gw + x + ox;
          const take = x < x1 && !seen[at];
          if (take) seen[at] = 1;
          if (take && start < 0) start = x;
          if (!take && start >= 0) {
            runs[k].push(y * w + start, y * w + x);
            start = -1;
          }
        }
      }
    });
  }
  const cols = Math.ceil(page.w / cell);
  const uncovered = new Float64Array(colours);
  for (let y = 0; y < gh; y++) {
    const row = Math.floor((y * stride) / cell) * cols;
    for (let x = 0; x < gw; x++) if (!seen[y * gw + x]) uncovered[cellColour[row + Math.floor((x * stride) / cell)]]++;
  }
  const owned = runs.map((l) => Int32Array.from(l));
  return { owned, uncovered, positions: gw * gh };
}

/**
 * One pooled vector [1, C, 1, 1]: the mean over the page of a map given per window ([1, C, h, w] each), each position
 * as `own` assigns it, uncovered positions at the blank map's value ([colours, C, ·, ·], constant over space) for
 * their colour. Channel by channel: the maps are channel-major, so each plane is read in order.
 */
export function pageMean(maps: Tensor[], blank: Tensor, own: Ownership): Tensor {
  const C = maps[0].dims[1], colours = blank.dims[0], bplane = blank.dims[2] * blank.dims[3];
  const v = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let k = 0; k < maps.length; k++) {
      const runs = own.owned[k], d = maps[k].data, base = c * maps[k].dims[2] * maps[k].dims[3];
      for (let j = 0; j < runs.length; j += 2) s += runSum(d, base + runs[j], base + runs[j + 1]);
    }
    for (let q = 0; q < colours; q++) s += own.uncovered[q] * blank.data[(q * C + c) * bplane];
    v[c] = s / own.positions;
  }
  return { dims: [1, C, 1, 1], data: v };
}

/**
 * d[start] + … + d[end − 1], in four sums side by side: one sum waits for each add to finish before the next, four
 * keep the adder busy (a 1920×1088 page's ten pooled vectors: 59 → 14 ms on WASM, one thread; .scratch/wasmprof.ts).
 */
function runSum(d: Float32Array, start: number, end: number): number {
  let a = 0, b = 0, c = 0, e = 0, i = start;
  for (; i + 3 < end; i += 4) {
    a += d[i];
    b += d[i + 1];
    c += d[i + 2];
    e += d[i + 3];
  }
  for (; i < end; i++) a += d[i];
  return a + b + c + e;
}
