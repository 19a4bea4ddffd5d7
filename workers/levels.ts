// Windows run level by level (lib/onnx/levels.ts): the worker side of a `levels` job. Each segment of the model runs
// on every window in turn; between segments the level's pooled vectors are reduced over the page — every page
// position once (the windows' counted regions first, then what their halos add), and every position no window covers
// at the value the maps take far inside blank page of that position's colour (the blank graph on one pixel per
// colour, under the vectors known so far). The windows' FLOPs are the whole model's at their shapes: each node runs
// once per window, and the reduction does a global average pool's work.

import type { LevelGraphs } from "../lib/onnx/levels.ts";
import type { LevelsInput, Tensor } from "./protocol.ts";

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
      if (p.level === k && !vectors.has(p.name)) {
        vectors.set(p.name, pageMean(job, stores.map((s) => s.get(p.map)!), blank[p.map]));
      }
    }
    for (const name of g.lastUse[k]) if (maps.has(name)) { for (const s of stores) s.delete(name); }
  }
  return stores.map((s) => s.get(g.output)!);
}

/**
 * One pooled vector [1, C, 1, 1]: the mean over the page of a map given per window ([1, C, h, w] each, stride =
 * window height / h), every page position once, uncovered positions at the blank map's value ([colours, C, ·, ·],
 * constant over space) for their cell's colour.
 */
export function pageMean(
  job: Pick<LevelsInput, "windows" | "counted" | "page" | "cell" | "cellColour">,
  maps: Tensor[],
  blank: Tensor,
): Tensor {
  const { windows, counted, page, cell, cellColour } = job;
  const C = maps[0].dims[1];
  const stride = windows[0].h / maps[0].dims[2];
  const gw = Math.round(page.w / stride), gh = Math.round(page.h / stride);
  const seen = new Uint8Array(gw * gh);
  const sum = new Float64Array(C);
  for (const boxes of [counted, windows]) {
    maps.forEach((t, k) => {
      const [, , h, w] = t.dims, d = t.data, win = windows[k], r = boxes[k];
      const ox = win.x / stride, oy = win.y / stride;
      const x0 = Math.max(0, (r.x - win.x) / stride), y0 = Math.max(0, (r.y - win.y) / stride);
      const x1 = Math.min(w, (r.x + r.w - win.x) / stride), y1 = Math.min(h, (r.y + r.h - win.y) / stride);
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const at = (y + oy) * gw + x + ox;
          if (seen[at]) continue;
          seen[at] = 1;
          for (let c = 0; c < C; c++) sum[c] += d[c * h * w + y * w + x];
        }
      }
    });
  }
  // Uncovered positions, by the colour of their cell.
  const cols = Math.ceil(page.w / cell), colours = blank.dims[0];
  const uncovered = new Float64Array(colours);
  for (let y = 0; y < gh; y++) {
    const row = Math.floor((y * stride) / cell) * cols;
    for (let x = 0; x < gw; x++) if (!seen[y * gw + x]) uncovered[cellColour[row + Math.floor((x * stride) / cell)]]++;
  }
  const plane = blank.dims[2] * blank.dims[3];
  const v = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let s = sum[c];
    for (let q = 0; q < colours; q++) s += uncovered[q] * blank.data[(q * C + c) * plane];
    v[c] = s / (gw * gh);
  }
  return { dims: [1, C, 1, 1], data: v };
}
