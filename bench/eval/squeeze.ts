// Why windows of the text detector drift from its whole-image mask (the text eval's IoU ≥ 0.97 target):
// `deno run -A bench/eval/squeeze.ts [--halo 32,128|none] [--core 320] [--set test|tune|val|val2] [--page-halo 64]
// [--tail-cell 32] [--tail-line-run 8|0] [--crossed-halo 160|none] [--edge-halos 0,32,96] [--out docs/TEXT_DRIFT.md]
// [images…]` (default: the text test images; writes docs/TEXT_DRIFT.md). Each
// image is cut into core×core windows with a halo, run one by one, and the stitched mask compared (IoU of the text
// class) with the whole-image run, four ways: every squeeze-excitation block pooling over its own window (what
// thriftseg serves), or fed the pooled vectors of the whole-image run (exact: an upper bound no windowed plan can
// reach without running the whole image), of the ½ glance, or of the ¼ glance. Three more columns run the windows
// the served default plan runs (lib/plan/focus.ts: the ink cover's few large windows) with their own pooled vectors,
// with the whole image's, and pooling over the page level by level as the server runs them (the model's page graph:
// lib/onnx/page.ts, fed by workers/levels.ts). A second table runs the ink cover's windows at several halos with
// the whole image's pooled vectors, their edges padded with zeros (as served) or with what lies far inside blank page:
// what the halo buys once pooling is exact. The graph edits are made by bench/eval/squeeze_graphs.py with Debian's
// python3-onnx.

import * as ort from "onnxruntime-node";
import { decodeImage, type RgbaImage, windowsTensor } from "../../lib/image/mod.ts";
import { ModelRegistry } from "../../lib/models.ts";
import { renderMissing } from "./render_pages.ts";
import { iou, option as arg } from "../_bench.ts";
import { priceCalls } from "../../lib/exec/executor.ts";
import { DEFAULT_FOCUS_OPTIONS } from "../../lib/plan/focus.ts";
import { coverInk, coverShare, type FocusWindow, inkPooling, outputCores } from "../../lib/plan/ink_cover.ts";
import type { Box } from "../../lib/plan/geometry.ts";
import { paddedWholeCall } from "../../lib/plan/fixed.ts";
import { blankPixels, pageFeeds } from "../../workers/levels.ts";
import { pageGraph, pageNames } from "../../lib/onnx/page.ts";

const halos = arg("--halo", "32,128") === "none" ? [] : arg("--halo", "32,128").split(",").map(Number);
const CORE = Number(arg("--core", "320"));
const OUT = arg("--out", "docs/TEXT_DRIFT.md");
const SET = arg("--set", "test");
const EDGE_HALOS = arg("--edge-halos", "0,32,96").split(",").map(Number);
const crossedArg = arg("--crossed-halo", String(DEFAULT_FOCUS_OPTIONS.crossedHalo));
// The default plan's options, with another halo for its windows pooling over the page if asked.
const focus = {
  ...DEFAULT_FOCUS_OPTIONS,
  pageHalo: Number(arg("--page-halo", String(DEFAULT_FOCUS_OPTIONS.pageHalo))),
  tailCell: Number(arg("--tail-cell", String(DEFAULT_FOCUS_OPTIONS.tailCell))),
  tailLineRun: Number(arg("--tail-line-run", String(DEFAULT_FOCUS_OPTIONS.tailLineRun))),
  crossedHalo: crossedArg === "none" ? undefined : Number(crossedArg),
};
const files = Deno.args.filter((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--"));
const images = files.length ? files : (await renderMissing()).filter((i) => i.set === SET).map((i) => i.path);

const registry = await ModelRegistry.load();
const model = registry.model("text-ppocrv4-det");
const dir = await Deno.makeTempDir({ prefix: "thriftseg-squeeze-" });
const source = new URL(
  `../../node_modules/${model.spec.source!.npm.replace(/@[^@/]+$/, "")}/${model.spec.source!.path}`,
  import.meta.url,
).pathname;
const py = await new Deno.Command("/usr/bin/python3", {
  args: [new URL("./squeeze_graphs.py", import.meta.url).pathname, source, dir],
}).output();
if (!py.success) throw new Error(new TextDecoder().decode(py.stderr));
const opts = { intraOpNumThreads: navigator.hardwareConcurrency };
const taps = await ort.InferenceSession.create(`${dir}/taps.onnx`, opts);
const fed = await ort.InferenceSession.create(`${dir}/fed.onnx`, opts);
const bpad = await ort.InferenceSession.create(`${dir}/bpad.onnx`, opts);
const blankValues = await ort.InferenceSession.create(`${dir}/blank.onnx`, opts);
const levels = model.levels!.graphs;
// Page graphs by number of windows.
const pageSessions = new Map<string, ort.InferenceSession>();
const pooled = fed.inputNames.filter((n) => n !== taps.inputNames[0]);
const fmt = model.spec.input;
const threshold = model.spec.output.threshold ?? 0.5;
const m = fmt.multiple;
const ru = (v: number) => Math.ceil(v / m) * m;
/** The model's output map on one window, its squeeze-excitation blocks pooling over the window (`pools` null) or fed. */
async function windowMap(img: RgbaImage, win: Box, pools: Record<string, ort.Tensor> | null): Promise<Float32Array> {
  const x = new ort.Tensor("float32", windowsTensor(img, fmt, [win], win.h, win.w), [1, 3, win.h, win.w]);
  return pools === null
    ? (await taps.run({ [taps.inputNames[0]]: x }))[taps.outputNames[0]].data as Float32Array
    : (await fed.run({ [fed.inputNames[0]]: x, ...pools }))[fed.outputNames[0]].data as Float32Array;
}

const rows: string[] = [];
const edgeRows: string[] = [];
let defaultHalo = 0; // the default plan's halo (px), for the text
for (const file of images) {
  const img = await decodeImage(await Deno.readFile(file));
  const { width: W, height: H } = img;
  const PW = ru(W), PH = ru(H);
  const whole = async (scale: number) => {
    const q = Math.round(m / scale), w = Math.ceil(W / q) * q, h = Math.ceil(H / q) * q;
    const iw = Math.round(w * scale), ih = Math.round(h * scale);
    const x = new ort.Tensor("float32", windowsTensor(img, fmt, [{ x: 0, y: 0, w, h }], ih, iw), [1, 3, ih, iw]);
    const out = await taps.run({ [taps.inputNames[0]]: x });
    return {
      map: out[taps.outputNames[0]].data as Float32Array,
      iw,
      pools: Object.fromEntries(pooled.map((n) => [n, out[n]])),
    };
  };
  const full = await whole(1), half = await whole(0.5), quarter = await whole(0.25);
  const ref = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      ref[y * W + x] = full.map[y * full.iw + x] > threshold ? 1 : 0;
    }
  }
  const cells: string[] = [];
  for (const halo of halos) {
    for (const pools of [null, full.pools, half.pools, quarter.pools]) {
      const mask = new Uint8Array(W * H);
      for (let cy = 0; cy < H; cy += CORE) {
        for (let cx = 0; cx < W; cx += CORE) {
          const wx0 = Math.max(0, cx - halo), wy0 = Math.max(0, cy - halo);
          const ww = Math.min(PW, ru(Math.min(PW, cx + CORE + halo) - wx0));
          const wh = Math.min(PH, ru(Math.min(PH, cy + CORE + halo) - wy0));
          const wx = Math.min(wx0, PW - ww), wy = Math.min(wy0, PH - wh);
          const window = { x: wx, y: wy, w: ww, h: wh };
          const core = { x: cx, y: cy, w: Math.min(W - cx, CORE), h: Math.min(H - cy, CORE) };
          writeCore(mask, W, await windowMap(img, window, pools), { window, core }, threshold);
        }
      }
      cells.push(iou(mask, ref).toFixed(3));
    }
  }
  // The default plan's windows (as focusPlanner cuts them; the whole image where they would not be cheaper).
  const maxExec = 1 << 30;
  const { geo, ink, windows: wins } = coverInk(model, img, maxExec, focus);
  const pooling = inkPooling(model, geo, ink, wins, focus)!;
  defaultHalo = geo.halo;
  const wholeFlops = priceCalls([paddedWholeCall(model, W, H)], maxExec).flops;
  const servedFlops = priceCalls([{ model, windows: wins.map((f) => f.window), levels: pooling }], maxExec).flops;
  const windowed = servedFlops < wholeFlops;
  const defaults = [
    async (mask: Uint8Array) => {
      for (const f of wins) writeCore(mask, W, await windowMap(img, f.window, null), f, threshold);
    },
    async (mask: Uint8Array) => {
      for (const f of wins) writeCore(mask, W, await windowMap(img, f.window, full.pools), f, threshold);
    },
    async (mask: Uint8Array) => {
      // Each output covers one of its window's tail regions, and is written on that region's part of the window.
      const outs = await pageMaps(img, wins, pooling), regions = pooling.tails.flat();
      outputCores(geo, wins, pooling).forEach((core, k) =>
        writeCore(mask, W, outs[k], { core, window: regions[k] }, threshold)
      );
    },
  ];
  for (const fill of defaults) {
    if (!windowed) {
      cells.push("whole image");
      continue;
    }
    const mask = new Uint8Array(W * H);
    await fill(mask);
    cells.push(iou(mask, ref).toFixed(3));
  }
  cells.push(windowed ? (servedFlops / wholeFlops).toFixed(3) : "1.000");
  rows.push(`| ${file.split("/").pop()} | ${W}×${H} | ${cells.join(" | ")} |`);
  console.error(rows.at(-1));
  edgeRows.push(`| ${file.split("/").pop()} | ${W}×${H} | ${(await edgeCells(img, ref, full.pools)).join(" | ")} |`);
  console.error(edgeRows.at(-1));
}
const heads = [
  ...halos.flatMap((h) => ["own", "whole image", "½ glance", "¼ glance"].map((p) => `${p}, halo ${h}`)),
  "default's windows, own",
  "default's windows, whole image",
  "default's windows, over the page (served)",
  "served cost ÷ full",
];
const cols = heads.length;
// "whole image" (the default plan runs no windows there) counts as 1.000.
const values = rows.map((r) =>
  r.split("|").slice(3, 3 + cols).map((v) => (v.trim() === "whole image" ? 1 : Number(v)))
);
/** One table of the report: its header, one row per image, then the mean and least of every column. */
const table = (names: string[], lines: string[], numbers: number[][]) => {
  const stat = (f: (xs: number[]) => number) =>
    Array.from({ length: names.length }, (_, c) => f(numbers.map((v) => v[c])).toFixed(3)).join(" | ");
  return [
    `| image | size | ${names.join(" | ")} |`,
    `|---|---|${names.map(() => "---:|").join("")}`,
    ...lines,
    `| **mean** | | ${stat((xs) => xs.reduce((a, b) => a + b, 0) / xs.length)} |`,
    `| **min** | | ${stat((xs) => Math.min(...xs))} |`,
  ];
};
const edgeHeads = EDGE_HALOS.flatMap((h) => [`halo ${h}: cost`, `zeros`, `blank page`]);
const edgeValues = edgeRows.map((r) => r.split("|").slice(3, 3 + edgeHeads.length).map(Number));
const md = [
  "# Text detector: why windows drift from the whole-image mask",
  "",
  `Written by \`deno run -A bench/eval/squeeze.ts${Deno.args.length ? ` ${Deno.args.join(" ")}` : ""}\` (${
    new Date().toISOString().slice(0, 10)
  }, ${navigator.hardwareConcurrency} cores); do not edit by hand. The PP-OCRv4 detector's squeeze-excitation blocks pool every feature map over the`,
  "whole input, and its receptive field is wide: a window sees neither. Each image (the text eval's test images,",
  `docs/EVAL.md) is cut into ${CORE}² px windows with a halo of real neighbour pixels, each window is run alone, and the`,
  "stitched mask is compared with the whole-image run (IoU of the text class). The pooled vectors come from the window",
  "itself (a window run alone), from the whole-image run (exact: no windowed plan can have them without paying for",
  "the whole image, so this is an upper bound), or from the ½ or ¼ glance (what a glance could supply).",
  "",
  "The last three columns run the windows the served default plan runs (`lib/plan/focus.ts`: the ink cover's few large",
  `windows, halo ${defaultHalo} px, ${
    focus.crossedHalo ?? defaultHalo
  } px on a side where the cover's cut runs through`,
  "text) with their own pooled vectors and with the whole image's (the gap between the two is what the",
  "squeeze-excitation pooling alone costs them), and as the server runs them (docs/EVAL.md's default column):",
  "pooling over the page, level by level (`lib/onnx/levels.ts`, `lib/onnx/page.ts`): the windows' own feature maps",
  "where they cover the page (but their outer `POOL_EDGE` px inside it), and for the area they do not, the value the",
  "maps take far inside blank page of that area's colour (exact, from a 1×1 input through the graph with its kernels",
  "summed over space), or near the page's border a blank strip's (`STRIP`), at the windows' price.",
  '"whole image": the default plan runs the whole image there (its windows would not be cheaper), counted as 1.000.',
  "The last column: the served plan's FLOPs (the windows and the blank runs) over one full-resolution run's.",
  "",
  ...table(heads, rows, values),
  "",
  "## What the halo buys once pooling is exact",
  "",
  "The ink cover's windows (`coverInk`, `lib/plan/ink_cover.ts`) at each halo, every window fed the whole image's",
  "pooled vectors, so what is left is the windows' edges: the model sees no page beyond them. _cost_: the windows'",
  "pixels over the padded page's (what the default pays there, before its blank runs). _zeros_: IoU vs the whole-image",
  "mask with the edges padded with zeros, as every served window is. _blank page_: each padded convolution pads a window",
  "edge that faces the page (not the image's border) with the value its input takes far inside blank page of the",
  "page's commonest blank colour under the same vectors (`bench/eval/squeeze_graphs.py`: bpad.onnx, blank.onnx), as if",
  "the page went on blank beyond the window.",
  "",
  ...table(edgeHeads, edgeRows, edgeValues),
  "",
];
await Deno.writeTextFile(OUT, md.join("\n"));
await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", OUT] }).output();
console.log(`wrote ${OUT}`);
await Deno.remove(dir, { recursive: true });

/**
 * Per halo of {@link EDGE_HALOS}: the ink cover's windows' share of the padded page, and the IoU vs `ref` of their
 * cores run with the whole image's pooled vectors, edges padded with zeros and with blank page.
 */
async function edgeCells(img: RgbaImage, ref: Uint8Array, pools: Record<string, ort.Tensor>): Promise<string[]> {
  const { width: W, height: H } = img;
  const cells: string[] = [];
  for (const halo of EDGE_HALOS) {
    const o = { ...focus, pageHalo: halo, crossedHalo: undefined };
    const { geo, ink, windows: wins } = coverInk(model, img, 1 << 30, o);
    const pooling = inkPooling(model, geo, ink, wins, o)!;
    // The page's commonest blank colour: blankColours lists it first.
    const px = blankPixels({ colours: pooling.colours.slice(0, 4) }, fmt);
    const pixel = new ort.Tensor("float32", px.data, px.dims);
    const values = await blankValues.run({ [blankValues.inputNames[0]]: pixel, ...pools });
    // b_<tensor>: one value per channel ([1, C, 1, 1]); the image input's is the colour itself.
    const b: Record<string, ort.Tensor> = {};
    for (const name of bpad.inputNames.filter((n) => n.startsWith("b_"))) {
      const t = values[name.slice(2)] ?? pixel, C = t.dims[1], plane = t.dims[2] * t.dims[3];
      b[name] = new ort.Tensor(
        "float32",
        Float32Array.from({ length: C }, (_, c) => (t.data as Float32Array)[c * plane]),
        [1, C, 1, 1],
      );
    }
    const zeros = new Uint8Array(W * H), blank = new Uint8Array(W * H);
    for (const f of wins) {
      const w = f.window;
      const x = new ort.Tensor("float32", windowsTensor(img, fmt, [w], w.h, w.w), [1, 3, w.h, w.w]);
      const page = [w.y > 0, w.x > 0, w.y + w.h < geo.padH, w.x + w.w < geo.padW].map(Number);
      const sides = new ort.Tensor("float32", Float32Array.from(page), [4]);
      writeCore(zeros, W, await windowMap(img, w, pools), f, threshold);
      const out = await bpad.run({ [bpad.inputNames[0]]: x, ...pools, ...b, sides });
      writeCore(blank, W, out[bpad.outputNames[0]].data as Float32Array, f, threshold);
    }
    cells.push(
      coverShare(geo, wins).toFixed(3),
      iou(zeros, ref).toFixed(3),
      iou(blank, ref).toFixed(3),
    );
  }
  return cells;
}

/** The windows' output maps, pooling over the page level by level, as a `levels` job runs them in a worker. */
async function pageMaps(
  img: RgbaImage,
  wins: FocusWindow[],
  pooling: NonNullable<ReturnType<typeof inkPooling>>,
): Promise<Float32Array[]> {
  const n = wins.length, blank = pooling.colours.length > 0;
  const key = `${n}:${blank}`;
  if (!pageSessions.has(key)) {
    pageSessions.set(key, await ort.InferenceSession.create(pageGraph(levels, n, [], blank), opts));
  }
  const session = pageSessions.get(key)!;
  const inputs = wins.map(({ window: w }) => ({
    dims: [1, 3, w.h, w.w],
    data: windowsTensor(img, fmt, [w], w.h, w.w),
  }));
  const feeds = pageFeeds(
    levels,
    { ...pooling, windows: wins.map((f) => f.window) },
    inputs,
    blankPixels(pooling, fmt),
  );
  const out = await session.run(
    Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor("float32", t.data, t.dims)])),
  );
  return pooling.tails.flatMap((regions, i) =>
    regions.map((_, j) => out[pageNames.output(levels, i, j)].data as Float32Array)
  );
}

/** Thresholds a window's output map over its core into a page-sized mask. */
function writeCore(
  mask: Uint8Array,
  width: number,
  map: Float32Array,
  f: { window: Box; core: Box },
  threshold: number,
) {
  const { core, window: win } = f;
  for (let y = core.y; y < core.y + core.h; y++) {
    for (let x = core.x; x < core.x + core.w; x++) {
      mask[y * width + x] = map[(y - win.y) * win.w + (x - win.x)] > threshold ? 1 : 0;
    }
  }
}
