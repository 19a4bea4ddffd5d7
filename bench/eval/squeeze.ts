// Why windows of the text detector drift from its whole-image mask (the text eval's IoU ≥ 0.97 target):
// `deno run -A bench/eval/squeeze.ts [--halo 32,128] [--core 320] [--out docs/TEXT_DRIFT.md] [images…]` (default: the
// text test images; writes docs/TEXT_DRIFT.md). Each
// image is cut into core×core windows with a halo, run one by one, and the stitched mask compared (IoU of the text
// class) with the whole-image run, four ways: every squeeze-excitation block pooling over its own window (what
// thriftseg serves), or fed the pooled vectors of the whole-image run (exact: an upper bound no windowed plan can
// reach without running the whole image), of the ½ glance, or of the ¼ glance. Three more columns run the windows
// the served default plan runs (lib/plan/focus.ts: the ink cover's few large windows) with their own pooled vectors,
// with the whole image's, and with vectors the windows compute themselves level by level (./_pool_levels.ts). The
// graph edits are made by bench/eval/squeeze_graphs.py with Debian's python3-onnx.

import * as ort from "onnxruntime-node";
import { decodeImage, type RgbaImage, windowsTensor } from "../../lib/image/mod.ts";
import { ModelRegistry } from "../../lib/models.ts";
import { renderMissing } from "./render_pages.ts";
import { iou } from "../_bench.ts";
import { priceCalls } from "../../lib/exec/executor.ts";
import { coverInk } from "../../lib/plan/focus.ts";
import type { Box } from "../../lib/plan/geometry.ts";
import type { CellGrid } from "../../lib/plan/cover.ts";
import { paddedWholeCall } from "../../lib/plan/fixed.ts";
import { levelPooledMask, loadLevelGraph, writeCore } from "./_pool_levels.ts";

const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const halos = arg("--halo", "32,128").split(",").map(Number);
const CORE = Number(arg("--core", "320"));
const OUT = arg("--out", "docs/TEXT_DRIFT.md");
const files = Deno.args.filter((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--"));
const images = files.length ? files : (await renderMissing()).filter((i) => i.set === "test").map((i) => i.path);

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
const levelGraph = await loadLevelGraph(dir, opts);
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
  const { geo, ink, windows: wins } = coverInk(model, img, maxExec);
  defaultHalo = geo.halo;
  const windowed = priceCalls([{ model, windows: wins.map((f) => f.window) }], maxExec).flops <
    priceCalls([paddedWholeCall(model, W, H)], maxExec).flops;
  const defaults = [
    async (mask: Uint8Array) => {
      for (const f of wins) writeCore(mask, W, await windowMap(img, f.window, null), f, threshold);
    },
    async (mask: Uint8Array) => {
      for (const f of wins) writeCore(mask, W, await windowMap(img, f.window, full.pools), f, threshold);
    },
    async (mask: Uint8Array) => {
      const colour = blankColour(img, ink);
      mask.set(await levelPooledMask(levelGraph, img, fmt, wins, { w: PW, h: PH }, m, colour, threshold));
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
  rows.push(`| ${file.split("/").pop()} | ${W}×${H} | ${cells.join(" | ")} |`);
  console.error(rows.at(-1));
}
const heads = [
  ...halos.flatMap((h) => ["own", "whole image", "½ glance", "¼ glance"].map((p) => `${p}, halo ${h}`)),
  "default's windows, own",
  "default's windows, whole image",
  "default's windows, level by level",
];
const cols = heads.length;
// "whole image" (the default plan runs no windows there) counts as 1.000.
const values = rows.map((r) =>
  r.split("|").slice(3, 3 + cols).map((v) => (v.trim() === "whole image" ? 1 : Number(v)))
);
const stat = (f: (xs: number[]) => number) =>
  Array.from({ length: cols }, (_, c) => f(values.map((v) => v[c])).toFixed(3)).join(" | ");
const md = [
  "# Text detector: why windows drift from the whole-image mask",
  "",
  `Written by \`deno run -A bench/eval/squeeze.ts\` (${
    new Date().toISOString().slice(0, 10)
  }, ${navigator.hardwareConcurrency} cores); do not edit by hand. The PP-OCRv4 detector's squeeze-excitation blocks pool every feature map over the`,
  "whole input, and its receptive field is wide: a window sees neither. Each image (the text eval's test images,",
  `docs/EVAL.md) is cut into ${CORE}² px windows with a halo of real neighbour pixels, each window is run alone, and the`,
  "stitched mask is compared with the whole-image run (IoU of the text class). The pooled vectors come from the window",
  "itself (what thriftseg serves), from the whole-image run (exact: no windowed plan can have them without paying for",
  "the whole image, so this is an upper bound), or from the ½ or ¼ glance (what a glance could supply).",
  "",
  "The last three columns run the windows the served default plan runs (`lib/plan/focus.ts`: the ink cover's few large",
  `windows, halo ${defaultHalo} px) with their own pooled vectors (what docs/EVAL.md's default column measures) and`,
  "with the whole image's: the gap between the first two is what the squeeze-excitation pooling alone costs the default.",
  '"whole image": the default plan runs the whole image there (its windows would not be cheaper), counted as 1.000.',
  "The very last column computes the whole image's pooled vectors from the windows alone, level by level",
  "(`bench/eval/_pool_levels.ts`): the windows' own feature maps where they cover the page, and for the area they do",
  "not, the value the maps take far inside a page of its background colour under the same vectors (exact, from a 1×1",
  "input through the graph with its kernels summed over space). That is what the default plan could serve at its own",
  "price if it ran its windows in step, one squeeze-excitation level at a time.",
  "",
  `| image | size | ${heads.join(" | ")} |`,
  `|---|---|${heads.map(() => "---:|").join("")}`,
  ...rows,
  `| **mean** | | ${stat((xs) => xs.reduce((a, b) => a + b, 0) / xs.length)} |`,
  `| **min** | | ${stat((xs) => Math.min(...xs))} |`,
  "",
];
await Deno.writeTextFile(OUT, md.join("\n"));
await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", OUT] }).output();
console.log(`wrote ${OUT}`);
await Deno.remove(dir, { recursive: true });

/** The most common colour among the blank cells' centre pixels (white when no cell is blank). */
function blankColour(img: RgbaImage, ink: CellGrid): number[] {
  const counts = new Map<number, number>();
  let best = 0xffffff, most = 0;
  for (let r = 0; r < ink.rows; r++) {
    for (let c = 0; c < ink.cols; c++) {
      if (ink.on[r * ink.cols + c]) continue;
      const y = Math.min(img.height - 1, r * ink.cell + (ink.cell >> 1));
      const x = Math.min(img.width - 1, c * ink.cell + (ink.cell >> 1)), o = 4 * (y * img.width + x);
      const key = (img.data[o] << 16) | (img.data[o + 1] << 8) | img.data[o + 2], n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      if (n > most) [best, most] = [key, n];
    }
  }
  return [best >> 16, (best >> 8) & 255, best & 255];
}
