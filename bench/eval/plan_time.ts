// The text default's planning time on images the server has not seen: `deno run -A bench/eval/plan_time.ts [--set
// val4] [--backend native|wasm]` sends each screenshot of the sets once to a Segmenter in the server's layout
// (`serverSegmenter`) and prints the mean and median `timings.plan` (the planner's own time on the main thread: the ink
// cover, its pricing, the writes after; docs/EVAL.md's wall-clock lines time images again after a warm-up, with their
// prices already counted). Before lib/onnx/page_cost.ts counted a window's tail slots by their price per pixel, the
// fourth validation set's 66 screenshots read a mean of 19.7 and 23.7 ms natively (medians 15.3, 20.3) in two runs,
// after it 11.6 and 11.5 ms (9.3, 10.1).

import { servedByOption } from "./_common.ts";
import { evalImages } from "./render_pages.ts";
import { median, option } from "../_bench.ts";

const sets = option("--set", "val4").split(",");
const served = await servedByOption();
const plan: number[] = [];
for (const img of evalImages().filter((i) => sets.includes(i.set) && i.kind === "screenshot")) {
  const bytes = await Deno.readFile(img.path);
  plan.push((await served.segmenter.segment({ task: "text", mode: "adaptive", bytes })).timings.plan);
}
const mean = plan.reduce((a, b) => a + b, 0) / plan.length;
console.log(
  `${sets.join(",")} on ${served.label}: ${plan.length} images, each once; plan ms mean ${mean.toFixed(1)}, ` +
    `median ${median(plan).toFixed(1)}`,
);
await served.close();
Deno.exit(0);
