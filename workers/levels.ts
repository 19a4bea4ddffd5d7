// Windows run level by level, the worker side of a `levels` job: the inputs of the model's page graph
// (lib/onnx/page.ts). Its pools average over the page: every page position once (the windows' counted regions first,
// then what their halos add but the outer `POOL_EDGE` px of their sides inside the page), and every other position at
// the value the maps take far inside blank page of that position's colour (the blank graph on one pixel per colour),
// or within half a blank strip of the page's border at that strip's maps (lib/onnx/page.ts `STRIP`).

import { type InputFormat, windowsTensor } from "../lib/image/mod.ts";
import {
  convShifts,
  cutStrides,
  mapPositions,
  pageNames,
  type PageSource,
  POOL_EDGE,
  poolStrides,
  slotted,
  STRIP,
  TAIL_DUMMY,
} from "../lib/onnx/page.ts";
import type { Feed, LevelsInput, Tensor } from "./protocol.ts";

/** Gives a zeroed array of `length` floats (where a job's large feeds live: {@link FeedArena}). */
export type ZeroedAlloc = (length: number) => Float32Array;

const zeroed: ZeroedAlloc = (length) => new Float32Array(length);

/**
 * One buffer that a worker's jobs take their large arrays from in turn ({@link FeedArena.job}), reused job after job,
 * up to `cap` floats: what a new array per job costs, its page faults and the collections its external memory sets
 * off, lands in the job's time (workers/infer.ts: the model inputs' buffer and the page graphs' feeds'). It grows to
 * `slack` times what a job has taken when that runs out (2 where a job takes several arrays, 1 where it takes one).
 *
 * @example
 * ```ts
 * import { FeedArena } from "./levels.ts";
 * const arena = new FeedArena(1 << 20);
 * const take = arena.job(); // the previous job's arrays are done with
 * take(4); // Float32Array(4) [0, 0, 0, 0]
 * ```
 */
export class FeedArena {
  #buffer: Float32Array | null = null;

  constructor(readonly cap: number, readonly slack = 2) {}

  /**
   * Arrays for one job, carved in turn from the buffer, zeroed unless `zero` is false (what the caller overwrites
   * whole). Where it runs out, a larger one replaces it (arrays carved before keep the old one alive until they are
   * dropped); an array over the cap gets its own.
   */
  job(): (length: number, zero?: boolean) => Float32Array {
    let at = 0;
    return (length, zero = true) => {
      if (length > this.cap) return new Float32Array(length);
      if (!this.#buffer || at + length > this.#buffer.length) {
        this.#buffer = new Float32Array(Math.min(this.cap, Math.max(this.slack * (at + length), 2 ** 20)));
        at = 0;
      }
      const view = this.#buffer.subarray(at, at += length);
      return zero ? view.fill(0) : view;
    };
  }

  /** Drops the buffer (an idle worker gives its memory back); the next job makes a new one. */
  release() {
    this.#buffer = null;
  }
}

/** The blank graph's input: one pixel per blank colour of the job, in the model's format, [colours, C, 1, 1]. */
export function blankPixels(job: Pick<LevelsInput, "colours">, fmt: InputFormat & { channels: number }): Tensor {
  const n = job.colours.length / 4;
  const windows = Array.from({ length: n }, (_, x) => ({ x, y: 0, w: 1, h: 1 }));
  return {
    dims: [n, fmt.channels, 1, 1],
    data: windowsTensor({ width: n, height: 1, data: job.colours }, fmt, windows, 1, 1),
  };
}

/**
 * The inputs of a page graph (lib/onnx/page.ts) for one job: each window's model input, the blank pixels, and per
 * stride each window's pooling weights (1 ÷ page positions where {@link ownership} has it count a position, else 0)
 * and each blank colour's (its uncovered positions ÷ page positions): the pools' weighted sums are then means over
 * the page. Where the model has a tail (lib/onnx/tail.ts), per stride of the maps it crops, where each window's tail
 * regions start and end in them (slots no region uses: a {@link TAIL_DUMMY} px square at the window's corner).
 */
export function pageFeeds(
  g: PageSource,
  job: Pick<LevelsInput, "windows" | "counted" | "tails" | "page" | "size" | "cell" | "colours" | "cellColour">,
  inputs: Tensor[],
  blankInput: Tensor,
  alloc: ZeroedAlloc = zeroed,
): Record<string, Feed> {
  // Without blank colours (windows that leave no page position to blank page) the graph has no blank part.
  const blank = job.colours.length > 0;
  const feeds: Record<string, Feed> = blank ? { [pageNames.blank(g)]: blankInput } : {};
  inputs.forEach((t, i) => feeds[pageNames.input(g, i)] = t);
  const shifts = convShifts(g);
  for (const s of poolStrides(g)) {
    const own = ownership(job, s), share = 1 / own.positions;
    if (own.uncovered.length !== blankInput.dims[0]) {
      throw new RangeError(`${blankInput.dims[0]} blank pixels for ${own.uncovered.length} blank colours`);
    }
    const kernels = shifts.filter((c) => c.stride === s).map((c) => c.kernel);
    job.windows.forEach((w, i) => {
      const weights = alloc(mapPositions(w.h, w.w, s)), runs = own.owned[i];
      for (let j = 0; j < runs.length; j += 2) weights.fill(share, runs[j], runs[j + 1]);
      feeds[pageNames.weights(s, i)] = { dims: [weights.length, 1], data: weights };
      for (const kernel of kernels) {
        feeds[pageNames.shiftedWeights(s, kernel, i)] = shiftedWeights(weights, w.w / s, kernel, alloc);
      }
    });
    if (!blank) continue;
    feeds[pageNames.blankWeights(s)] = {
      dims: [1, own.uncovered.length],
      data: Float32Array.from(own.uncovered, (u) => u * share),
    };
    own.strips.forEach((strip, axis) => {
      feeds[pageNames.stripWeights(axis, s)] = {
        dims: [1, strip.length],
        data: Float32Array.from(strip, (u) => u * share),
      };
    });
  }
  // The strips end with the page's padding past the image (zero input): the row strip its last page.w − size.w px.
  const { page, size } = job;
  for (const [axis, pad] of blank ? [[0, page.w - size.w], [1, page.h - size.h]] : []) {
    const mask = Float32Array.from({ length: STRIP }, (_, k) => (k < STRIP - pad ? 1 : 0));
    feeds[pageNames.stripMask(axis)] = { dims: axis ? [1, 1, STRIP, 1] : [1, 1, 1, STRIP], data: mask };
  }
  for (const s of cutStrides(g)) {
    job.windows.forEach((w, i) => {
      const dummy = { x: w.x, y: w.y, w: TAIL_DUMMY, h: TAIL_DUMMY };
      slotted(g, job.tails[i], dummy).forEach((t, j) => {
        const y = (t.y - w.y) / s, x = (t.x - w.x) / s;
        feeds[pageNames.tailStarts(s, i, j)] = position(y, x);
        feeds[pageNames.tailEnds(s, i, j)] = position(y + t.h / s, x + t.w / s);
      });
    });
  }
  return feeds;
}

/** A crop's [y, x] position in map positions, as the page graph's Slice reads it (int64). */
const position = (y: number, x: number): Feed => ({ dims: [2], data: BigInt64Array.of(BigInt(y), BigInt(x)) });

/**
 * A window's pooling weights (its map's positions, `width` per row) shifted to each position k of a `kernel` over the
 * map: [kernel positions, map positions], weight w(p) at (k, p + k − half the kernel), where that lies on the map
 * (lib/onnx/page.ts `convSum`). Row by row copies: 3.3 ms for a 272×400 map written position by position, kernel
 * positions innermost.
 */
export function shiftedWeights(
  weights: Float32Array,
  width: number,
  [kh, kw]: number[],
  alloc: ZeroedAlloc = zeroed,
): Tensor {
  const height = weights.length / width, plane = height * width, ph = (kh - 1) / 2, pw = (kw - 1) / 2;
  const data = alloc(kh * kw * plane);
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      // Source columns whose shifted column x + kx − pw lies on the map.
      const dx = kx - pw, x0 = Math.max(0, -dx), x1 = Math.min(width, width - dx);
      for (let y = Math.max(0, ph - ky); y < Math.min(height, height + ph - ky); y++) {
        const to = (ky * kw + kx) * plane + (y + ky - ph) * width + x0 + dx;
        data.set(weights.subarray(y * width + x0, y * width + x1), to);
      }
    }
  }
  return { dims: [kh * kw, plane], data };
}

/** Which map positions each window counts at one stride, and how many positions of each blank colour none covers. */
export interface Ownership {
  /** Per window, the runs of its map's plane it counts: [start, end) index pairs, in order. */
  owned: Int32Array[];
  /** Per blank colour, uncovered positions far from the page's border (see `strips`). */
  uncovered: Float64Array;
  /**
   * Per blank strip (the 1-row strip, then the 1-column one: lib/onnx/page.ts `STRIP`), per blank colour (as
   * `uncovered`), per position of the strip's map at this stride: the uncovered positions near the page's border
   * that count at it. A position near two borders (a corner) counts at both strips and −1 at its colour.
   */
  strips: [Float64Array, Float64Array];
  /** Positions of the page at this stride. */
  positions: number;
}

/** A window's region on its map at one stride: [x0, x1) × [y0, y1), `w` positions per row, at (`ox`, `oy`) on the page. */
export interface MapRegion {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  w: number;
  ox: number;
  oy: number;
}

/**
 * The regions `ownership` counts at `stride`, in order: each window's counted region, then each window's halo but the
 * outer `edge` px of its sides inside the page (rounded up to whole positions of the map).
 */
export function countedRegions(
  job: Pick<LevelsInput, "windows" | "counted" | "page">,
  stride: number,
  edge = POOL_EDGE,
): { k: number; region: MapRegion }[] {
  const { windows, counted, page } = job;
  // Windows lie on the page's grid of the model's largest stride, so a whole number of positions stays on it.
  const e = Math.ceil(edge / stride) * stride;
  // What each window's halo adds: the window less `e` on its sides inside the page.
  const inner = windows.map((w) => {
    const x0 = w.x > 0 ? w.x + e : w.x, y0 = w.y > 0 ? w.y + e : w.y;
    const x1 = w.x + w.w < page.w ? w.x + w.w - e : w.x + w.w;
    const y1 = w.y + w.h < page.h ? w.y + w.h - e : w.y + w.h;
    return { x: x0, y: y0, w: Math.max(0, x1 - x0), h: Math.max(0, y1 - y0) };
  });
  return [counted, inner].flatMap((boxes) =>
    windows.map((win, k) => {
      const r = boxes[k], w = win.w / stride, h = win.h / stride, ox = win.x / stride, oy = win.y / stride;
      const x0 = Math.max(0, (r.x - win.x) / stride), y0 = Math.max(0, (r.y - win.y) / stride);
      const x1 = Math.min(w, (r.x + r.w - win.x) / stride), y1 = Math.min(h, (r.y + r.h - win.y) / stride);
      return { k, region: { x0, y0, x1, y1, w, ox, oy } };
    })
  );
}

/**
 * A window's runs of the page positions `seen` does not have yet over its region [x0, x1) × [y0, y1) (its map's
 * positions; `w` per row, at `ox`, `oy` on the page's grid of `gw` per row), position by position, into `runs`; each
 * marked seen. What `ownership` did first, and still does for a window off the stride's grid.
 */
export function runsByPosition(
  seen: Uint8Array,
  gw: number,
  { x0, y0, x1, y1, w, ox, oy }: MapRegion,
  runs: number[],
): void {
  for (let y = y0; y < y1; y++) {
    let start = -1;
    for (let x = x0; x <= x1; x++) {
      const at = (y + oy) * gw + x + ox;
      const take = x < x1 && !seen[at];
      if (take) seen[at] = 1;
      if (take && start < 0) start = x;
      if (!take && start >= 0) {
        runs.push(y * w + start, y * w + x);
        start = -1;
      }
    }
  }
}

/**
 * Every page position at `stride` once: each window's counted region first, then what its halo adds but the outer
 * `edge` px of its sides inside the page ({@link POOL_EDGE}, rounded up to whole positions of the map); the rest by the
 * blank colour of its cell (at a blank strip's map near the page's border). The same for every map of that stride.
 */
export function ownership(
  job: Pick<LevelsInput, "windows" | "counted" | "page" | "cell" | "colours" | "cellColour">,
  stride: number,
  edge = POOL_EDGE,
): Ownership {
  const { windows, page, cell, cellColour } = job;
  const gw = Math.round(page.w / stride), gh = Math.round(page.h / stride);
  const seen = new Uint8Array(gw * gh);
  // Runs of consecutive unseen positions (parts of a region's rows), so that the sums read each run straight through.
  const runs: number[][] = windows.map(() => []);
  for (const { k, region } of countedRegions(job, stride, edge)) {
    const { x0, y0, x1, y1, w, ox, oy } = region;
    if (![ox, oy, x0, y0, x1, y1].every(Number.isInteger)) {
      // A window off this stride's grid (a budget's cover at a 16 px halo, at stride 32): position by position, as
      // first written, where a fractional index never marks a position seen (overlaps then count twice). Unchanged
      // here: the budget plans were measured so, and counting each of its positions once, as the page position under
      // its left half, read no better (every screenshot set, `bench/eval/budget_sweep.ts --set
      // tune,val,val2,val3,val4,test --shares 0.5,0.75`: mean IoU 0.9278 / 0.9889 → 0.9277 / 0.9888, three pages
      // 0.003–0.006 lower at 50 %, one 0.935 → 0.918 at 75 %, none higher).
      runsByPosition(seen, gw, region, runs[k]);
      continue;
    }
    for (let y = y0; y < y1; y++) {
      // The row's runs of unseen positions, found by the typed array's own search (bounded by the row's view: an
      // unbounded search reads on to the page's end). With the blank part's count cell by cell below, all four
      // strides of a test screenshot's job took 0.54 instead of 0.92 ms (position by position, the reference in
      // tests/onnx/levels_test.ts), its page graph's feeds 1.09 instead of 1.47 ms (scratch `.scratch/feedbench.ts`
      // on the jobs of the 20 test screenshots, medians, warm; the same feeds).
      const line = seen.subarray((y + oy) * gw + ox + x0, (y + oy) * gw + ox + x1);
      for (let x = 0; x < line.length;) {
        const start = line.indexOf(0, x);
        if (start < 0) break;
        let end = line.indexOf(1, start);
        if (end < 0) end = line.length;
        line.fill(1, start, end);
        runs[k].push(y * w + x0 + start, y * w + x0 + end);
        x = end;
      }
    }
  }
  const cols = Math.ceil(page.w / cell), colours = job.colours.length / 4;
  const uncovered = new Float64Array(colours);
  const q = STRIP / stride,
    strips: [Float64Array, Float64Array] = [
      new Float64Array(colours * q),
      new Float64Array(colours * q),
    ];
  // A position's place on a strip: at its distance from the nearer border, from that end; -1 past half a strip.
  const onStrip = (i: number, n: number) => {
    const d = Math.min(i, n - 1 - i);
    return d >= q / 2 ? -1 : i === d ? d : q - 1 - d;
  };
  // Positions per cell along a row (0: not a whole number, every position alone), and the columns within half a strip
  // of either side (onStrip not -1 there).
  const perCell = cell % stride ? 0 : cell / stride, near = Math.min(gw, q / 2);
  const uncoveredAt = (row: number, sy: number, x: number) => {
    const colour = cellColour[row + Math.floor((x * stride) / cell)], sx = onStrip(x, gw);
    if (sx >= 0) strips[0][colour * q + sx]++;
    if (sy >= 0) strips[1][colour * q + sy]++;
    if (sx < 0 && sy < 0) uncovered[colour]++;
    else if (sx >= 0 && sy >= 0) uncovered[colour]--;
  };
  for (let y = 0; y < gh; y++) {
    const row = Math.floor((y * stride) / cell) * cols, sy = onStrip(y, gh), line = seen.subarray(y * gw, y * gw + gw);
    // Each run of unseen positions of the row: position by position near its sides or on a strip's row (the strips
    // count them), else cell by cell (all of a cell's positions count at its colour).
    for (let x = 0; x < gw;) {
      const start = line.indexOf(0, x);
      if (start < 0) break;
      let end = line.indexOf(1, start);
      if (end < 0) end = gw;
      if (!colours) throw new RangeError("the windows leave page positions uncovered, and the job has no blank colour");
      for (let p = start; p < end;) {
        if (sy >= 0 || !perCell || p < near || p >= gw - near) {
          uncoveredAt(row, sy, p++);
          continue;
        }
        const stop = Math.min(end, gw - near, (Math.floor(p / perCell) + 1) * perCell);
        uncovered[cellColour[row + Math.floor(p / perCell)]] += stop - p;
        p = stop;
      }
      x = end;
    }
  }
  const owned = runs.map((l) => Int32Array.from(l));
  return { owned, uncovered, strips, positions: gw * gh };
}
