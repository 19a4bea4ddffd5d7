// Memory and latency of mixed text traffic, as a server sees it: `deno run -A bench/eval/mixed_rss.ts [--set test]
// [--backend native|wasm] [--passes 3]` sends each screenshot of the sets, one request at a time, at full resolution
// (`fixed`), with the default, and with budgets of 75, 50 and 25 % of full resolution's price, to a Segmenter in the
// server's layout (`serverSegmenter`), `--passes` times over, and prints the process's RSS after start and after each
// pass (and its peak, sampled after each request), then per mode the mean and largest wall-clock of the passes after
// the first, their median and 95th percentile, and how many took over a second. On the native backend every page
// size and plan grows onnxruntime's arenas (workers/ort_arena.ts): this is the mix the arena limit
// (workers/protocol.ts `ARENA_LIMITS`) must hold without recreating sessions over and over.
import { servedByOption } from "./_common.ts";
import { evalImages } from "./render_pages.ts";
import { median, option } from "../_bench.ts";

const sets = option("--set", "test").split(",");
const passes = Number(option("--passes", "3"));
const served = await servedByOption();
const { segmenter } = served;
const rssMb = () => Deno.memoryUsage().rss / 2 ** 20;
console.log(`${served.label}: RSS after start ${rssMb().toFixed(0)} MB`);
// 1: the default; below 1, a budget at that share of full resolution's price.
const modes = ["fixed", 1, 0.75, 0.5, 0.25] as const;
const times = new Map<string, number[]>(modes.map((m) => [String(m), []]));
let peak = 0;
for (let pass = 0; pass < passes; pass++) {
  for (const img of evalImages().filter((i) => sets.includes(i.set) && i.kind === "screenshot")) {
    const bytes = await Deno.readFile(img.path);
    let full = 0;
    for (const mode of modes) {
      const t = performance.now();
      const res = await segmenter.segment(
        mode === "fixed" ? { task: "text", mode, bytes } : {
          task: "text",
          mode: "adaptive",
          bytes,
          ...(mode < 1 ? { budgetFlops: Math.floor(full * mode) } : {}),
        },
      );
      if (mode === "fixed") full = res.cost.flops;
      if (pass > 0) times.get(String(mode))!.push(performance.now() - t);
      peak = Math.max(peak, rssMb());
    }
  }
  console.log(`pass ${pass + 1}: RSS ${rssMb().toFixed(0)} MB (peak so far ${peak.toFixed(0)})`);
}
const all = [...times.values()].flat().sort((a, b) => a - b);
for (const [mode, t] of times) {
  if (!t.length) continue;
  const label = mode === "fixed" ? "fixed" : mode === "1" ? "default" : `budget ${Number(mode) * 100}%`;
  console.log(
    `${label.padEnd(11)} mean ${(t.reduce((a, b) => a + b, 0) / t.length).toFixed(0)} ms, ` +
      `largest ${Math.max(...t).toFixed(0)} ms`,
  );
}
if (all.length) {
  console.log(
    `all ${all.length} requests after the first pass: median ${median(all).toFixed(0)} ms, p95 ` +
      `${all[Math.floor(0.95 * (all.length - 1))].toFixed(0)} ms, over 1 s: ${all.filter((t) => t > 1000).length}`,
  );
}
await served.close();
Deno.exit(0);
