// The text default's planning time on images the server has not seen: `deno run -A bench/eval/plan_time.ts [--set
// val4] [--backend native|wasm] [--share 0.5] [--squeeze-gain 1.05]` sends each screenshot of the sets once to a
// Segmenter in the server's layout (`serverSegmenter`) and prints the mean, median and largest `timings.plan` (the
// planner's own time on the main thread: the ink cover, its pricing, the writes after; docs/EVAL.md's wall-clock lines
// time images again after a warm-up, with their prices already counted). With `--share`, under `X-Budget-GFLOPs` at
// that share of the image's full-resolution price (a `fixed` run first gives it); with `--squeeze-gain`, the budget's
// squeezed cover at that `FocusOptions.squeezeGain` (Infinity: as before it). Before lib/onnx/page_cost.ts counted a
// window's tail slots by their price per pixel, the fourth validation set's 66 screenshots read a mean of 19.7 and 23.7
// ms natively (medians 15.3, 20.3) in two runs, after it 11.6 and 11.5 ms (9.3, 10.1).

import { evalImages } from "./render_pages.ts";
import { median, option } from "../_bench.ts";
import { DEFAULT_FOCUS_OPTIONS, focusPlanner } from "../../lib/plan/focus.ts";
import { registry, servedByOption } from "./_common.ts";

const sets = option("--set", "val4").split(",");
const share = Number(option("--share", "1"));
const squeezeGain = Number(option("--squeeze-gain", String(DEFAULT_FOCUS_OPTIONS.squeezeGain)));
const planner = focusPlanner(registry.model("text-ppocrv4-det"), { squeezeGain });
const served = await servedByOption();
const plan: number[] = [];
for (const img of evalImages().filter((i) => sets.includes(i.set) && i.kind === "screenshot")) {
  const bytes = await Deno.readFile(img.path);
  const budgetFlops = share < 1
    ? Math.floor((await served.segmenter.segment({ task: "text", mode: "fixed", bytes })).cost.flops * share)
    : undefined;
  const res = await served.segmenter.segment({ task: "text", mode: "adaptive", bytes, budgetFlops }, planner);
  plan.push(res.timings.plan);
}
const mean = plan.reduce((a, b) => a + b, 0) / plan.length;
console.log(
  `${sets.join(",")}${share < 1 ? ` at ${share} of full` : ""} on ${served.label}: ${plan.length} images, each ` +
    `once; plan ms mean ${mean.toFixed(1)}, median ${median(plan).toFixed(1)}, largest ${Math.max(...plan).toFixed(1)}`,
);
await served.close();
Deno.exit(0);
