// The text detector's wall-clock under `X-Budget-GFLOPs`, as a server answers it: `deno run -A
// bench/eval/budget_clock.ts [--set test] [--kind screenshot|photo] [--backend native|wasm] [--shares
// 1,0.75,0.5,0.25] [--runs 3]` sends each image of that kind in the sets, in turn, at full resolution (`fixed`) and
// with budgets at those shares of its price (at 1: the default, no budget) to a Segmenter in the server's layout
// (`serverSegmenter`), `--runs` times after a first round, and prints per image and share the median wall-clock of
// `segment()` (decode, plan, inference, stitch; no HTTP), the first round's (each plan's first run in this process: the
// workers make and load the page graph its windows need, lib/onnx/page.ts), the planner's time and how many windows
// ran at full resolution; then the means, and the process's RSS. docs/EVAL.md's wall-clock lines time the default
// only; this shows what a budget's plan costs in time, and what the default's planning costs on photos.
import { servedByOption } from "./_common.ts";
import { evalImages } from "./render_pages.ts";
import { median, option } from "../_bench.ts";

const sets = option("--set", "test").split(",");
const kind = option("--kind", "screenshot");
const shares = option("--shares", "1,0.75,0.5,0.25").split(",").map(Number);
const runs = Number(option("--runs", "3"));
const served = await servedByOption();
const { segmenter } = served;
const images = evalImages().filter((i) => sets.includes(i.set) && i.kind === kind);
// Per share (0: fixed): per image, the first round's ms and the later rounds' medians.
const columns = [0, ...shares];
const first = columns.map(() => [] as number[]), warm = columns.map(() => [] as number[]);
const plans = columns.map(() => [] as number[]);
for (const img of images) {
  const bytes = await Deno.readFile(img.path);
  const times = columns.map(() => [] as number[]), plan = columns.map(() => [] as number[]);
  const windows = columns.map(() => 0);
  let price = 0;
  for (let r = 0; r <= runs; r++) {
    for (const [k, share] of columns.entries()) {
      const t = performance.now();
      const res = await segmenter.segment(
        k === 0 ? { task: "text", mode: "fixed", bytes } : {
          task: "text",
          mode: "adaptive",
          bytes,
          ...(share < 1 ? { budgetFlops: Math.floor(price * share) } : {}),
        },
      );
      const ms = performance.now() - t;
      if (k === 0) price = res.cost.flops;
      if (r === 0) first[k].push(ms);
      else times[k].push(ms);
      plan[k].push(res.timings.plan);
      windows[k] = res.plan.tiles.filter((t) => t.model && t.scale === 1).length;
    }
  }
  const row = columns.map((share, k) => {
    warm[k].push(median(times[k]));
    plans[k].push(median(plan[k]));
    const name = k === 0 ? "fixed" : share === 1 ? "default" : `${share}`;
    return `${name} ${median(times[k]).toFixed(0)} (first ${first[k].at(-1)!.toFixed(0)}, plan ${
      median(plan[k]).toFixed(1)
    }, ${windows[k]} w)`;
  });
  console.log(`${img.name.padEnd(38)} ${row.join("  ")}`);
}
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
console.log(`${sets.join(",")} on ${served.label}: ${images.length} images, medians of ${runs} runs after a first`);
for (const [k, share] of columns.entries()) {
  const name = k === 0 ? "fixed" : share === 1 ? "default" : `budget ${share}`;
  console.log(
    `  ${name.padEnd(12)} mean ${mean(warm[k]).toFixed(1)} ms (÷ fixed ${
      (mean(warm[k]) / mean(warm[0])).toFixed(2)
    }), ` +
      `first ${mean(first[k]).toFixed(1)} ms, plan ${mean(plans[k]).toFixed(1)} ms, above 1 s ${
        warm[k].filter((t) => t > 1000).length
      }`,
  );
}
console.log(`  process RSS ${(Deno.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
await served.close();
Deno.exit(0);
