// What the text detector's budget options buy: `deno run -A bench/eval/budget_sweep.ts [--set tune,val] [--kind
// screenshot] [--shares 0.5,0.75] [--budget-halos 64,32,16,0] [--budget-window-pixels 65536,16384,4096] [--min-squeeze
// 0.6] [--squeeze-halos 32,0] [--squeeze-gain 1.05] [--aspect 0.6] [--page-halo 96] [--tail-gap 48] [--scout true]
// [--scout-halos 256,192,128,96,64] [--scout-focus-share 0.3] [--scout-complete-share 0.6] [--tail-grow 4]
// [--whole-page true] [--window-pixels 196608] [--only name,…] [--noise 20] [--plans true]` runs the `adaptive` plan
// (lib/plan/focus.ts, the default options but those given; an empty list is `''`; `--whole-page`: lib/plan/ink_cover.ts
// `wholePage`) on each image of those kinds (screenshot, photo) in the sets (only those named, and with a texture of
// ±noise on every channel where given) under `X-Budget-GFLOPs` at those shares of its full-resolution price (at 1: the
// plan without a budget), and prints per image and per share the IoU of the text class vs full resolution @ the cost as
// a share of full (with `--plans true`, what the plan ran: "{2× 0.61/1.00 h96 [0.0/9.6]}" is two tiles at 0.61 across
// and 1 down with a 96 px halo, none of the image at full resolution, 9.6 % of it unresolved; EMPTY: no text where full
// resolution finds some), then the mean and least IoU, the mean cost and how many such empty masks per share. For
// tuning the budget's options on the tuning and validation images; docs/EVAL.md (`deno task eval`) reports the test
// images.

import { registry, segmenter } from "./_common.ts";
import { renderMissing } from "./render_pages.ts";
import sharp from "sharp";
import { iou, option as arg } from "../_bench.ts";
import { DEFAULT_FOCUS_OPTIONS, focusPlanner } from "../../lib/plan/focus.ts";
import type { SegmentResult } from "../../lib/segment.ts";

const numbers = (name: string, fallback: number[]) =>
  arg(name, fallback.join(",")).split(",").filter(Boolean).map(Number);
const sets = arg("--set", "tune,val").split(",");
const kinds = arg("--kind", "screenshot").split(",");
const shares = numbers("--shares", [0.5, 0.75]);
const planner = focusPlanner(registry.model("text-ppocrv4-det"), {
  budgetHalos: numbers("--budget-halos", DEFAULT_FOCUS_OPTIONS.budgetHalos),
  budgetWindowPixels: numbers("--budget-window-pixels", DEFAULT_FOCUS_OPTIONS.budgetWindowPixels),
  minSqueeze: Number(arg("--min-squeeze", String(DEFAULT_FOCUS_OPTIONS.minSqueeze))),
  squeezeHalos: numbers("--squeeze-halos", DEFAULT_FOCUS_OPTIONS.squeezeHalos),
  squeezeGain: Number(arg("--squeeze-gain", String(DEFAULT_FOCUS_OPTIONS.squeezeGain))),
  aspect: Number(arg("--aspect", String(DEFAULT_FOCUS_OPTIONS.aspect))),
  pageHalo: Number(arg("--page-halo", String(DEFAULT_FOCUS_OPTIONS.pageHalo))),
  tailGap: Number(arg("--tail-gap", String(DEFAULT_FOCUS_OPTIONS.tailGap))),
  tailGrow: Number(arg("--tail-grow", String(DEFAULT_FOCUS_OPTIONS.tailGrow))),
  scout: arg("--scout", String(DEFAULT_FOCUS_OPTIONS.scout)) === "true",
  scoutHalos: numbers("--scout-halos", DEFAULT_FOCUS_OPTIONS.scoutHalos),
  scoutFocusShare: Number(arg("--scout-focus-share", String(DEFAULT_FOCUS_OPTIONS.scoutFocusShare))),
  scoutCompleteShare: Number(arg("--scout-complete-share", String(DEFAULT_FOCUS_OPTIONS.scoutCompleteShare))),
  wholePage: arg("--whole-page", "false") === "true",
  windowPixels: Number(arg("--window-pixels", String(DEFAULT_FOCUS_OPTIONS.windowPixels))),
});

const only = arg("--only", "").split(",").filter(Boolean);
const noise = Number(arg("--noise", "0"));
const plans = arg("--plans", "false") === "true";

/**
 * What a plan ran, in short: each distinct scale (across/down where they differ) and halo of its tiles, how many tiles
 * ran so, and its `plan.coverage` (full-resolution share / unresolved share, %).
 */
function ran(plan: SegmentResult["plan"]): string {
  const kinds = new Map<string, number>();
  for (const t of plan.tiles) {
    if (!t.model) continue;
    const y = t.scaleY !== undefined && t.scaleY !== t.scale ? `/${t.scaleY.toFixed(2)}` : "";
    const key = `${t.scale.toFixed(2)}${y} h${t.halo}`;
    kinds.set(key, (kinds.get(key) ?? 0) + 1);
  }
  const c = plan.coverage, pct = (v: number) => (100 * v).toFixed(1);
  const coverage = c ? ` [${pct(c.full_res_share)}/${pct(c.unresolved_share)}]` : "";
  return `{${[...kinds].map(([k, n]) => `${n}× ${k}`).join(", ")}${coverage}}`;
}

/**
 * The image with a texture of up to ±`amount` on every channel of every pixel (the same pseudo-random one each run),
 * as PNG: a page on a textured background, every cell of it ink.
 */
async function textured(bytes: Uint8Array, amount: number): Promise<Uint8Array> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let seed = 1;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    data[i] = Math.max(0, Math.min(255, data[i] + (seed % (2 * amount + 1)) - amount));
  }
  const { width, height } = info;
  return new Uint8Array(await sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer());
}

const ious = shares.map(() => [] as number[]), costs = shares.map(() => [] as number[]), empties = shares.map(() => 0);
const images = (await renderMissing()).filter((i) =>
  sets.includes(i.set) && kinds.includes(i.kind) && (!only.length || only.includes(i.name))
);
for (const im of images) {
  const raw = await Deno.readFile(im.path), bytes = noise ? await textured(raw, noise) : raw;
  const full = await segmenter.segment({ task: "text", mode: "fixed", bytes });
  const row = [im.name.padEnd(44)];
  for (const [k, share] of shares.entries()) {
    const budgetFlops = Math.floor(full.cost.flops * share);
    const cut = await segmenter.segment({ task: "text", mode: "adaptive", bytes, budgetFlops }, planner);
    ious[k].push(iou(full.mask, cut.mask));
    costs[k].push(cut.cost.flops / full.cost.flops);
    // The issue's line: no empty mask where full resolution finds text.
    const empty = full.mask.includes(1) && !cut.mask.includes(1);
    if (empty) empties[k]++;
    row.push(
      `${share}: ${ious[k].at(-1)!.toFixed(3)} @ ${(100 * costs[k].at(-1)!).toFixed(1)}%${empty ? " EMPTY" : ""}${
        plans ? " " + ran(cut.plan) : ""
      }`,
    );
  }
  console.log(row.join("  "));
}
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
for (const [k, share] of shares.entries()) {
  const cost = `mean cost ${(100 * mean(costs[k])).toFixed(1)}% of full`,
    empty = `${empties[k]} empty where full finds text`;
  console.log(
    `${share}: mean IoU ${mean(ious[k]).toFixed(4)}, least ${Math.min(...ious[k]).toFixed(3)}, ${cost}, ${empty}`,
  );
}
Deno.exit(0);
