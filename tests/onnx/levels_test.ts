// Level-by-level pooling (lib/onnx/levels.ts, lib/onnx/page.ts, workers/levels.ts) on the real text detector through
// the native runtime: the page graph of one window over the page is the whole model, the blank graph is the value deep
// inside a blank page, the cost is counted from the page graph, and a plan's windows pool close to the whole image.

import assert from "node:assert/strict";
import { decodeImage, type RgbaImage, windowsTensor } from "../../lib/image/mod.ts";
import { ModelRegistry } from "../../lib/models.ts";
import { CostCounter } from "../../lib/onnx/mod.ts";
import { levelGraphs, type PageParts } from "../../lib/onnx/levels.ts";
import {
  pageGraph,
  pageNames,
  pageShapes,
  type PageSource,
  POOL_EDGE,
  STRIP,
  tailValues,
} from "../../lib/onnx/page.ts";
import { lenField, varintField, WireReader } from "../../lib/onnx/_wire.ts";
import { DEFAULT_FOCUS_OPTIONS } from "../../lib/plan/focus.ts";
import { coverInk, inkPooling, outputCores } from "../../lib/plan/ink_cover.ts";
import {
  blankPixels,
  countedRegions,
  FeedArena,
  type Ownership,
  ownership,
  pageFeeds,
  runsByPosition,
} from "../../workers/levels.ts";
import { nodeRuntime } from "../../workers/runtime_node.ts";
import type { Tensor } from "../../workers/protocol.ts";
import type { RuntimeSession } from "../../workers/runtime.ts";
import { iou } from "../../bench/_bench.ts";
import { textImage } from "../_util.ts";
import { type PageJob, uniformJob } from "./_page.ts";

/** Window 0's copy of a pool's map in a page graph (one the tail makes is its first region's: lib/onnx/page.ts). */
const mapName = (p: { map: string; conv?: unknown }) => (p.conv ? pageNames.slot(0, 0) : "w0:") + p.map;
const registry = await ModelRegistry.load();
const text = registry.model("text-ppocrv4-det");
const g = text.levels!.graphs;
const fmt = text.spec.input;

type Job = PageJob;
type Sessions = {
  full: RuntimeSession;
  /** Runs the page graph of the job's windows on an image; its outputs, and the `extra` tensors asked for. */
  page(img: RgbaImage, job: Job, extra?: string[]): Promise<Record<string, Tensor>>;
};

/** A test with native sessions of the whole model and of page graphs, released after. */
function withSessions(name: string, fn: (s: Sessions) => Promise<void>) {
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const rt = nodeRuntime();
      const loaded: RuntimeSession[] = [];
      const s: Sessions = {
        full: await rt.load(text.bytes, 2),
        async page(img, job, extra = []) {
          const session = await rt.load(pageGraph(g, job.windows.length, extra, job.colours.length > 0), 2);
          loaded.push(session);
          const inputs = job.windows.map((w) => ({
            dims: [1, 3, w.h, w.w],
            data: windowsTensor(img, fmt, [w], w.h, w.w),
          }));
          return await session.runFeeds(pageFeeds(g, job, inputs, blankPixels(job, fmt)));
        },
      };
      try {
        await fn(s);
      } finally {
        for (const sess of [s.full, ...loaded]) await sess.release();
      }
    },
  });
}

Deno.test("levels: the detector's 10 pools in 4 levels; models without pools have none", () => {
  assert.equal(g.levels, 4);
  assert.deepEqual(g.pools.map((p) => p.level), [0, 1, 2, 0, 0, 0, 3, 3, 3, 3]);
  assert.deepEqual(g.pools.map((p) => p.stride), [32, 32, 32, 16, 8, 4, 32, 16, 8, 4]);
  // Window nodes run up to the last level (the head after the last pools); the blank graph only feeds the pools.
  assert.equal(Math.max(...g.page.window.level), g.levels);
  assert.equal(Math.max(...g.page.blank.level), g.levels - 1);
  for (const m of registry.modelsOf("digits")) assert.equal(levelGraphs(m.bytes), null);
});

/** Uncovered positions per blank colour: far from the border, and at the strips near it (a corner: +1, +1, −1). */
function blankCounts(own: Ownership, stride: number): number[] {
  const q = STRIP / stride;
  return [...own.uncovered].map((u, c) =>
    u + own.strips.reduce((a, strip) => a + strip.subarray(c * q, (c + 1) * q).reduce((x, y) => x + y, 0), 0)
  );
}

Deno.test("page weights: a blank position near the page's border counts at its place on a strip", () => {
  // A 512×64 page at stride 32 (16 × 2 positions), one colour, no window: a strip has 8 positions at stride 32, its
  // first 4 for the left (top) border, its last 4 for the right (bottom) one; every row is near the top or bottom.
  const job = {
    windows: [],
    counted: [],
    page: { w: 512, h: 64 },
    cell: 32,
    colours: new Uint8Array(4),
    cellColour: new Uint8Array(32),
  };
  assert.equal(STRIP / 32, 8);
  const own = ownership(job, 32);
  // Columns 0–3 and 12–15 of both rows are corners: +1 on each strip, −1 at the colour; columns 4–11 are near the top
  // or bottom border only (the column strip).
  assert.deepEqual([...own.strips[0]], [2, 2, 2, 2, 2, 2, 2, 2]);
  assert.deepEqual([...own.strips[1]], [16, 0, 0, 0, 0, 0, 0, 16]);
  assert.deepEqual([...own.uncovered], [-16]);
  assert.deepEqual(blankCounts(own, 32), [32]);
});

Deno.test("page weights: every page position once, by the window that counts it, the rest at its blank colour", () => {
  // A 12×4 page at stride 1, cells of 4: two 5×4 windows overlapping in column 4; columns 9–11 covered by none, in a
  // cell of blank colour 1.
  const job = {
    windows: [{ x: 0, y: 0, w: 5, h: 4 }, { x: 4, y: 0, w: 5, h: 4 }],
    counted: [{ x: 0, y: 0, w: 4, h: 4 }, { x: 4, y: 0, w: 4, h: 4 }],
    tails: [[{ x: 0, y: 0, w: 5, h: 4 }], [{ x: 4, y: 0, w: 5, h: 4 }]],
    page: { w: 12, h: 4 },
    size: { w: 12, h: 4 },
    cell: 4,
    colours: new Uint8Array(8),
    cellColour: new Uint8Array([0, 0, 1]),
  };
  // No edge left out; with 32 px left out (pageFeeds leaves out POOL_EDGE) the halo column 8 goes to the blank colour.
  const own = ownership(job, 1, 0);
  assert.equal(own.positions, 48);
  assert.deepEqual(blankCounts(own, 1), [0, 12]);
  assert.deepEqual(blankCounts(ownership(job, 1, 32), 1), [0, 16]);
  // One pool at stride 1 (page graphs' names only).
  const src: PageSource = {
    input: "x",
    output: "y",
    pools: [{ name: "v", map: "m", level: 0, channels: 1, stride: 1 }],
    page: {} as PageParts,
    tail: { halo: 0, cuts: [], slots: 1 },
  };
  const blankInput = { dims: [2, 3, 1, 1], data: new Float32Array(6) };
  const feeds = pageFeeds(src, job, [], blankInput), data = (name: string) => feeds[name].data as Float32Array;
  // Each window's value at a position is its index + 1; blank colours 0 and 1 are 100 and 7.
  let mean = 0;
  for (const i of [0, 1]) mean += (i + 1) * data(pageNames.weights(1, i)).reduce((a, b) => a + b, 0);
  const bw = data(pageNames.blankWeights(1));
  assert.deepEqual(feeds[pageNames.blankWeights(1)].dims, [1, 2]);
  mean += 100 * bw[0] + 7 * bw[1];
  // Near the page's border the blank colours count at their strips' positions (here, a page without a border effect).
  for (const axis of [0, 1]) {
    const sw = data(pageNames.stripWeights(axis, 1)), q = sw.length / 2;
    mean += sw.reduce((a, v, k) => a + v * (k < q ? 100 : 7), 0);
  }
  // Window 0 counts columns 0–3 (its halo's column 4 is window 1's core), window 1 columns 4–7 (its halo's column 8
  // lies within POOL_EDGE of its side inside the page); 8–11 go to colour 1 (7).
  assert.ok(POOL_EDGE > 0);
  assert.ok(Math.abs(mean - (16 * 1 + 16 * 2 + 16 * 7) / 48) < 1e-6, `${mean}`);
  // Window 1's weights: its first column (page column 4) counts, its halo's last (page column 8) does not.
  assert.deepEqual([...data(pageNames.weights(1, 1)).slice(0, 5)].map((v) => Math.round(v * 48)), [
    1,
    1,
    1,
    1,
    0,
  ]);
  assert.deepEqual([...data(pageNames.weights(1, 0)).slice(0, 5)].map((v) => Math.round(v * 48)), [
    1,
    1,
    1,
    1,
    0,
  ]);
});

Deno.test("page weights: a halo's outer edge px inside the page count at the blank colour, on the border not", () => {
  // A 192×64 page at stride 32: one window over columns 0–3 (core 0–1, halo 2–3), on the page's left, top and bottom
  // border; its right side is inside the page.
  const job = {
    windows: [{ x: 0, y: 0, w: 128, h: 64 }],
    counted: [{ x: 0, y: 0, w: 64, h: 64 }],
    page: { w: 192, h: 64 },
    size: { w: 192, h: 64 },
    cell: 32,
    colours: new Uint8Array(4),
    cellColour: new Uint8Array(12),
  };
  const runs = (o: Ownership) => [...o.owned[0]];
  // Without an edge left out (POOL_EDGE): all 8 positions of the window; 4 uncovered.
  assert.deepEqual(runs(ownership(job, 32, 0)), [0, 2, 4, 6, 2, 4, 6, 8]);
  assert.deepEqual(blankCounts(ownership(job, 32, 0), 32), [4]);
  // With 32 px: the halo's last column (within 32 px of the right side) goes to the blank colour; the border sides
  // keep theirs (column 0, rows 0 and 1).
  const own = ownership(job, 32, 32);
  assert.deepEqual(runs(own), [0, 2, 4, 6, 2, 3, 6, 7]);
  assert.deepEqual(blankCounts(own, 32), [6]);
  // At stride 8 the same 32 px are four positions wide: 192 positions, 64 of the core and 32 of the halo counted.
  assert.deepEqual(blankCounts(ownership(job, 8, 32), 8), [96]);
  // An edge of part of a position is a whole one: 16 px at stride 32 leaves out the same column as 32 px.
  assert.deepEqual(runs(ownership(job, 32, 16)), runs(own));
});

/**
 * `ownership` as first written, position by position: the reference its faster runs (the typed arrays' own search,
 * whole cells at once far from the page's border) must equal on any job.
 */
function ownershipByPosition(job: Parameters<typeof ownership>[0], stride: number, edge = POOL_EDGE): Ownership {
  const { windows, page, cell, cellColour } = job;
  const gw = Math.round(page.w / stride), gh = Math.round(page.h / stride);
  const seen = new Uint8Array(gw * gh);
  const runs: number[][] = windows.map(() => []);
  for (const { k, region } of countedRegions(job, stride, edge)) runsByPosition(seen, gw, region, runs[k]);
  const cols = Math.ceil(page.w / cell), colours = job.colours.length / 4, q = STRIP / stride;
  const uncovered = new Float64Array(colours);
  const strips: [Float64Array, Float64Array] = [new Float64Array(colours * q), new Float64Array(colours * q)];
  const onStrip = (i: number, n: number) => {
    const d = Math.min(i, n - 1 - i);
    return d >= q / 2 ? -1 : i === d ? d : q - 1 - d;
  };
  for (let y = 0; y < gh; y++) {
    const row = Math.floor((y * stride) / cell) * cols, sy = onStrip(y, gh);
    for (let x = 0; x < gw; x++) {
      if (seen[y * gw + x]) continue;
      const colour = cellColour[row + Math.floor((x * stride) / cell)], sx = onStrip(x, gw);
      if (sx >= 0) strips[0][colour * q + sx]++;
      if (sy >= 0) strips[1][colour * q + sy]++;
      if (sx < 0 && sy < 0) uncovered[colour]++;
      else if (sx >= 0 && sy >= 0) uncovered[colour]--;
    }
  }
  return { owned: runs.map((l) => Int32Array.from(l)), uncovered, strips, positions: gw * gh };
}

Deno.test("page weights: ownership equals the position-by-position reference on random pages and windows", () => {
  // A 32-bit xorshift: every bit of it varies (a float LCG past 2^53 loses its low bits, and with them rand(2)).
  let seed = 7;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  for (let trial = 0; trial < 200; trial++) {
    // Windows on a 32 px grid, and on a 16 px one (a budget's cover at a 16 px halo: off the grid of stride 32).
    const unit = [32, 16][rand(2)], cell = [16, 32, 64][rand(3)];
    const page = { w: 32 * (1 + rand(40)), h: 32 * (1 + rand(40)) };
    const windows = [], counted = [];
    for (let k = rand(13); k > 0; k--) {
      const w = unit * (1 + rand(page.w / unit)), h = unit * (1 + rand(page.h / unit));
      const win = { x: unit * rand(page.w / unit - w / unit + 1), y: unit * rand(page.h / unit - h / unit + 1), w, h };
      const cw = unit * rand(w / unit + 1), ch = unit * rand(h / unit + 1);
      windows.push(win);
      counted.push({
        x: win.x + unit * rand((win.w - cw) / unit + 1),
        y: win.y + unit * rand((win.h - ch) / unit + 1),
        w: cw,
        h: ch,
      });
    }
    const colours = 1 + rand(3), cells = Math.ceil(page.w / cell) * Math.ceil(page.h / cell);
    const job = {
      windows,
      counted,
      page,
      cell,
      colours: new Uint8Array(4 * colours),
      cellColour: Uint8Array.from({ length: cells }, () => rand(colours)),
    };
    for (const stride of [1, 4, 8, 16, 32]) {
      if (stride === 1 && page.w * page.h > 1 << 18) continue;
      const edge = [0, 16, POOL_EDGE][rand(3)];
      const got = ownership(job, stride, edge), want = ownershipByPosition(job, stride, edge);
      const plain = (o: Ownership) => ({
        owned: o.owned.map((r) => [...r]),
        uncovered: [...o.uncovered],
        strips: o.strips.map((s) => [...s]),
        positions: o.positions,
      });
      assert.deepEqual(plain(got), plain(want), `trial ${trial}, stride ${stride}, edge ${edge}`);
    }
  }
});

Deno.test("wire writer: fields read back with the reader", () => {
  const bytes = new Uint8Array([...varintField(1, 300), ...lenField(2, "kernel"), ...varintField(3, 2 ** 40)]);
  const r = new WireReader(bytes);
  assert.deepEqual(r.tag(), [1, 0]);
  assert.equal(r.varint(), 300);
  assert.deepEqual(r.tag(), [2, 2]);
  assert.equal(r.string(), "kernel");
  assert.deepEqual(r.tag(), [3, 0]);
  assert.equal(r.varint(), 2 ** 40);
  assert.ok(r.done);
});

withSessions(
  "levels: the page graph of one window over the page is the whole model; its cost is counted from its graph",
  async (s) => {
    const img = await decodeImage(await Deno.readFile("docs/examples/text-0.png"));
    const W = Math.ceil(img.width / 32) * 32, H = Math.ceil(img.height / 32) * 32;
    const win = [{ x: 0, y: 0, w: W, h: H }];
    const dims = [1, 3, H, W];
    const want = Object.values(await s.full.run(windowsTensor(img, fmt, win, H, W), dims))[0].data;
    const got = (await s.page(img, uniformJob(win, W, H, [255, 255, 255, 255])))[pageNames.output(g, 0)].data;
    let worst = 0, flips = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(want[i] - got[i]));
      if ((want[i] > 0.3) !== (got[i] > 0.3)) flips++;
    }
    assert.ok(worst < 5e-3, `largest difference ${worst}`);
    assert.ok(flips < want.length * 1e-4, `${flips} pixels change sides`);
    // Such a window leaves no page position to blank page: the graph without its blank part (no blank colours) gives
    // the same outputs, bit for bit.
    const alone = { ...uniformJob(win, W, H, []), cellColour: new Uint8Array(0) };
    assert.deepEqual((await s.page(img, alone))[pageNames.output(g, 0)].data, got);
    // A blank colour's page position left uncovered cannot be counted without one.
    const half = [{ x: 0, y: 0, w: W, h: H / 2 }];
    await assert.rejects(() => s.page(img, { ...uniformJob(half, W, H, []), cellColour: new Uint8Array(0) }));
    // The price (a window's part plus the blank part) is the page graph counted whole, for one window and for two;
    // a window costs the whole model plus the pools' weighted sums in place of their averages and the tail on its
    // unused slots' 16 px squares (1.4 MFLOPs each): under 3 % more at 640².
    const cost = text.levels!.cost;
    const counted = (windows: number[][], colours: number, tails = windows.map((d) => [d.slice(2)])) =>
      CostCounter.fromBytes(pageGraph(g, windows.length)).count(
        pageShapes(g, windows, colours, 3),
        tailValues(g, tails),
      )
        .flops;
    assert.equal(cost.window(dims).flops + cost.blank(1, 3).flops, counted([dims], 1));
    // Without its blank part, a window's part alone.
    const bare = CostCounter.fromBytes(pageGraph(g, 1, [], false));
    assert.equal(cost.blank(0, 3).flops, 0);
    assert.equal(
      cost.window(dims).flops,
      bare.count(pageShapes(g, [dims], 0, 3), tailValues(g, [[dims.slice(2)]])).flops,
    );
    const other = [1, 3, 320, 96];
    assert.equal(
      cost.window(dims).flops + cost.window(other).flops + cost.blank(2, 3).flops,
      counted([dims, other], 2),
    );
    // A window whose tail runs on part of it (lib/onnx/tail.ts) is priced at that part.
    assert.equal(cost.window(dims, [[192, 320]]).flops + cost.blank(1, 3).flops, counted([dims], 1, [[[192, 320]]]));
    assert.ok(cost.window(dims, [[192, 320]]).flops < cost.window(dims).flops);
    const whole = text.counter.count(dims).flops;
    assert.ok(cost.window(dims).flops > whole && cost.window(dims).flops < whole * 1.03, `${cost.window(dims).flops}`);
    // The blank part: the blank strips (lib/onnx/page.ts STRIP), about 46 MFLOPs a colour; the 1×1 pixels next to nothing.
    assert.ok(cost.blank(2, 3).flops > 0 && cost.blank(2, 3).flops < 0.1e9, `${cost.blank(2, 3).flops}`);
  },
);

withSessions("levels: the blank graph on one pixel is the maps deep inside a page of that colour", async (s) => {
  const P = 960, colour = [250, 245, 240, 255];
  const page = { width: P, height: P, data: new Uint8Array(P * P * 4) };
  for (let i = 0; i < P * P; i++) page.data.set(colour, 4 * i);
  // One window over the page: its maps and the blank graph's under the same pooled vectors, from one run.
  const out = await s.page(
    page,
    uniformJob([{ x: 0, y: 0, w: P, h: P }], P, P, colour),
    g.pools.flatMap((p) => [mapName(p), `b:${p.map}`]),
  );
  for (const p of g.pools) {
    const m = out[mapName(p)], [, C, h, w] = m.dims, v = out[`b:${p.map}`], plane = v.dims[2] * v.dims[3];
    for (let c = 0; c < C; c++) {
      const centre = m.data[c * h * w + (h >> 1) * w + (w >> 1)], blank = v.data[c * plane];
      assert.ok(Math.abs(centre - blank) <= 1e-3 * (Math.abs(centre) + 1e-2), `${p.map}[${c}]: ${centre} vs ${blank}`);
    }
  }
});

/** A width×height image of one colour. */
function plainImage(width: number, height: number, colour: number[]): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set(colour, 4 * i);
  return { width, height, data };
}

withSessions(
  "levels: a window's sides pad with zeros, inside the page too: its maps there read like a frame (POOL_EDGE)",
  async (s) => {
    const P = 960, colour = [250, 245, 240, 255], img = plainImage(P, P, colour);
    // A window with every side inside the page, on a page of one colour.
    const windows = [{ x: 320, y: 320, w: 320, h: 320 }];
    const p0 = g.pools[0];
    const out = await s.page(img, uniformJob(windows, P, P, colour), [mapName(p0), `b:${p0.map}`]);
    const m = out[mapName(p0)], [, C, h, w] = m.dims, v = out[`b:${p0.map}`], plane = v.dims[2] * v.dims[3];
    const off = (y: number, x: number) =>
      Math.max(...Array.from({ length: C }, (_, c) => Math.abs(m.data[(c * h + y) * w + x] - v.data[c * plane])));
    // Its corner reads far from blank page (the zeros past its edge show there), further than its centre does.
    // Measured 3.7 and 0.03.
    assert.ok(off(0, 0) > 1 && off(0, 0) > 10 * off(h >> 1, w >> 1), `corner ${off(0, 0)}`);
  },
);

withSessions(
  "levels: the blank strips are blank page's maps next to its border, the image's padding included",
  async (s) => {
    // A page of one colour 950 px wide: the page pads it by 10 px of zeros on the right. One window over all of it.
    const P = 960, W = 950, colour = [250, 245, 240, 255], img = plainImage(W, P, colour);
    const job = { ...uniformJob([{ x: 0, y: 0, w: P, h: P }], P, P, colour), size: { w: W, h: P } };
    const out = await s.page(
      img,
      job,
      g.pools.flatMap((p) => [mapName(p), `b:${p.map}`, `bx:${p.map}`, `by:${p.map}`]),
    );
    for (const p of g.pools) {
      const m = out[mapName(p)], [, C, h, w] = m.dims, q = STRIP / p.stride;
      const rows = out[`bx:${p.map}`], cols = out[`by:${p.map}`], b = out[`b:${p.map}`];
      assert.deepEqual(rows.dims, [1, C, 1, q]);
      assert.deepEqual(cols.dims, [1, C, q, 1]);
      const at = (y: number, x: number, c: number) => m.data[(c * h + y) * w + x];
      // Over the positions the strips stand for (within half a strip of the left, right, top and bottom border), how
      // far the strips and the 1×1 blank value are from the page's maps there.
      let strips = 0, blank = 0, near = 0;
      for (let c = 0; c < C; c++) {
        const far = b.data[c * b.dims[2] * b.dims[3]];
        for (let d = 0; d < q / 2; d++) {
          const pairs = [
            [rows.data[c * q + d], at(h >> 1, d, c)],
            [rows.data[c * q + q - 1 - d], at(h >> 1, w - 1 - d, c)],
            [cols.data[c * q + d], at(d, w >> 1, c)],
            [cols.data[c * q + q - 1 - d], at(h - 1 - d, w >> 1, c)],
          ];
          for (const [strip, page] of pairs) {
            strips += Math.abs(strip - page);
            blank += Math.abs(far - page);
            // The first 64 px of a level-0 map: the border's reach there is shorter than half a strip: exact.
            if (p.level === 0 && d * p.stride < 64) {
              near = Math.max(
                near,
                Math.abs(strip - page) / (Math.abs(page) + 1e-2),
              );
            }
          }
        }
      }
      // Deeper maps see past half a strip (the whole page's border shapes them), so there a strip is an estimate, but a
      // closer one than blank page far from any border: measured 5–20 % of its distance, here bounded at half.
      assert.ok(strips < 0.5 * blank, `${p.map}: strips ${strips}, blank ${blank}`);
      assert.ok(near < 1e-3, `${p.map}: ${near}`);
    }
  },
);

withSessions(
  "levels: the default's windows pooling over the page are closer to the whole image than pooling alone",
  async (s) => {
    // A documentation-like page: a paragraph of small text in one corner, a heading, and much blank paper.
    const lines = [
      "Level by level, every window sees the page: the squeeze-excitation",
      "blocks average each feature map over the whole input, and a window",
      "run alone averages over itself, text without the blank around it.",
      "The blank page is counted at the value its maps take far from text.",
    ].map((text, i) => ({ text, x: 48, y: 140 + 30 * i, size: 18 }));
    const doc = await textImage(1280, 960, [{ text: "Pooling over the page", x: 48, y: 60, size: 36 }, ...lines]);
    const img = await decodeImage(new Uint8Array(await doc.image.encode()));
    const W = img.width, PW = Math.ceil(W / 32) * 32, PH = Math.ceil(img.height / 32) * 32;
    const ref = Object.values(
      await s.full.run(windowsTensor(img, fmt, [{ x: 0, y: 0, w: PW, h: PH }], PH, PW), [1, 3, PH, PW]),
    )[0].data;
    const o = DEFAULT_FOCUS_OPTIONS;
    const { geo, ink, windows } = coverInk(text, img, 1 << 30, o);
    const pooling = inkPooling(text, geo, ink, windows, o)!;
    const input = (i: number) => {
      const w = windows[i].window;
      return { dims: [1, 3, w.h, w.w], data: windowsTensor(img, fmt, [w], w.h, w.w) };
    };
    const pageOut = await s.page(img, { ...pooling, windows: windows.map((f) => f.window) });
    const page = pooling.tails.flatMap((regions, i) => regions.map((_, j) => pageOut[pageNames.output(g, i, j)]));
    // A page graph's outputs cover each window's tail regions, written on their cores.
    // One run at a time, as in a worker (a session whose arena is being given back must not be running).
    const alone: Record<string, Tensor>[] = [];
    for (const i of windows.keys()) alone.push(await s.full.run(input(i).data, input(i).dims));
    const runs = [
      { outs: page.map((t) => t.data), regions: pooling.tails.flat(), cores: outputCores(geo, windows, pooling) },
      {
        outs: alone.map((o) => Object.values(o)[0].data),
        regions: windows.map((f) => f.window),
        cores: windows.map((f) => f.core),
      },
    ];
    const masks = runs.map(({ outs, regions, cores }) => {
      const mask = new Uint8Array(W * img.height), want = new Uint8Array(W * img.height);
      cores.forEach((core, i) => {
        const win = regions[i];
        for (let y = core.y; y < core.y + core.h; y++) {
          for (let x = core.x; x < core.x + core.w; x++) {
            mask[y * W + x] = outs[i][(y - win.y) * win.w + x - win.x] > 0.3 ? 1 : 0;
          }
        }
      });
      for (let y = 0; y < img.height; y++) for (let x = 0; x < W; x++) want[y * W + x] = ref[y * PW + x] > 0.3 ? 1 : 0;
      return iou(mask, want);
    });
    // Measured: 0.955 over the page, 0.908 alone (docs/TEXT_DRIFT.md has real pages: 0.995 / 0.969 on average).
    assert.ok(masks[0] > 0.94, `over the page: IoU ${masks[0]}`);
    assert.ok(masks[0] > masks[1] + 0.03, `over the page ${masks[0]}, alone ${masks[1]}`);
  },
);

Deno.test("feed arena: each job's arrays zeroed, earlier ones kept when it grows, large ones apart", () => {
  const arena = new FeedArena(1 << 21);
  const first = arena.job();
  const a = first(1000).fill(7);
  // More than the first buffer (2²⁰ floats) holds: a new buffer, `a` untouched.
  const b = first(1 << 20).fill(9);
  assert.ok(a.every((v) => v === 7) && b.every((v) => v === 9));
  assert.notEqual(a.buffer, b.buffer);
  // The next job reuses the buffer, zeroed.
  const c = arena.job()(1 << 20);
  assert.equal(c.buffer, b.buffer);
  assert.ok(c.every((v) => v === 0));
  // Over the cap: an array of its own.
  const big = arena.job()((1 << 21) + 1);
  assert.notEqual(big.buffer, b.buffer);
  arena.release();
  assert.notEqual(arena.job()(4).buffer, b.buffer);
});

Deno.test("feed arena: a page graph's feeds from it equal new arrays, job after job", async () => {
  const o = DEFAULT_FOCUS_OPTIONS;
  const jobs = [];
  for (const [w, h] of [[1280, 960], [640, 480], [1280, 960]]) {
    const lines = [0, 1, 2, 3].map((i) => ({ text: `Feeds of page ${w}, line ${i}`, x: 40, y: 60 + 40 * i, size: 20 }));
    const img = await decodeImage(new Uint8Array(await (await textImage(w, h, lines)).image.encode()));
    const { geo, ink, windows } = coverInk(text, img, 1 << 30, o);
    jobs.push({ ...inkPooling(text, geo, ink, windows, o)!, windows: windows.map((f) => f.window) });
  }
  const arena = new FeedArena(1 << 24);
  for (const job of jobs) {
    // A job before it left garbage in every float the next one takes.
    arena.job()(1 << 22).fill(NaN);
    const inputs = job.windows.map((w) => ({ dims: [1, 3, w.h, w.w], data: new Float32Array(3 * w.h * w.w) }));
    const want = pageFeeds(g, job, inputs, blankPixels(job, fmt));
    const got = pageFeeds(g, job, inputs, blankPixels(job, fmt), arena.job());
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
    for (const [name, t] of Object.entries(want)) {
      assert.deepEqual(got[name].dims, t.dims, name);
      assert.deepEqual(got[name].data, t.data, name);
    }
  }
});
