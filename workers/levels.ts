// Windows run level by level, the worker side of a `levels` job: the inputs of the model's page graph
// (lib/onnx/page.ts). Its pools average over the page: every page position once (the windows' counted regions first,
// then what their halos add), and every position no window covers at the value the maps take far inside blank page of
// that position's colour (the blank graph on one pixel per colour), near the page's sides at what a blank page reads
// there (the border windows: a blank square per colour). A window pads its sides inside the page with blank page of the
// colour around it (lib/onnx/page.ts).

import { type InputFormat, type RgbaImage, windowsTensor } from "../lib/image/mod.ts";
import {
  convShifts,
  cutStrides,
  mapPositions,
  padKeys,
  pageNames,
  type PageSource,
  poolStrides,
  slotted,
  TAIL_DUMMY,
  windowPadValues,
} from "../lib/onnx/page.ts";
import type { LevelsInput, Tensor } from "./protocol.ts";

/** The blank graph's input: one pixel per colour (RGBA bytes, 4 per colour) in the model's format, [colours, C, 1, 1]. */
export function blankPixels(colours: Uint8Array, fmt: InputFormat & { channels: number }): Tensor {
  const n = colours.length / 4;
  const windows = Array.from({ length: n }, (_, x) => ({ x, y: 0, w: 1, h: 1 }));
  return {
    dims: [n, fmt.channels, 1, 1],
    data: windowsTensor({ width: n, height: 1, data: colours }, fmt, windows, 1, 1),
  };
}

/**
 * Each window's model input for a page graph, the border windows' after the others', side by side in one buffer
 * (`buffer(n)`'s, at least n floats, where it gives one).
 */
export function levelsInputs(
  job: Pick<LevelsInput, "image" | "windows" | "page" | "colours" | "border">,
  fmt: InputFormat & { channels: number },
  buffer: (n: number) => Float32Array | undefined = () => undefined,
): Tensor[] {
  const c = fmt.channels, all = [...job.windows, ...borderWindows(job)];
  const sizes = all.map((w) => c * w.h * w.w);
  const total = sizes.reduce((a, b) => a + b, 0);
  const into = buffer(total) ?? new Float32Array(total);
  let at = 0;
  return all.map((win, i) => {
    const k = i - job.windows.length, image = k < 0 ? job.image : borderImage(job, job.border!.colours[k]);
    return {
      dims: [1, c, win.h, win.w],
      data: windowsTensor(image, fmt, [win], win.h, win.w, into.subarray(at, at += sizes[i])),
    };
  });
}

/**
 * A border window's image: blank page of the job's colour `k`, as far from its right and bottom sides as the image is
 * from the page's (the padding past them reads as the page's does).
 */
function borderImage(job: Pick<LevelsInput, "image" | "page" | "colours" | "border">, k: number): RgbaImage {
  const size = job.border!.size;
  const width = size - (job.page.w - job.image.width), height = size - (job.page.h - job.image.height);
  const data = new Uint8Array(width * height * 4);
  new Uint32Array(data.buffer).fill(new Uint32Array(job.colours.slice(4 * k, 4 * k + 4).buffer)[0]);
  return { width, height, data };
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
  job: Pick<LevelsInput, "windows" | "counted" | "tails" | "page" | "cell" | "cellColour" | "border" | "zeroPadded">,
  inputs: Tensor[],
  blankInput: Tensor,
): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = { [pageNames.blank(g)]: blankInput };
  inputs.forEach((t, i) => feeds[pageNames.input(g, i)] = t);
  const shifts = convShifts(g);
  const borders = borderWindows(job), windows = [...job.windows, ...borders];
  const tails = [...job.tails, ...borders.map(() => [])];
  for (const s of poolStrides(g)) {
    const own = ownership(job, s, blankInput.dims[0]), share = 1 / own.positions;
    const kernels = shifts.filter((c) => c.stride === s).map((c) => c.kernel);
    windows.forEach((w, i) => {
      let weights: Float32Array;
      if (i < job.windows.length) {
        weights = new Float32Array(mapPositions(w.h, w.w, s));
        const runs = own.owned[i];
        for (let j = 0; j < runs.length; j += 2) weights.fill(share, runs[j], runs[j + 1]);
      } else {
        weights = Float32Array.from(own.border[i - job.windows.length], (n) => n * share);
      }
      feeds[pageNames.weights(s, i)] = { dims: [weights.length, 1], data: weights };
      for (const kernel of kernels) {
        feeds[pageNames.shiftedWeights(s, kernel, i)] = shiftedWeights(weights, w.w / s, kernel);
      }
    });
    feeds[pageNames.blankWeights(s)] = {
      dims: [1, own.uncovered.length],
      data: Float32Array.from(own.uncovered, (u) => u * share),
    };
  }
  for (const p of padKeys(g)) {
    windows.forEach((w, i) => {
      // A border window is a page of its own: zeros on every side.
      const inside = i < job.windows.length && !job.zeroPadded;
      const sides = [
        inside && w.y > 0,
        inside && w.x > 0,
        inside && w.y + w.h < job.page.h,
        inside && w.x + w.w < job.page.w,
      ];
      const { inner, page } = windowPadValues(p, sides);
      feeds[pageNames.padInner(p, i)] = { dims: [8], data: Float32Array.from(inner) };
      feeds[pageNames.padPage(p, i)] = { dims: [8], data: Float32Array.from(page) };
    });
  }
  if (padKeys(g).length) {
    windows.forEach((w, i) => {
      feeds[pageNames.padColour(i)] = { dims: [1], data: Float32Array.of(ringColour(job, w)) };
    });
  }
  for (const s of cutStrides(g)) {
    windows.forEach((w, i) => {
      const dummy = { x: w.x, y: w.y, w: TAIL_DUMMY, h: TAIL_DUMMY };
      slotted(g, tails[i], dummy).forEach((t, j) => {
        const y = (t.y - w.y) / s, x = (t.x - w.x) / s;
        feeds[pageNames.tailStarts(s, i, j)] = { dims: [2], data: Float32Array.of(y, x) };
        feeds[pageNames.tailEnds(s, i, j)] = { dims: [2], data: Float32Array.of(y + t.h / s, x + t.w / s) };
      });
    });
  }
  return feeds;
}

/** The job's border windows (`LevelsInput.border`), after its windows in a page graph: each a square at the origin. */
export const borderWindows = (job: Pick<LevelsInput, "border">) =>
  (job.border?.colours ?? []).map(() => ({ x: 0, y: 0, w: job.border!.size, h: job.border!.size }));

/**
 * A window's pooling weights (its map's positions, `width` per row) shifted to each position k of a `kernel` over the
 * map: [kernel positions, map positions], weight w(p) at (k, p + k − half the kernel), where that lies on the map
 * (lib/onnx/page.ts `convSum`). Row by row copies: 3.3 ms for a 272×400 map written position by position, kernel
 * positions innermost.
 */
export function shiftedWeights(weights: Float32Array, width: number, [kh, kw]: number[]): Tensor {
  const height = weights.length / width, plane = height * width, ph = (kh - 1) / 2, pw = (kw - 1) / 2;
  const data = new Float32Array(kh * kw * plane);
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
  /** Per border window (`LevelsInput.border`), how many page positions each position of its map's plane counts for. */
  border: Float64Array[];
  /** Per blank colour, uncovered positions its blank pixel counts for. */
  uncovered: Float64Array;
  /** Positions of the page at this stride. */
  positions: number;
}

/**
 * Every page position at `stride` once: each window's counted region first, then what its halo adds; the rest by the
 * blank colour of its cell, near the page's sides by that colour's border window where the job has one. The same for
 * every map of that stride.
 */
export function ownership(
  job: Pick<LevelsInput, "windows" | "counted" | "page" | "cell" | "cellColour" | "border">,
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
  // A border window's map: n×n positions; a page position within half of them of a side sits as far from the same
  // side of it, one farther from every side at its middle.
  const n = (job.border?.size ?? 0) / stride, half = n / 2;
  const slot = new Int32Array(colours).fill(-1);
  job.border?.colours.forEach((c, k) => slot[c] = k);
  const border = (job.border?.colours ?? []).map(() => new Float64Array(n * n));
  const along = (p: number, g: number) => (p < half ? p : g - 1 - p < half ? n - g + p : half);
  const cols = Math.ceil(page.w / cell);
  const uncovered = new Float64Array(colours);
  for (let y = 0; y < gh; y++) {
    const row = Math.floor((y * stride) / cell) * cols, nearY = y < half || gh - 1 - y < half;
    for (let x = 0; x < gw; x++) {
      if (seen[y * gw + x]) continue;
      const c = cellColour[row + Math.floor((x * stride) / cell)], k = slot[c];
      if (k >= 0 && (nearY || x < half || gw - 1 - x < half)) border[k][along(y, gh) * n + along(x, gw)]++;
      else uncovered[c]++;
    }
  }
  const owned = runs.map((l) => Int32Array.from(l));
  return { owned, border, uncovered, positions: gw * gh };
}

/**
 * The blank colour a window pads its sides inside the page with (lib/onnx/page.ts): the one most cells of the ring just
 * outside it count at (0 where none lies on the page).
 */
function ringColour(job: Pick<LevelsInput, "page" | "cell" | "cellColour">, w: LevelsInput["windows"][number]): number {
  const { page, cell, cellColour } = job, cols = Math.ceil(page.w / cell), rows = Math.ceil(page.h / cell);
  const c0 = Math.floor(w.x / cell) - 1, c1 = Math.ceil((w.x + w.w) / cell), r0 = Math.floor(w.y / cell) - 1;
  const r1 = Math.ceil((w.y + w.h) / cell), votes = new Map<number, number>();
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      const ring = r === r0 || r === r1 || c === c0 || c === c1;
      if (!ring || r < 0 || c < 0 || r >= rows || c >= cols) continue;
      const k = cellColour[r * cols + c];
      votes.set(k, (votes.get(k) ?? 0) + 1);
    }
  }
  let best = 0, most = -1;
  for (const [k, v] of votes) if (v > most) [best, most] = [k, v];
  return best;
}
