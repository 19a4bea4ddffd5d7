// What the text detector's budget options buy: `deno run -A bench/eval/budget_sweep.ts [--set tune,val] [--kind
// screenshot] [--shares 0.5,0.75] [--budget-halos 64,32,16,0] [--budget-window-pixels 65536,16384,4096] [--min-squeeze
// 0.6] [--squeeze-halos 32,0] [--aspect 0.6] [--page-halo 96] [--scout true] [--scout-halos 256,192,128,96,64]
// [--scout-focus-share 0.3]` runs the `adaptive` plan (lib/plan/focus.ts, the default options but those given; an
// empty list is `''`) on each image of those kinds (screenshot, photo) in the sets under `X-Budget-GFLOPs` at those
// shares of its full-resolution price (at 1: the plan without a budget), and prints per image and per share the IoU of
// the text class vs full resolution @ the cost as a share of full, then the mean and least IoU and the mean cost per
// share. For tuning the budget's options on the tuning and validation images; docs/EVAL.md (`deno task eval`) reports
// the test images.

import { registry, segmenter } from "./_common.ts";
import { renderMissing } from "./render_pages.ts";
import { iou } from "../_bench.ts";
import { DEFAULT_FOCUS_OPTIONS, focusPlanner } from "../../lib/plan/focus.ts";

const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
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
  aspect: Number(arg("--aspect", String(DEFAULT_FOCUS_OPTIONS.aspect))),
  pageHalo: Number(arg("--page-halo", String(DEFAULT_FOCUS_OPTIONS.pageHalo))),
  scout: arg("--scout", String(DEFAULT_FOCUS_OPTIONS.scout)) === "true",
  scoutHalos: numbers("--scout-halos", DEFAULT_FOCUS_OPTIONS.scoutHalos),
  scoutFocusShare: Number(arg("--scout-focus-share", String(DEFAULT_FOCUS_OPTIONS.scoutFocusShare))),
});

const ious = shares.map(() => [] as number[]), costs = shares.map(() => [] as number[]);
for (const im of (await renderMissing()).filter((i) => sets.includes(i.set) && kinds.includes(i.kind))) {
  const bytes = await Deno.readFile(im.path);
  const full = await segmenter.segment({ task: "text", mode: "fixed", bytes });
  const row = [im.name.padEnd(44)];
  for (const [k, share] of shares.entries()) {
    const budgetFlops = Math.floor(full.cost.flops * share);
    const cut = await segmenter.segment({ task: "text", mode: "adaptive", bytes, budgetFlops }, planner);
    ious[k].push(iou(full.mask, cut.mask));
    costs[k].push(cut.cost.flops / full.cost.flops);
    row.push(`${share}: ${ious[k].at(-1)!.toFixed(3)} @ ${(100 * costs[k].at(-1)!).toFixed(1)}%`);
  }
  console.log(row.join("  "));
}
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
for (const [k, share] of shares.entries()) {
  const cost = `mean cost ${(100 * mean(costs[k])).toFixed(1)}% of full`;
  console.log(`${share}: mean IoU ${mean(ious[k]).toFixed(4)}, least ${Math.min(...ious[k]).toFixed(3)}, ${cost}`);
}
Deno.exit(0);
