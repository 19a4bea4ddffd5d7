// `deno task eval`: accuracy against cost of every execution mode, through the Segmenter the server uses, on the
// held-out test splits of `digits` and `micrograph` (scenes written by `python3 training/scenes.py`; bench/eval/zoo.ts),
// and adaptive vs full resolution on the `text` task (bench/eval/text.ts). Writes docs/EVAL.md and docs/eval.svg
// (generated; do not edit by hand).
//
//   deno task eval [--scenes 300] [--task digits --task micrograph] [--no-text] [--text-set test|tune|val|val2|val3|val4]
//   deno task eval --text-only     (reruns only the `text` section of docs/EVAL.md, keeping the rest)

import { DEFAULT_PLANNER_OPTIONS } from "../lib/plan/mod.ts";
import { type ClockBackend, pool, registry, ROOT, type Row, wasmLabel } from "./eval/_common.ts";
import { evalTask, type ZooResult } from "./eval/zoo.ts";
import { inChild, type TextClock, textInChildren } from "./eval/clock.ts";
import { zooSection } from "./eval/zoo_report.ts";
import { evalText, textSection } from "./eval/text.ts";
import { layerTime } from "./eval/layer_time.ts";

const args = Deno.args;
const flag = (name: string) => args.flatMap((a, i) => (a === `--${name}` ? [args[i + 1]] : []));
const SCENES = Number(flag("scenes")[0] ?? 300);
const TEXT_ONLY = args.includes("--text-only");
const TASKS = TEXT_ONLY ? [] : flag("task").length ? flag("task") : ["digits", "micrograph"];
const WITH_TEXT = !args.includes("--no-text");
const TEXT_SET = (["tune", "val", "val2", "val3", "val4", "val5"] as const).find((s) => s === flag("text-set")[0]) ??
  "test";

const f = (v: number, d = 4) => v.toFixed(d);
const xml = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** mIoU against GFLOPs, one panel per task. */
function svg(results: Map<string, { rows: Row[] }>): string {
  const W = 460, H = 320, m = { l: 56, r: 16, t: 28, b: 44 };
  const colours: Record<string, string> = {
    static: "#444444",
    cascade: "#8c6d31",
    complexity: "#1f77b4",
    paser: "#d62728",
    glimpse: "#2ca02c",
    oracle: "#9467bd",
  };
  const panels: string[] = [];
  let ox = 0;
  for (const [task, { rows }] of results) {
    const xs = rows.map((r) => r.gflops), ys = rows.map((r) => r.miou);
    const x0 = Math.log10(Math.min(...xs) * 0.8), x1 = Math.log10(Math.max(...xs) * 1.25);
    const y0 = Math.min(...ys) - 0.01, y1 = Math.max(...ys) + 0.01;
    const px = (v: number) => ox + m.l + ((Math.log10(v) - x0) / (x1 - x0)) * (W - m.l - m.r);
    const py = (v: number) => m.t + (1 - (v - y0) / (y1 - y0)) * (H - m.t - m.b);
    const parts = [
      `<text x="${ox + W / 2}" y="18" text-anchor="middle" font-weight="bold">${task}</text>`,
      `<line x1="${ox + m.l}" y1="${H - m.b}" x2="${ox + W - m.r}" y2="${H - m.b}" stroke="#000"/>`,
      `<line x1="${ox + m.l}" y1="${m.t}" x2="${ox + m.l}" y2="${H - m.b}" stroke="#000"/>`,
      `<text x="${ox + W / 2}" y="${H - 8}" text-anchor="middle">mean GFLOPs per image (log)</text>`,
      `<text x="${ox + 14}" y="${H / 2}" text-anchor="middle" transform="rotate(-90 ${ox + 14} ${H / 2})">mIoU</text>`,
    ];
    for (let e = Math.ceil(x0 * 2) / 2; e <= x1; e += 0.5) {
      const v = 10 ** e;
      parts.push(`<line x1="${px(v)}" y1="${H - m.b}" x2="${px(v)}" y2="${H - m.b + 4}" stroke="#000"/>`);
      parts.push(
        `<text x="${px(v)}" y="${H - m.b + 16}" text-anchor="middle" font-size="10">${+v.toPrecision(2)}</text>`,
      );
    }
    for (let i = 0; i <= 4; i++) {
      const v = y0 + ((y1 - y0) * i) / 4;
      parts.push(`<text x="${ox + m.l - 4}" y="${py(v) + 3}" text-anchor="end" font-size="10">${v.toFixed(3)}</text>`);
    }
    for (const fam of Object.keys(colours)) {
      const pts = rows.filter((r) => r.family === fam).sort((a, b) => a.gflops - b.gflops);
      if (pts.length > 1 && fam !== "static") {
        parts.push(
          `<polyline fill="none" stroke="${colours[fam]}" points="${
            pts.map((r) => `${px(r.gflops).toFixed(1)},${py(r.miou).toFixed(1)}`).join(" ")
          }"/>`,
        );
      }
      for (const r of pts) {
        parts.push(
          `<circle cx="${px(r.gflops).toFixed(1)}" cy="${py(r.miou).toFixed(1)}" r="3.5" fill="${colours[fam]}">` +
            `<title>${xml(r.name)}: ${f(r.miou)} mIoU, ${f(r.gflops, 3)} GFLOPs</title></circle>`,
        );
        if (fam === "static") {
          parts.push(
            `<text x="${px(r.gflops) + 5}" y="${py(r.miou) - 5}" font-size="10">${xml(r.name.split(" ")[1])}</text>`,
          );
        }
      }
    }
    panels.push(...parts);
    ox += W;
  }
  const legend = Object.entries(colours).map(([k, c], i) =>
    `<circle cx="${16 + i * 110}" cy="${H + 12}" r="4" fill="${c}"/><text x="${24 + i * 110}" y="${H + 16}">${k}</text>`
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${ox}" height="${H + 28}" font-family="sans-serif" ` +
    `font-size="12">\n<rect width="100%" height="100%" fill="#fff"/>\n${[...panels, ...legend].join("\n")}\n</svg>\n`;
}

const results = new Map<string, ZooResult>();
const started = performance.now();
for (const task of TASKS) results.set(task, await evalTask(task, SCENES));
const textRows = WITH_TEXT ? await evalText(TEXT_SET) : [];
pool.close();
// Last, once the WASM pool is closed, each in a process of its own in the server's default layout, as a server runs
// (./eval/clock.ts: the native workers' arena limit reads the process's memory).
for (const [task, result] of results) {
  for (const backend of ["wasm", "native"] as const) {
    const clock = await inChild({ task, scenes: SCENES, backend });
    if (clock) result.clocks[backend] = clock;
  }
}
if (textRows.length) {
  const clocks = await textInChildren(textRows.map((r) => r.image.path));
  for (const [backend, times] of Object.entries(clocks) as [ClockBackend, TextClock[]][]) {
    times.forEach((c, i) => textRows[i].clocks[backend] = c);
  }
}
// What bounds the text wall-clock lines: the detector's time per FLOP in its tail and its front (./eval/layer_time.ts).
const layers = textRows.length
  ? [await layerTime(1920, 1088, 1), await layerTime(1920, 1088, 2), await layerTime(1920, 1088, 2, 7, "web")]
  : [];

const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.+)/)?.[1] ?? "unknown";
const md: string[] = [
  "# Evaluation",
  "",
  `Generated by \`deno task eval\` (bench/eval.ts) on ${new Date().toISOString().slice(0, 10)}; do not edit by hand.`,
  `Machine: ${cpu}, ${navigator.hardwareConcurrency} cores, onnxruntime-web WASM-SIMD in ${wasmLabel}, requests ` +
  "one at a time; the wall-clock lines in processes of their own, on WASM-SIMD and on onnxruntime-node, each in " +
  `the server's default layout there. Run time ${((performance.now() - started) / 60000).toFixed(1)} min.`,
  "",
  `Every row runs the Segmenter the server uses (\`lib/segment.ts\` → \`lib/zoo.ts\`) on the first ${SCENES} scenes of ` +
  "the held-out test split (`python3 training/scenes.py --split test`, 8-bit PNGs as a client would send them). " +
  "mIoU is dataset-level (intersections and unions summed over all scenes, then averaged over classes); GFLOPs are " +
  "the exact cost each response reported (`cost.gflops`), averaged per image; latency is the mean wall-clock of " +
  "`segment()` (decode, plan, inference, stitch; no HTTP). IoU/GFLOP is mIoU divided by mean GFLOPs. Local models " +
  "run on tiles cut with the halo chosen per model on the validation split (`models/serving.json`, written by " +
  `\`bench/tune_zoo.ts\`; at most \`ZOO_HALO\` = ${DEFAULT_PLANNER_OPTIONS.zooHalo} px). With \`X-Budget-GFLOPs\`, ` +
  "the adaptive mode spends up to the budget on the upgrades with the highest predicted gain per FLOP (PaSeR's " +
  "budget mode); without, the same ranking at the default fraction of f2's whole-image FLOPs chosen on validation. " +
  '"vs best static that fits" compares a row with the most accurate static model whose cost is at most the row\'s. ' +
  "Oracle rows are replayed from per-tile outcomes (see each task's diagnosis), not served.",
  "",
  "Models (sha256 prefix, from models/manifest.json): " +
  [...registry.models.values()].filter((m) => m.spec.task !== "text").map((m) =>
    `\`${m.spec.id}\` ${m.spec.sha256.slice(0, 12)}`
  ).join(", ") + ". A row is only valid for these files; rerun after retraining.",
  "",
  "![mIoU vs GFLOPs](eval.svg)",
  "",
];
for (const [task, result] of results) md.push(...zooSection(task, result));
if (textRows.length) md.push(...textSection(textRows, layers));
if (TEXT_ONLY) {
  const old = await Deno.readTextFile(new URL("docs/EVAL.md", ROOT));
  const at = old.indexOf("## `text`");
  await Deno.writeTextFile(
    new URL("docs/EVAL.md", ROOT),
    (at < 0 ? old + "\n" : old.slice(0, at)) + textSection(textRows, layers).join("\n"),
  );
} else {
  await Deno.writeTextFile(new URL("docs/EVAL.md", ROOT), md.join("\n"));
  await Deno.writeTextFile(new URL("docs/eval.svg", ROOT), svg(results));
}
// Written as `deno fmt` would (aligned tables), so the generated file passes `deno fmt --check`.
await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", "docs/EVAL.md"], cwd: ROOT }).output();
console.log(TEXT_ONLY ? "wrote the text section of docs/EVAL.md" : "wrote docs/EVAL.md and docs/eval.svg");
