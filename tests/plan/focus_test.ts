// Glance → focus (lib/plan/focus.ts, lib/plan/cover.ts): the cover geometry, pricing and budgets with stand-in pools
// (no model runs), then the real detector on a rendered page through the Segmenter.

import assert from "node:assert/strict";
import { Executor, type InferencePool, priceCalls } from "../../lib/exec/mod.ts";
import { UnprocessableError } from "../../lib/errors.ts";
import type { RgbaImage } from "../../lib/image/mod.ts";
import { ModelRegistry } from "../../lib/models.ts";
import {
  type Box,
  DEFAULT_FOCUS_OPTIONS,
  DEFAULT_PLANNER_OPTIONS,
  type FocusOptions,
  focusPlanner,
  glanceCall,
  glancePath,
  glanceScale,
  wholeImageCall,
} from "../../lib/plan/mod.ts";
import { coverInk, CROSSED_HALO, inkPooling, outputCores } from "../../lib/plan/ink_cover.ts";
import { atHalo, coverFloor } from "../../lib/plan/focus_budget.ts";
import { PRELOADED_WINDOWS } from "../../lib/onnx/page_inputs.ts";
import { narrowerSqueeze, widerSqueeze } from "../../lib/plan/squeeze.ts";
import { crossedSides } from "../../lib/plan/cover.ts";
import { Segmenter } from "../../lib/segment.ts";

import type { LevelsInput, ModelInput, Tensor } from "../../workers/protocol.ts";
import { RecordingPool, startPool } from "../_pool.ts";
import { stripedPage, textImage } from "../_util.ts";
import { iou } from "../../bench/_bench.ts";

/** What a pool's `prepare` is handed (lib/exec/pool.ts). */
type PrepareArgs = Parameters<NonNullable<InferencePool["prepare"]>>;

const registry = await ModelRegistry.load();
const text = registry.model("text-ppocrv4-det");
const task = registry.task("text");

/** Answers every window with the same probability `p` (a glance that is unsure everywhere, for p near 0.3). */
class ConstantPool implements InferencePool {
  readonly backend = "constant";
  readonly jobs: { dims: number[]; input: Float32Array | ModelInput }[] = [];
  /** With `spot`, the first job (a glance) answers `p` in its top-left 32×32 outputs only, 0 elsewhere. */
  constructor(readonly p: number, readonly spot = false) {}
  run(_model: string, dims: number[], input: Float32Array | ModelInput) {
    this.jobs.push({ dims, input });
    if (!(input instanceof Float32Array) && input.kind === "levels") {
      // A level-by-level job answers each of a window's tail regions, named `<window>.<region>`.
      const outputs = Object.fromEntries(
        input.tails.flatMap((regions, i) =>
          regions.map((
            r,
            j,
          ) => [`${i}.${j}`, { dims: [1, 1, r.h, r.w], data: new Float32Array(r.h * r.w).fill(this.p) }])
        ),
      );
      return Promise.resolve({ outputs, inferMs: 0, queueMs: 0 });
    }
    const [n, , h, w] = dims;
    const out: Tensor = { dims: [n, 1, h, w], data: new Float32Array(n * h * w).fill(this.p) };
    if (this.spot && this.jobs.length === 1) {
      out.data.fill(0);
      for (let y = 0; y < Math.min(32, h); y++) out.data.fill(this.p, y * w, y * w + Math.min(32, w));
    }
    return Promise.resolve({ outputs: { out }, inferMs: 0, queueMs: 0 });
  }
}

async function plan(pool: InferencePool, image: RgbaImage, budgetFlops?: number, focus: Partial<FocusOptions> = {}) {
  const options = DEFAULT_PLANNER_OPTIONS;
  const exec = new Executor(pool, image, { budgetFlops, maxExecPixels: options.maxExecPixels, timeoutMs: 1000 });
  const outcome = await focusPlanner(text, focus)({ registry, task, image, exec, options, budgetFlops });
  return { outcome, exec };
}

const wholeFlops = (image: RgbaImage) =>
  text.counter.count([1, 3, Math.ceil(image.height / 32) * 32, Math.ceil(image.width / 32) * 32]).flops;
const glanceFlops = (image: RgbaImage, scale: number, scaleY = scale) => {
  const [w] = glanceCall(text, image.width, image.height, scale, scaleY).windows;
  return text.counter.count([1, 3, Math.round(w.h * scaleY), Math.round(w.w * scale)]).flops;
};

Deno.test("glance scale: ½, or ¼ for images far above the reference size or over the execution limit", () => {
  assert.equal(glanceScale(1366, 768, task.reference, 1 << 22), 0.5);
  assert.equal(glanceScale(4000, 3000, task.reference, 1 << 22), 0.25);
  assert.equal(glanceScale(4000, 2400, task.reference, 1 << 21), 0.25);
  const [w] = glanceCall(text, 1366, 768, 0.5).windows;
  assert.deepEqual([w.w % 64, w.h % 64], [0, 0], "the scaled glance is a multiple of 32");
});

Deno.test("the tail's regions: a window's inked cells in few rectangles, the mask written there only", () => {
  // Two bands of ink 128 px apart: one window or two, but the blank band between them is no tail region's.
  const image = stripedPage(640, 480, [{ x: 64, y: 64, w: 400, h: 64 }, { x: 64, y: 256, w: 400, h: 64 }]);
  const o = DEFAULT_FOCUS_OPTIONS;
  const { geo, ink, windows } = coverInk(text, image, DEFAULT_PLANNER_OPTIONS.maxExecPixels, o);
  const parts = windows.flatMap((f) => f.parts ?? []);
  assert.equal(parts.length, 2);
  for (const p of parts) assert.ok(p.y + p.h <= 160 || p.y >= 224, `${JSON.stringify(p)} spans the blank band`);
  const levels = inkPooling(text, geo, ink, windows, o)!;
  assert.deepEqual(outputCores(geo, windows, levels), parts);
  // Each region grown by `tailGrow` on every side, inside its window; grown by the tail's halo where asked.
  const grown = (g: number) => parts.map((p) => [p.w + 2 * g, p.h + 2 * g]);
  assert.deepEqual(levels.tails.flat().map((r) => [r.w, r.h]), grown(o.tailGrow));
  const h = text.levels!.graphs.tail.halo, exact = { ...o, tailGrow: h };
  assert.deepEqual(inkPooling(text, geo, ink, windows, exact)!.tails.flat().map((r) => [r.w, r.h]), grown(h));
  assert.throws(() => inkPooling(text, geo, ink, windows, { ...o, tailGrow: 6 }), /not a multiple/);
  // Without level-by-level pooling each window writes its whole core.
  assert.deepEqual(outputCores(geo, windows), windows.map((f) => f.core));
});

Deno.test("a window over the whole page leaves nothing to blank page: no blank colours, no blank part in its price", () => {
  const maxExec = DEFAULT_PLANNER_OPTIONS.maxExecPixels, o = DEFAULT_FOCUS_OPTIONS;
  const price = (image: RgbaImage) => {
    const { geo, ink, windows } = coverInk(text, image, maxExec, o);
    const levels = inkPooling(text, geo, ink, windows, o)!;
    const flops = priceCalls([{ model: text, windows: windows.map((f) => f.window), levels }], maxExec).flops;
    const parts = windows.map((f, i) =>
      text.levels!.cost.window([1, 3, f.window.h, f.window.w], levels.tails[i].map((t) => [t.h, t.w])).flops
    );
    return { windows, colours: levels.colours.length / 4, flops, parts: parts.reduce((a, b) => a + b, 0) };
  };
  // Ink up to every border: one window over the page, priced at its part alone.
  const full = price(stripedPage(640, 480, [{ x: 0, y: 0, w: 640, h: 480 }]));
  assert.deepEqual(full.windows.map((f) => f.window), [{ x: 0, y: 0, w: 640, h: 480 }]);
  assert.equal(full.colours, 0);
  assert.equal(full.flops, full.parts);
  // Ink in a corner: the rest of the page counts at its blank colour, and the blank part is priced.
  const corner = price(stripedPage(1280, 960, [{ x: 0, y: 0, w: 320, h: 240 }]));
  assert.equal(corner.colours, 1);
  assert.ok(corner.flops > corner.parts);
});

Deno.test("the tail's regions are cut on the finer tail cells: a thin line of text is not a whole cell tall", () => {
  // Two lines of ink (2-px stripes): rows 72–81, columns 100–299 and rows 136–145, columns 100–163. On the cover's
  // 32 px cells they fill rows 64–95 and 128–159; on the tail's 8 px cells rows 72–87 and 136–151.
  const image = stripedPage(640, 480, [{ x: 100, y: 70, w: 200, h: 12 }, { x: 100, y: 136, w: 64, h: 10 }]);
  const o = DEFAULT_FOCUS_OPTIONS;
  assert.equal(o.tailCell, 8);
  const parts = (tailCell: number) =>
    coverInk(text, image, DEFAULT_PLANNER_OPTIONS.maxExecPixels, { ...o, tailCell }).windows
      .flatMap((f) => f.parts ?? []).sort((a, b) => a.y - b.y);
  assert.deepEqual(parts(8), [{ x: 96, y: 72, w: 208, h: 16 }, { x: 96, y: 136, w: 72, h: 16 }]);
  assert.deepEqual(parts(32), [{ x: 96, y: 64, w: 224, h: 32 }, { x: 96, y: 128, w: 96, h: 32 }]);
  assert.throws(() => parts(2), /tail cell/);
  // Ink in every cell of a window (a photo): its core, whatever the cell.
  const dense = stripedPage(256, 256, [{ x: 0, y: 0, w: 256, h: 256 }]);
  const [photo] = coverInk(text, dense, DEFAULT_PLANNER_OPTIONS.maxExecPixels, o).windows;
  assert.deepEqual(photo.parts, [photo.core]);
  // Nor one window over the whole page with ink in nearly every cell (`PHOTO_INK`): 247 of 256, a blank corner of 3×3
  // cells the cut would drop. A blank row of cells across it (a band), the cut drops.
  const maxExec = DEFAULT_PLANNER_OPTIONS.maxExecPixels;
  const corner = stripedPage(512, 512, [{ x: 96, y: 0, w: 416, h: 96 }, { x: 0, y: 96, w: 512, h: 416 }]);
  const [uncut] = coverInk(text, corner, maxExec, o).windows;
  assert.deepEqual(uncut.core, { x: 0, y: 0, w: 512, h: 512 });
  assert.deepEqual(uncut.parts, [uncut.core]);
  assert.deepEqual(coverInk(text, corner, maxExec, { ...o, tailCell: 32 }).windows[0].parts, [uncut.core]);
  const band = stripedPage(512, 512, [{ x: 0, y: 0, w: 512, h: 224 }, { x: 0, y: 256, w: 512, h: 256 }]);
  assert.deepEqual(coverInk(text, band, maxExec, o).windows[0].parts, [
    { x: 0, y: 0, w: 512, h: 224 },
    { x: 0, y: 256, w: 512, h: 256 },
  ]);
});

Deno.test("the tail's regions bridge a short gap in a line (an icon and its label): the mask is written across it", () => {
  // An icon (24×32) and a line of text 40 px to its right, a longer line below: the icon's rows differ from the line's,
  // so the cut parts them, and without the bridge no region holds the gap between them (columns 64–103).
  const image = stripedPage(640, 480, [
    { x: 40, y: 64, w: 24, h: 32 },
    { x: 104, y: 72, w: 300, h: 12 },
    { x: 64, y: 160, w: 400, h: 12 },
  ]);
  const o = DEFAULT_FOCUS_OPTIONS;
  assert.equal(o.tailGap, 48);
  const parts = (tailGap: number) =>
    coverInk(text, image, DEFAULT_PLANNER_OPTIONS.maxExecPixels, { ...o, tailGap }).windows.flatMap((f) =>
      f.parts ?? []
    );
  const holds = (ps: { x: number; y: number; w: number; h: number }[], x: number, y: number) =>
    ps.some((p) => x >= p.x && x < p.x + p.w && y >= p.y && y < p.y + p.h);
  assert.ok(holds(parts(48), 80, 76), JSON.stringify(parts(48)));
  assert.ok(!holds(parts(0), 80, 76), JSON.stringify(parts(0)));
  // A gap wider than the bridge stays unwritten.
  assert.ok(!holds(parts(32), 80, 76));
  // Nothing above or below the line's rows is bridged.
  assert.ok(!holds(parts(48), 80, 100));
});

Deno.test("the tail's regions bridge no gap where that would tie the lines to a tall column of ink at a cost", () => {
  // A column of ink 8 px wide down the page (the shaded edge of a box) and 30 short lines 32 px to its right: bridged,
  // every line joins the column and the cut keeps the blank between them (about twice the area); so the cut without
  // the bridge runs.
  const lines = Array.from(
    { length: 30 },
    (_, k) => ({ x: 80 + (k % 3) * 150, y: 10 + 15 * k, w: 60 + (k % 5) * 20, h: 6 }),
  );
  const image = stripedPage(640, 480, [{ x: 40, y: 8, w: 8, h: 470 }, ...lines]);
  const parts = (tailGap: number) =>
    coverInk(text, image, DEFAULT_PLANNER_OPTIONS.maxExecPixels, { ...DEFAULT_FOCUS_OPTIONS, tailGap }).windows
      .flatMap((f) => f.parts ?? []);
  assert.deepEqual(parts(48), parts(0));
});

Deno.test("the tail skips a frame around the text: its regions cover the text's cells, not the rules", () => {
  // Two blocks of text (broken stripes) inside a 1 px frame: rules at rows 40 and 439, columns 40 and 599.
  const image = stripedPage(640, 480, [{ x: 100, y: 100, w: 300, h: 40 }, { x: 100, y: 300, w: 200, h: 40 }]);
  const line = (x0: number, y0: number, x1: number, y1: number) => {
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) image.data.fill(0, 4 * (y * 640 + x), 4 * (y * 640 + x) + 3);
    }
  };
  line(40, 40, 600, 41), line(40, 439, 600, 440), line(40, 40, 41, 440), line(599, 40, 600, 440);
  const o = DEFAULT_FOCUS_OPTIONS;
  assert.equal(o.tailLineRun, 8);
  const parts = (tailLineRun: number) =>
    coverInk(text, image, DEFAULT_PLANNER_OPTIONS.maxExecPixels, { ...o, tailLineRun }).windows
      .flatMap((f) => f.parts ?? []);
  const area = (ps: { w: number; h: number }[]) => ps.reduce((s, p) => s + p.w * p.h, 0);
  const skipping = parts(8), all = parts(0);
  // Both cover the text's cells; only the runs of 0 cover the frame.
  for (const ps of [skipping, all]) {
    for (const [x, y] of [[100, 100], [399, 139], [100, 300], [299, 339]]) {
      assert.ok(ps.some((p) => x >= p.x && x < p.x + p.w && y >= p.y && y < p.y + p.h), `(${x}, ${y})`);
    }
  }
  const onFrame = (ps: typeof all) => ps.some((p) => p.y <= 40 && p.y + p.h > 40 || p.x <= 40 && p.x + p.w > 40);
  assert.ok(onFrame(all));
  assert.ok(!onFrame(skipping));
  assert.ok(area(skipping) < area(all) / 2, `${area(skipping)} vs ${area(all)}`);
});

Deno.test("no budget: only the ink runs, on haloed windows aligned to the model's multiple, cheaper than full", async () => {
  const image = stripedPage(1280, 720, [{ x: 64, y: 64, w: 400, h: 200 }, { x: 700, y: 500, w: 300, h: 100 }]);
  const pool = new RecordingPool();
  const { outcome, exec } = await plan(pool, image);
  assert.ok(exec.flops < wholeFlops(image));
  assert.ok(exec.flops > 0);
  // One level-by-level job: every window's pools average over the page (the model has squeeze-excitation blocks).
  assert.equal(pool.jobs.length, 1);
  const job = pool.jobs[0].input as LevelsInput;
  assert.equal(job.kind, "levels");
  assert.deepEqual(job.page, { w: 1280, h: 736 });
  // Its windows went to the pool ahead of it, under its key (a worker builds their input meanwhile).
  assert.deepEqual(pool.prepared, [{ key: job.key, windows: job.windows }]);
  for (const win of job.windows) assert.deepEqual([win.w % 32, win.h % 32], [0, 0]);
  assert.deepEqual(job.colours, Uint8Array.of(255, 255, 255, 255), "one blank colour: the white page");
  // Each window counts its core in whole cells first; cores do not overlap.
  job.counted.forEach((c, i) => {
    const win = job.windows[i];
    assert.ok(c.x >= win.x && c.y >= win.y && c.x + c.w <= win.x + win.w && c.y + c.h <= win.y + win.h);
  });
  // Its tail runs on up to the model's slots of regions inside it, each its inked cells grown by the tail's halo:
  // here one block of ink per window, so one region, smaller than the window.
  job.tails.forEach((regions, i) => {
    const win = job.windows[i], c = job.counted[i], t = text.levels!.graphs.tail.halo;
    assert.equal(regions.length, 1);
    const [r] = regions;
    assert.ok(r.x >= win.x && r.y >= win.y && r.x + r.w <= win.x + win.w && r.y + r.h <= win.y + win.h);
    assert.ok(r.w * r.h < win.w * win.h && r.w <= c.w + 2 * t && r.h <= c.h + 2 * t);
  });
  const ran = outcome.tiles.filter((t) => t.model !== null);
  assert.ok(ran.every((t) => t.scale === 1 && t.halo === DEFAULT_FOCUS_OPTIONS.pageHalo));
  // Blocks with no ink are reported as skipped (model null) and overlap no focus window.
  const skipped = outcome.tiles.filter((t) => t.model === null);
  assert.ok(skipped.length > 0);
  const overlaps = (a: Box, b: Box) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  assert.ok(skipped.every((s) => !ran.some((t) => overlaps(s, t))));
  assert.ok(outcome.coverage);
  assert.equal(outcome.coverage.unresolved_share, 0);
  const cores = ran.reduce((s, t) => s + t.w * t.h, 0) / (1280 * 720);
  assert.ok(Math.abs(outcome.coverage.full_res_share - cores) < 1e-3);
  // A blank image costs nothing and has no text.
  const blank = await plan(new RecordingPool(), stripedPage(640, 480, []));
  assert.equal(blank.exec.flops, 0);
  assert.ok(blank.outcome.mask.every((v) => v === 0));
});

Deno.test("no budget, windows over one execution's limit together: each pools alone, at the model's halo", async () => {
  const image = stripedPage(1280, 720, [{ x: 64, y: 64, w: 400, h: 200 }, { x: 700, y: 500, w: 300, h: 100 }]);
  const pool = new RecordingPool();
  const options = { ...DEFAULT_PLANNER_OPTIONS, maxExecPixels: 2 ** 18 };
  const exec = new Executor(pool, image, { maxExecPixels: options.maxExecPixels, timeoutMs: 1000 });
  const outcome = await focusPlanner(text)({ registry, task, image, exec, options });
  assert.ok(pool.jobs.length >= 1);
  assert.ok(pool.jobs.every((j) => (j.input as ModelInput & { kind: string }).kind === "windows"));
  const ran = outcome.tiles.filter((t) => t.model !== null);
  assert.ok(ran.length >= 2 && ran.every((t) => t.halo === 32));
});

Deno.test("never dearer than full resolution: ink everywhere runs the whole image once", async () => {
  const image = stripedPage(700, 500, [{ x: 0, y: 0, w: 700, h: 500 }]);
  const pool = new RecordingPool();
  const { outcome, exec } = await plan(pool, image);
  assert.equal(exec.flops, wholeFlops(image));
  assert.equal(pool.jobs.length, 1);
  assert.deepEqual(pool.jobs[0].dims, [1, 3, 512, 704]);
  assert.deepEqual(outcome.coverage, { full_res_share: 1, unresolved_share: 0 });
  wholeImageCall(text, 700, 500, 1 << 22); // fits one execution
});

Deno.test("one window over the whole page goes to a worker ahead too; the whole image's job takes it instead", async () => {
  // A dense page: its cover is one window, the whole page, and that cover runs (its tail skips the blank band).
  const dense = stripedPage(448, 416, [{ x: 16, y: 16, w: 416, h: 160 }, { x: 16, y: 240, w: 416, h: 160 }]);
  const pool = new RecordingPool();
  const { exec } = await plan(pool, dense);
  assert.ok(exec.flops < wholeFlops(dense));
  const job = pool.jobs[0].input as LevelsInput;
  assert.equal(job.kind, "levels");
  assert.deepEqual(job.windows, [{ x: 0, y: 0, w: 448, h: 416 }]);
  assert.deepEqual(pool.prepared, [{ key: job.key, windows: job.windows }]);
  // Ink everywhere: the same one window, but the whole image runs (never dearer), on that window, under that key.
  const inked = stripedPage(320, 320, [{ x: 0, y: 0, w: 320, h: 320 }]);
  const again = new RecordingPool();
  await plan(again, inked);
  const whole = again.jobs[0].input as ModelInput & { kind: "windows"; key?: string; windows: unknown[] };
  assert.equal(whole.kind, "windows");
  assert.deepEqual(again.prepared, [{ key: whole.key, windows: whole.windows }]);
  assert.ok(whole.key);
});

Deno.test("glance path: full height while the width shrinks to the aspect, then both, down to ¼", () => {
  const { aspect } = DEFAULT_FOCUS_OPTIONS;
  const path = glancePath(32, aspect);
  assert.deepEqual(path[0], [33, 32]);
  assert.deepEqual(path.at(-1), [128, 128]);
  for (let i = 1; i < path.length; i++) {
    const [[px, py], [qx, qy]] = [path[i - 1], path[i]];
    assert.ok(qx >= px && qy >= py && qx + qy > px + py, `step ${i}: never larger than the step before`);
    assert.ok(qx >= qy && qx <= 128 && qy <= 128, "never taller than wide, never below ¼");
    if (qy > 32 && qx < 128) assert.ok(Math.abs(qy / qx - aspect) < 0.02, `step ${i}: at the aspect`);
  }
  assert.equal(path.filter(([, qy]) => qy === 32).at(-1)![0], Math.ceil(32 / aspect) - 1, "full height to the aspect");
});

Deno.test("budget: honoured, the largest glance that fits, its mask kept where nothing was focused", async () => {
  // Without the scout (the next test): one glance as large as the budget allows.
  const noScout = { scout: false };
  const image = stripedPage(1280, 960, [{ x: 0, y: 0, w: 1280, h: 960 }]);
  const full = wholeFlops(image);
  const path = glancePath(32, DEFAULT_FOCUS_OPTIONS.aspect);
  const seen = new Set<string>();
  for (const share of [0.3, 0.5, 0.75]) {
    const budget = Math.floor(full * share);
    // A glance that sees text everywhere, above the threshold of a shrunk glance (0.7): confidently text.
    const pool = new ConstantPool(0.8);
    const { outcome, exec } = await plan(pool, image, budget, noScout);
    assert.ok(exec.flops <= budget, `spent ${exec.flops} over ${budget}`);
    // The first execution is the glance at scale 32/qx across, 32/qy down: a step of the path, and the step before
    // it (larger) would not fit.
    const { scale, scaleY = scale } = outcome.tiles[0];
    const qx = Math.round(32 / scale), qy = Math.round(32 / scaleY);
    const i = path.findIndex(([x, y]) => x === qx && y === qy);
    assert.ok(i > 0, `glance ${qx}×${qy} is a step of the path`);
    seen.add(qy === 32 ? "full height" : "shorter");
    assert.deepEqual(pool.jobs[0].dims.slice(2), [Math.ceil(960 / qy) * 32, Math.ceil(1280 / qx) * 32]);
    assert.ok(glanceFlops(image, scale, scaleY) <= budget);
    assert.ok(glanceFlops(image, 32 / path[i - 1][0], 32 / path[i - 1][1]) > budget, "the larger step fits too");
    assert.ok(outcome.coverage);
    assert.ok(outcome.coverage.full_res_share < 1);
    assert.ok(outcome.coverage.unresolved_share > 0, "the budget left text pixels unfocused, and says so");
    assert.ok(
      Math.abs(outcome.coverage.full_res_share + outcome.coverage.unresolved_share - 1) < 1e-3,
      "every pixel is text: what was not focused is unresolved",
    );
    assert.ok(outcome.mask.every((v) => v === 1), "the glance's text stays in the mask where nothing was focused");
  }
  assert.deepEqual([...seen].sort(), ["full height", "shorter"], "75 % keeps full height, 30 % does not");
  // A shrunk glance thresholds at 0.7: an unsure 0.35 everywhere is not text.
  const unsure = await plan(new ConstantPool(0.35), image, Math.floor(full * 0.3), noScout);
  assert.ok(unsure.outcome.mask.every((v) => v === 0));
  // At the ¼ glance's price: the ¼ glance alone; below that, 422 with the cheapest plan's price.
  const quarter = glanceFlops(image, 0.25);
  const pool = new ConstantPool(0.8);
  const { outcome, exec } = await plan(pool, image, quarter, noScout);
  assert.equal(exec.flops, quarter);
  assert.equal(outcome.tiles[0].scale, 0.25);
  assert.ok(outcome.mask.every((v) => v === 1));
  await assert.rejects(plan(new ConstantPool(0.35), image, quarter - 1, noScout), (err: unknown) => {
    assert.ok(err instanceof UnprocessableError);
    assert.ok(Math.abs((err.extra.min_gflops as number) - quarter / 1e9) < 1e-3);
    return true;
  });
});

Deno.test("budget, ink everywhere (a photo): the ¼ glance scouts, focus where it marks, the largest glance beside", async () => {
  const image = stripedPage(1280, 960, [{ x: 0, y: 0, w: 1280, h: 960 }]);
  const full = wholeFlops(image), quarter = glanceFlops(image, 0.25), budget = Math.floor(full * 0.5);
  const path = glancePath(32, DEFAULT_FOCUS_OPTIONS.aspect), share = DEFAULT_FOCUS_OPTIONS.scoutFocusShare;
  const scales = (pool: ConstantPool) => pool.jobs.map((j) => j.dims.slice(2).join("x"));
  const at = (side: number) => text.counter.count([1, 3, side, side]).flops;
  const fullRes = (pool: ConstantPool) =>
    pool.jobs.filter((j) => {
      const input = j.input as Extract<ModelInput, { kind: "windows" }>;
      return input.kind === "windows" && j.dims[2] === input.windows[0].h && j.dims[3] === input.windows[0].w;
    });
  // Sure of text everywhere (0.8): the scout, focus windows at full resolution on at most its share of what is left,
  // the largest glance beside them.
  const sure = new ConstantPool(0.8);
  const a = await plan(sure, image, budget);
  assert.deepEqual(sure.jobs[0].dims, [1, 3, 256, 320], "the ¼ glance first");
  const focused = fullRes(sure).reduce((s, j) => s + text.counter.count(j.dims).flops, 0);
  assert.ok(focused > 0 && focused <= share * (budget - quarter), `focus ${focused} within its share`);
  assert.ok(a.outcome.tiles[0].scale > 0.25, `a glance larger than the scout: ${scales(sure)}`);
  assert.ok(a.exec.flops <= budget);
  assert.ok(a.outcome.coverage!.full_res_share > 0 && a.outcome.coverage!.unresolved_share > 0);
  // Sure of text in one corner: the cells it marked (its top-left 32×32 outputs, scaled up to 128 px and blurred into
  // a fifth cell: 160 px) in one window with the widest halo whose window fits the share (96 px: 256² px, where 128
  // px, 288² px, does not), and the larger glance.
  const budget96 = quarter + Math.ceil(at(256) / share) + 1;
  assert.ok(share * (budget96 - quarter) < at(288));
  const spot = new ConstantPool(0.8, true);
  const c = await plan(spot, image, budget96);
  assert.deepEqual(fullRes(spot).map((j) => j.dims), [[1, 3, 256, 256]], "one window at full resolution");
  assert.deepEqual(c.outcome.tiles.filter((t) => t.scale === 1).map((t) => t.halo), [96]);
  assert.ok(c.outcome.tiles[0].scale > 0.25, "a glance larger than the scout");
  assert.ok(c.exec.flops <= budget96);
  // Where no halo of the scout's fits its share, but the corner's window at the model's halo (32 px: 192² px) fits
  // `scoutCompleteShare` of what is left: that window, over every cell it marked, above the plain share.
  const complete = DEFAULT_FOCUS_OPTIONS.scoutCompleteShare, budget32 = quarter + Math.ceil(at(192) / complete) + 1;
  assert.ok(share * (budget32 - quarter) < at(192), "the plain share would not hold the corner at 32 px");
  const whole = new ConstantPool(0.8, true);
  const w = await plan(whole, image, budget32);
  assert.deepEqual(fullRes(whole).map((j) => j.dims), [[1, 3, 192, 192]], "the corner in one window");
  assert.deepEqual(w.outcome.tiles.filter((t) => t.scale === 1).map((t) => t.halo), [32]);
  assert.ok(w.exec.flops <= budget32);
  // With that share at the plain one: the most unsure of its cells only.
  const part = new ConstantPool(0.8, true);
  await plan(part, image, budget32, { scoutCompleteShare: share });
  const partFlops = fullRes(part).reduce((s, j) => s + text.counter.count(j.dims).flops, 0);
  assert.ok(partFlops <= share * (budget32 - quarter) && partFlops < at(192), `${fullRes(part).map((j) => j.dims)}`);
  // Unsure in that corner only (0.35): blind still; its corner at the model's halo, and the larger glance beside it.
  const unsure = new ConstantPool(0.35, true);
  const u = await plan(unsure, image, budget);
  assert.deepEqual(u.outcome.tiles.filter((t) => t.scale === 1).map((t) => t.halo), [32]);
  assert.ok(u.outcome.tiles[0].scale > 0.25, "a glance larger than the scout");
  // Sure of nothing (background everywhere): no focus; the largest glance of the path that fits beside the scout
  // replaces its mask.
  const none = new ConstantPool(0);
  const b = await plan(none, image, budget);
  const { scale, scaleY = scale } = b.outcome.tiles[0];
  const i = path.findIndex(([x, y]) => x === Math.round(32 / scale) && y === Math.round(32 / scaleY));
  assert.ok(i > 0 && scale > 0.25, `a glance of the path, larger than the scout: ${scales(none)}`);
  assert.equal(none.jobs.length, 2);
  assert.equal(b.exec.flops, quarter + glanceFlops(image, scale, scaleY));
  assert.ok(b.exec.flops <= budget);
  assert.ok(quarter + glanceFlops(image, 32 / path[i - 1][0], 32 / path[i - 1][1]) > budget, "the larger step fits");
  assert.ok(b.outcome.mask.every((v) => v === 0));
});

Deno.test("budget below the complete plan: the ink cover at the largest narrower halo that fits, pooling over the page", async () => {
  // Ink on the left fifth: the cover at 64 px is 320 px wide, at 32 px 288 (the tail runs on 272 in both). A budget
  // between their prices.
  const image = stripedPage(1280, 960, [{ x: 0, y: 0, w: 256, h: 960 }]);
  const maxExec = DEFAULT_PLANNER_OPTIONS.maxExecPixels;
  const price = (pageHalo: number) => {
    const o = { ...DEFAULT_FOCUS_OPTIONS, pageHalo };
    const { geo, ink, windows } = coverInk(text, image, maxExec, o);
    const levels = inkPooling(text, geo, ink, windows, o)!;
    assert.equal(windows[0].window.w, 256 + pageHalo);
    return priceCalls([{ model: text, windows: windows.map((f) => f.window), levels }], maxExec).flops;
  };
  const budget = Math.floor((price(32) + price(64)) / 2);
  const pool = new RecordingPool();
  const { outcome, exec } = await plan(pool, image, budget);
  assert.ok(exec.flops <= budget, `spent ${exec.flops} over ${budget}`);
  assert.equal(pool.jobs.length, 1, "no glance: one job");
  assert.equal((pool.jobs[0].input as LevelsInput).kind, "levels");
  assert.deepEqual(pool.prepared, [], "under a budget below the whole image, no window is handed ahead");
  const ran = outcome.tiles.filter((t) => t.model !== null);
  assert.ok(ran.length >= 1 && ran.every((t) => t.scale === 1 && t.halo === 32), JSON.stringify(ran));
  assert.equal(Math.max(...ran.map((t) => t.x + t.w)), 256, "the cores cover the ink");
  assert.deepEqual(outcome.coverage, { full_res_share: 0.2, unresolved_share: 0 });
  // With the narrower covers and the squeezed cover off, the same budget glances.
  const { outcome: o2 } = await plan(new ConstantPool(0.8), image, budget, { budgetHalos: [], minSqueeze: 1 });
  assert.ok(o2.tiles.some((t) => t.model !== null && t.scale < 1));
});

/**
 * `image` planned under `share` of its default cover's price with focus options `focus`, where that buys a squeezed
 * cover: within the budget, one level-by-level job on the image squeezed across, full height. The outcome, that job,
 * the budget.
 */
async function squeezedPlan(image: RgbaImage, share: number, focus: Partial<FocusOptions>) {
  const maxExec = DEFAULT_PLANNER_OPTIONS.maxExecPixels, o = DEFAULT_FOCUS_OPTIONS;
  const { geo, ink, windows } = coverInk(text, image, maxExec, o);
  const levels = inkPooling(text, geo, ink, windows, o)!;
  const coverPrice = priceCalls([{ model: text, windows: windows.map((f) => f.window), levels }], maxExec).flops;
  const budget = Math.floor(coverPrice * share);
  const pool = new ConstantPool(0.8);
  const { outcome, exec } = await plan(pool, image, budget, focus);
  assert.ok(exec.flops <= budget, `spent ${exec.flops} over ${budget}`);
  assert.equal(pool.jobs.length, 1, "no glance: one job");
  const job = pool.jobs[0].input as LevelsInput;
  assert.equal(job.kind, "levels");
  assert.equal(job.image.height, image.height, "full height");
  assert.ok(job.image.width < image.width, `squeezed to ${job.image.width} px`);
  return { outcome, job, budget };
}

Deno.test("budget: where no narrower cover fits, the default cover of the image squeezed across runs, full height", async () => {
  // Ink on the left half, the narrower covers off: the budget buys the default cover of the image squeezed across.
  const image = stripedPage(1280, 960, [{ x: 0, y: 0, w: 640, h: 960 }]);
  const { outcome, job, budget } = await squeezedPlan(image, 0.8, { budgetHalos: [] });
  assert.ok(job.image.width >= 0.7 * 1280, `squeezed to ${job.image.width} px`);
  assert.ok(job.windows.every((w) => w.x + w.w <= Math.ceil(job.image.width / 32) * 32));
  // Reported on the image: cores across the ink at the squeezed scale, full height; nothing at full resolution.
  const ran = outcome.tiles.filter((t) => t.model !== null);
  const scale = job.image.width / 1280;
  assert.ok(ran.length >= 1 && ran.every((t) => t.scale === scale && t.scaleY === 1), JSON.stringify(ran));
  assert.ok(Math.max(...ran.map((t) => t.x + t.w)) >= 640);
  assert.ok(outcome.tiles.some((t) => t.model === null && t.x >= 768), "the blank half is skipped");
  assert.equal(outcome.coverage!.full_res_share, 0);
  // The stand-in answers 0.8 where it runs: text on the ink, stretched back across; background on the blank half. All
  // of what it saw as text ran below full resolution: unresolved.
  assert.equal(outcome.mask[100 * 1280 + 100], 1);
  assert.equal(outcome.mask[100 * 1280 + 630], 1);
  assert.equal(outcome.mask[100 * 1280 + 1000], 0);
  assert.ok(outcome.coverage!.unresolved_share >= 0.45, JSON.stringify(outcome.coverage));
  // Below `minSqueeze` of the width, a glance instead.
  const glanced = new ConstantPool(0.8);
  await plan(glanced, image, budget, { budgetHalos: [], minSqueeze: 0.9, squeezeHalos: [] });
  assert.ok(glanced.jobs.every((j) => (j.input as LevelsInput).kind !== "levels"), "a glance");
});

Deno.test("budget: where the default cover squeezed is narrower than minSqueeze, the squeezed cover at a narrower halo", async () => {
  // A narrow column of ink: the page halo is a large share of its window, so without it the squeeze keeps more width.
  const image = stripedPage(1280, 960, [{ x: 0, y: 0, w: 320, h: 960 }]);
  const options = { budgetHalos: [], minSqueeze: 0.85, squeezeHalos: [0] };
  const { outcome, job, budget } = await squeezedPlan(image, 0.82, options);
  assert.ok(job.image.width >= 0.85 * 1280, `squeezed to ${job.image.width} px`);
  const ran = outcome.tiles.filter((t) => t.model !== null);
  assert.ok(ran.length >= 1 && ran.every((t) => t.halo === 0), JSON.stringify(ran));
  assert.equal(outcome.mask[100 * 1280 + 300], 1);
  // At the page halo alone, the same budget glances.
  const glanced = new ConstantPool(0.8);
  await plan(glanced, image, budget, { ...options, squeezeHalos: [] });
  assert.ok(glanced.jobs.every((j) => (j.input as LevelsInput).kind !== "levels"), "a glance");
});

Deno.test("budget: a narrower halo's squeeze runs where it is squeezeGain times as wide as the page halo's", async () => {
  // Ink on the left half, the narrower covers off: at the page halo and at 0 px the squeezed cover fits, the latter
  // wider (its windows are narrower by the halo: its cover costs 0.92 times as much).
  const image = stripedPage(1280, 960, [{ x: 0, y: 0, w: 640, h: 960 }]);
  const options = { budgetHalos: [], minSqueeze: 0.6, squeezeHalos: [0] };
  const narrow = await squeezedPlan(image, 0.8, { ...options, squeezeGain: Infinity });
  const wide = await squeezedPlan(image, 0.8, { ...options, squeezeGain: 1.05 });
  const halos = (o: typeof wide) => o.outcome.tiles.filter((t) => t.model !== null).map((t) => t.halo);
  assert.ok(halos(narrow).every((h) => h > 0), JSON.stringify(halos(narrow)));
  assert.ok(halos(wide).every((h) => h === 0), JSON.stringify(halos(wide)));
  const [w0, w1] = [narrow.job.image.width, wide.job.image.width];
  assert.ok(w1 >= 1.05 * w0, `${w1} vs ${w0}`);
  // Where the narrower halo's squeeze is not 1.5 times as wide, the page halo's runs.
  const kept = await squeezedPlan(image, 0.8, { ...options, squeezeGain: 1.5 });
  assert.equal(kept.job.image.width, w0);
  assert.ok(halos(kept).every((h) => h > 0));
});

Deno.test("narrowerSqueeze: the width scaled by the miss, the narrowest allowed before a glance", () => {
  // A miss by 5.6 % at 355 px of 563: scaled, 333 px, below 0.6 of the width; the narrowest allowed instead, 338.
  assert.equal(Math.round(563 * narrowerSqueeze(0.63, 355, 563, 1.056, 1, 0.6)), 338);
  // Already at the narrowest allowed: below it, and the search ends.
  assert.ok(narrowerSqueeze(338 / 563, 338, 563, 1.02, 1, 0.6) < 0.6);
  // A miss by far: scaled by how far it missed (0.99 · 1 / 1.5); a small miss: 4 % narrower.
  assert.ok(Math.abs(narrowerSqueeze(0.9, 1152, 1280, 1.5, 1, 0.5) - 0.9 * 0.66) < 1e-12);
  assert.ok(Math.abs(narrowerSqueeze(0.9, 1152, 1280, 1.01, 1, 0.6) - 0.9 * 0.96) < 1e-12);
});

Deno.test("widerSqueeze: a fitting width widened by what the budget leaves, once, below the image's width", () => {
  // 10 % of the budget left: 0.99 of it buys 10 % more width.
  assert.equal(widerSqueeze(600, 1000, 0.9, 1), 660);
  // Less than 4 px to gain: no second try.
  assert.equal(widerSqueeze(600, 1000, 0.99, 1), null);
  assert.equal(widerSqueeze(600, 1000, 0.985, 1), null);
  assert.equal(widerSqueeze(600, 1000, 0.98, 1), 606);
  // Never the image's own width (that is the unsqueezed cover, which did not fit).
  assert.equal(widerSqueeze(900, 1000, 0.5, 1), 999);
});

Deno.test("coverFloor: never above the price of the cover it bounds, without cutting the tail's regions", () => {
  const maxExec = DEFAULT_PLANNER_OPTIONS.maxExecPixels;
  const price = (calls: Parameters<typeof priceCalls>[0]) => priceCalls(calls, maxExec).flops;
  let seed = 5;
  const rnd = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  let tight = 0;
  for (let n = 0; n < 12; n++) {
    const width = 320 + Math.floor(rnd() * 900), height = 240 + Math.floor(rnd() * 900);
    const boxes = Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => ({
      x: Math.floor(rnd() * width * 0.8),
      y: Math.floor(rnd() * height * 0.8),
      w: 8 + Math.floor(rnd() * 300),
      h: 8 + Math.floor(rnd() * 120),
    }));
    const image = stripedPage(width, height, boxes);
    const { ink } = coverInk(text, image, maxExec, DEFAULT_FOCUS_OPTIONS);
    for (const pageHalo of [96, 32, 0]) {
      for (const windowPixels of [65536, 4096]) {
        const o = { ...DEFAULT_FOCUS_OPTIONS, pageHalo, windowPixels };
        const floor = coverFloor(text, image, maxExec, o, ink, price);
        const { geo, windows } = coverInk(text, image, maxExec, o, ink);
        const levels = inkPooling(text, geo, ink, windows, o)!;
        const real = price([{ model: text, windows: windows.map((f) => f.window), levels }]);
        assert.ok(floor <= real, `page ${n}, halo ${pageHalo}, ${windowPixels} px: floor ${floor} over ${real}`);
        if (floor > 0.6 * real) tight++;
      }
    }
  }
  assert.ok(tight > 50, `the floor is near the price (${tight} of 72 above 0.6 of it)`);
});

Deno.test("a budget's cover has no more windows than the page graphs a worker keeps ready", async () => {
  // Five blocks of text 256 px apart in a row: cut with small windows, one window each; under a budget below the
  // default's price (half of it: there five windows at 32 px would fit), the narrower cover that runs has fewer, larger
  // windows.
  const maxExec = DEFAULT_PLANNER_OPTIONS.maxExecPixels;
  const image = stripedPage(
    2048,
    512,
    Array.from({ length: 5 }, (_, i) => ({ x: 64 + 384 * i, y: 192, w: 128, h: 64 })),
  );
  const small = Math.min(...DEFAULT_FOCUS_OPTIONS.budgetWindowPixels);
  assert.equal(coverInk(text, image, maxExec, atHalo(DEFAULT_FOCUS_OPTIONS, 0, small)).windows.length, 5);
  const plan = (budgetFlops?: number) => {
    const exec = new Executor(new RecordingPool(), image, { budgetFlops, maxExecPixels: maxExec, timeoutMs: 1000 });
    return focusPlanner(text)({ registry, task, image, exec, options: DEFAULT_PLANNER_OPTIONS, budgetFlops })
      .then((outcome) => ({ exec, windows: outcome.tiles.filter((t) => t.model !== null && t.scale === 1) }));
  };
  const unbudgeted = await plan();
  const budget = Math.floor(0.5 * unbudgeted.exec.flops);
  const { exec, windows } = await plan(budget);
  assert.ok(exec.flops <= budget, `spent ${exec.flops} over ${budget}`);
  assert.equal(PRELOADED_WINDOWS, 3);
  assert.ok(windows.length >= 1 && windows.length <= PRELOADED_WINDOWS, JSON.stringify(windows));
});

Deno.test("budget: smaller windows skip the blank between blocks of text, so a wider halo fits", async () => {
  // Two blocks of ink 224 px apart: with the default's per-window cost one window at 64 px spans both and the blank
  // between them, with a smaller one each block gets its own. A budget between the two covers' prices.
  const image = stripedPage(1280, 960, [{ x: 256, y: 128, w: 256, h: 64 }, { x: 256, y: 416, w: 256, h: 64 }]);
  const maxExec = DEFAULT_PLANNER_OPTIONS.maxExecPixels;
  const cover = (pageHalo: number, windowPixels: number) => {
    const o = { ...DEFAULT_FOCUS_OPTIONS, pageHalo, windowPixels, crossedHalo: undefined };
    const { geo, ink, windows } = coverInk(text, image, maxExec, o);
    const levels = inkPooling(text, geo, ink, windows, o)!;
    return {
      windows,
      flops: priceCalls([{ model: text, windows: windows.map((f) => f.window), levels }], maxExec).flops,
    };
  };
  const [large, small] = DEFAULT_FOCUS_OPTIONS.budgetWindowPixels;
  assert.equal(cover(64, large).windows.length, 1);
  assert.equal(cover(64, small).windows.length, 2);
  const budget = Math.floor((cover(64, large).flops + cover(64, small).flops) / 2);
  const ran = async (options: Partial<typeof DEFAULT_FOCUS_OPTIONS>) => {
    const exec = new Executor(new RecordingPool(), image, {
      budgetFlops: budget,
      maxExecPixels: maxExec,
      timeoutMs: 1000,
    });
    const outcome = await focusPlanner(text, options)({
      registry,
      task,
      image,
      exec,
      options: DEFAULT_PLANNER_OPTIONS,
      budgetFlops: budget,
    });
    assert.ok(exec.flops <= budget, `spent ${exec.flops} over ${budget}`);
    return outcome.tiles.filter((t) => t.model !== null);
  };
  const tiles = await ran({});
  assert.equal(tiles.length, 2, JSON.stringify(tiles));
  assert.ok(tiles.every((t) => t.scale === 1 && t.halo === 64), JSON.stringify(tiles));
  // Cut with the default's per-window cost only, the same budget buys a narrower halo.
  const before = await ran({ budgetWindowPixels: [large] });
  assert.ok(before.every((t) => t.scale === 1 && t.halo < 64), JSON.stringify(before));
});

Deno.test("budget: the cover at no halo sees past the sides where its XY cut cut through text", () => {
  // An L of ink: a bar along the top (640×64) and a stem down the left (64×576). At no halo the cut parts the stem (the
  // first 64 px columns, top to bottom) from the rest of the bar, each a window of its own: text crosses the bar's left
  // side and the stem's right, so each window sees 32 px past them, and only there.
  const image = stripedPage(1280, 960, [{ x: 0, y: 0, w: 640, h: 64 }, { x: 0, y: 64, w: 64, h: 576 }]);
  assert.ok(DEFAULT_FOCUS_OPTIONS.budgetHalos.includes(0));
  assert.equal(CROSSED_HALO, 32);
  const { windows } = coverInk(text, image, DEFAULT_PLANNER_OPTIONS.maxExecPixels, {
    ...DEFAULT_FOCUS_OPTIONS,
    pageHalo: 0,
    crossedHalo: undefined,
  });
  const got = windows.map((f) => [f.core, f.window]).sort((a, b) => a[0].x - b[0].x);
  assert.deepEqual(got, [
    [{ x: 0, y: 0, w: 64, h: 640 }, { x: 0, y: 0, w: 96, h: 640 }],
    [{ x: 64, y: 0, w: 576, h: 64 }, { x: 32, y: 0, w: 608, h: 64 }],
  ]);
});

Deno.test("default cover: a window's sides where text runs on into another window get the crossed halo, the rest the page halo", () => {
  // An L of ink away from the page's edges: a bar (1280×64) and a stem under its left end (64×896). One window around
  // both would be mostly blank, so the cut parts them, through text at the corner.
  const image = stripedPage(2560, 1920, [{ x: 320, y: 320, w: 1280, h: 64 }, { x: 320, y: 384, w: 64, h: 896 }]);
  const maxExec = DEFAULT_PLANNER_OPTIONS.maxExecPixels;
  const { pageHalo, crossedHalo } = DEFAULT_FOCUS_OPTIONS;
  assert.ok(crossedHalo! > pageHalo);
  const sidesOf = (o: typeof DEFAULT_FOCUS_OPTIONS) => {
    const { ink, windows } = coverInk(text, image, maxExec, o);
    assert.equal(windows.length, 2);
    const crossed = crossedSides(ink, windows.map((f) => f.rect));
    return windows.map(({ core: c, window: w }, k) => ({
      // Px of image the window adds past each side of its core: left, top, right, bottom.
      sides: [c.x - w.x, c.y - w.y, w.x + w.w - (c.x + c.w), w.y + w.h - (c.y + c.h)],
      crossed: crossed[k],
    }));
  };
  const served = sidesOf(DEFAULT_FOCUS_OPTIONS);
  assert.ok(served.every((s) => s.crossed.some(Boolean)), "text crosses a side of each window");
  for (const { sides, crossed } of served) assert.deepEqual(sides, crossed.map((c) => (c ? crossedHalo : pageHalo)));
  // Without it, one halo on every side.
  for (const { sides } of sidesOf({ ...DEFAULT_FOCUS_OPTIONS, crossedHalo: undefined })) {
    assert.deepEqual(sides, [pageHalo, pageHalo, pageHalo, pageHalo]);
  }
});

Deno.test("budget: where ink covers little of the page, the glance runs on the ink cover's windows, at more detail", async () => {
  // Ink on the left third only: the windows skip the blank two thirds, so the same budget buys them more resolution.
  const image = stripedPage(1280, 960, [{ x: 0, y: 0, w: 400, h: 960 }]);
  const budget = Math.floor(wholeFlops(image) * 0.3);
  const pool = new ConstantPool(0.8);
  // (The squeezed cover off: it would run here instead, at 77 % of the width.)
  const { outcome, exec } = await plan(pool, image, budget, { minSqueeze: 1 });
  assert.ok(exec.flops <= budget);
  const ran = outcome.tiles.filter((t) => t.model !== null);
  assert.ok(ran.length >= 1 && ran.every((t) => t.halo === 32 && t.x + t.w <= 480), JSON.stringify(ran));
  const { scale, scaleY = scale } = ran[0];
  const path = glancePath(32, DEFAULT_FOCUS_OPTIONS.aspect);
  const step = path.findIndex(([qx, qy]) => qx === Math.round(32 / scale) && qy === Math.round(32 / scaleY));
  // The whole-image glance at that budget would be a later (smaller) step of the path.
  const wholeStep = path.findIndex(([qx, qy]) => glanceFlops(image, 32 / qx, 32 / qy) <= budget);
  assert.ok(step >= 0 && step < wholeStep, `windows at step ${step}, whole image at ${wholeStep}`);
  // Text inside the windows' cores, background on the skipped blank area (reported with model null).
  assert.ok(outcome.tiles.some((t) => t.model === null && t.x >= 512));
  assert.equal(outcome.mask[100 * 1280 + 100], 1);
  assert.equal(outcome.mask[100 * 1280 + 1000], 0);
  // What the budget had left after the glance bought full resolution on little.
  assert.ok(outcome.coverage && outcome.coverage.full_res_share < 0.05);
});

Deno.test({
  name: "real detector: near the full-resolution mask without a budget; a non-empty mask under a small one",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const pool = await startPool(registry.workerModels().filter((m) => m.id === text.spec.id));
    try {
      const { image } = await textImage(1024, 768, [
        { text: "Glance, then focus", x: 40, y: 40, size: 44 },
        { text: "full resolution only where the ink is", x: 40, y: 140, size: 24 },
        { text: "and nothing on the blank half of the page", x: 40, y: 200, size: 20 },
      ]);
      const bytes = new Uint8Array(await image.encode());
      const seg = new Segmenter(registry, pool);
      const full = await seg.segment({ task: "text", mode: "fixed", bytes });
      const ad = await seg.segment({ task: "text", mode: "adaptive", bytes });
      assert.ok(full.mask.reduce((s, v) => s + v, 0) > 1000, "the page has text");
      // Not 1: the windows' squeeze-excitation blocks pool over the page level by level, the blank page counted at
      // its value far from any text (lib/onnx/levels.ts); near the text it differs, and four fifths of this page are
      // blank. Measured 0.931; each window pooling alone, 0.874.
      const alone = await seg.segment(
        { task: "text", mode: "adaptive", bytes },
        focusPlanner(text, { pooling: "window" }),
      );
      assert.ok(iou(ad.mask, full.mask) > 0.91, `IoU vs full resolution ${iou(ad.mask, full.mask)}`);
      assert.ok(iou(ad.mask, full.mask) > iou(alone.mask, full.mask));
      // The cover's windows go to a free worker ahead of their job (Executor.prepare), which finds their input built
      // there: the same mask as a pool that takes no such hint. The job does take it: an input built from a blank page
      // for its windows is what it ran then; one built for other windows it does not take.
      const hinted = (alter?: (m: PrepareArgs[0]) => PrepareArgs[0]): InferencePool => ({
        backend: pool.backend,
        workers: pool.workers,
        run: (...args) => pool.run(...args),
        ...(alter ? { prepare: (m, dims, flops) => pool.prepare(alter(m), dims, flops) } : {}),
      });
      const blankPage = {
        width: 1024,
        height: 768,
        data: new Uint8Array(new SharedArrayBuffer(4 * 1024 * 768)).fill(255),
      };
      const masks = [];
      for (const alter of [undefined, (m: PrepareArgs[0]) => m, (m: PrepareArgs[0]) => ({ ...m, image: blankPage })]) {
        masks.push(
          (await new Segmenter(registry, hinted(alter)).segment({ task: "text", mode: "adaptive", bytes })).mask,
        );
      }
      const shifted = (m: PrepareArgs[0]) => ({
        ...m,
        image: blankPage,
        windows: m.windows.map((w) => ({ ...w, x: w.x + 32 })),
      });
      masks.push(
        (await new Segmenter(registry, hinted(shifted)).segment({ task: "text", mode: "adaptive", bytes })).mask,
      );
      assert.deepEqual(masks[0], ad.mask);
      assert.deepEqual(masks[1], masks[0], "a prepared input: the same mask");
      assert.notDeepEqual(masks[2], masks[0], "the job ran the input prepared for its windows");
      assert.deepEqual(masks[3], masks[0], "an input prepared for other windows is not used");
      // The whole image's job takes the input prepared for the one window over the whole page (ink everywhere: the
      // plan runs the whole image instead of that window), and none built for other windows.
      // Text on a coarse texture that puts ink in every cell (every other pixel of the page's colour made grey 176).
      const { image: inkedPage } = await textImage(320, 320, [
        { text: "ink in every cell", x: 10, y: 60, size: 28 },
        { text: "of this small page", x: 10, y: 180, size: 28 },
      ]);
      for (let y = 1; y <= 320; y++) {
        for (let x = 1; x <= 320; x++) {
          if ((x + y) % 2 && inkedPage.getPixelAt(x, y) === 0xf4f1eaff) inkedPage.setPixelAt(x, y, 0xb0b0b0ff);
        }
      }
      const inkedBytes = new Uint8Array(await inkedPage.encode());
      const inked = [];
      for (const alter of [undefined, (m: PrepareArgs[0]) => ({ ...m, image: blankPage }), shifted]) {
        const r = await new Segmenter(registry, hinted(alter)).segment({
          task: "text",
          mode: "adaptive",
          bytes: inkedBytes,
        });
        assert.equal(r.plan.coverage?.full_res_share, 1, "the whole image ran");
        inked.push(r.mask);
      }
      assert.notDeepEqual(inked[1], inked[0], "the whole image's job ran the input prepared for its window");
      assert.deepEqual(inked[2], inked[0], "an input prepared for other windows is not used");
      // One window over the whole page: its averages are the whole image's, so the tail's regions read what full
      // resolution does there, and the mask is written there only. Dearer than the cover (the blank half runs too),
      // cheaper than full resolution (the tail skips it).
      const whole = await seg.segment(
        { task: "text", mode: "adaptive", bytes },
        focusPlanner(text, { wholePage: true }),
      );
      assert.ok(iou(whole.mask, full.mask) > 0.995, `one window: IoU vs full resolution ${iou(whole.mask, full.mask)}`);
      const windows = whole.plan.executions.filter((e) => e.model === text.spec.id);
      assert.deepEqual(windows.map((e) => e.dims), [[1, 3, 768, 1024]], "one window, the page");
      assert.ok(whole.cost.flops > ad.cost.flops && whole.cost.flops < full.cost.flops);
      assert.ok(ad.cost.flops < full.cost.flops, "the blank half is skipped");
      assert.ok(ad.plan.coverage && ad.plan.coverage.full_res_share < 0.7);
      // Budgets down to the ¼ glance alone: never over, always a mask with the text the glance saw.
      const quarter = glanceFlops({ width: 1024, height: 768, data: new Uint8Array(0) }, 0.25);
      for (const budgetFlops of [quarter, Math.floor(full.cost.flops * 0.3), Math.floor(full.cost.flops * 0.5)]) {
        const cut = await seg.segment({ task: "text", mode: "adaptive", bytes, budgetFlops });
        assert.ok(cut.cost.flops <= budgetFlops);
        assert.ok(cut.mask.includes(1), `budget ${budgetFlops}: empty mask where the glance saw text`);
        assert.ok(cut.plan.coverage);
      }
    } finally {
      pool.close();
    }
  },
});
