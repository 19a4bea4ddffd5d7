// The evaluation of the zoo tasks (`digits`, `micrograph`): every execution mode and baseline on the held-out test
// split, through the Segmenter the server uses.

import { decodeImage } from "../../lib/image/mod.ts";
import type { SegmentRequest } from "../../lib/segment.ts";
import { cascadePlanner, paserPlanner, type Planner, zooOf } from "../../lib/plan/mod.ts";
import { fromGflops, toGflops } from "../../lib/units.ts";
import { IoU, registry, ROOT, type Row, segmenter } from "./_common.ts";

/** One zoo task's rows, its f2 row, the adaptive rows the targets are checked on, and a note. */
export interface ZooResult {
  rows: Row[];
  f2: Row;
  adaptive: Row[];
  note: string;
}

const f = (v: number, d = 4) => v.toFixed(d);

export interface Scene {
  bytes: Uint8Array;
  label: Uint8Array;
}

export async function scenes(task: string, n: number): Promise<Scene[]> {
  const dir = new URL(`data/eval/${task}-test-${n}/`, ROOT);
  const last = new URL(`${String(n - 1).padStart(4, "0")}-label.png`, dir);
  if (!(await Deno.stat(last).then(() => true, () => false))) {
    console.log(`writing ${n} ${task} test scenes with training/scenes.py …`);
    const out = await new Deno.Command("python3", {
      args: ["training/scenes.py", "--task", task, "--split", "test", "--count", String(n), "--out", dir.pathname],
      cwd: ROOT,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error("training/scenes.py failed (needs python3 with numpy, see training/README.md)");
  }
  const list: Scene[] = [];
  for (let i = 0; i < n; i++) {
    const name = String(i).padStart(4, "0");
    const bytes = await Deno.readFile(new URL(`${name}.png`, dir));
    const label = (await decodeImage(await Deno.readFile(new URL(`${name}-label.png`, dir)))).data;
    const classes = new Uint8Array(label.length / 4);
    for (let p = 0; p < classes.length; p++) classes[p] = label[4 * p];
    list.push({ bytes, label: classes });
  }
  return list;
}

export async function evaluate(
  task: string,
  list: Scene[],
  family: string,
  name: string,
  req: Omit<SegmentRequest, "task" | "bytes">,
  planner?: (task: string) => Planner,
): Promise<Row> {
  const iou = new IoU(registry.task(task).classes.length);
  let flops = 0, ms = 0, steps = 0;
  const stops = new Map<string, number>();
  for (const s of list) {
    const t = performance.now();
    const r = await segmenter.segment({ task, bytes: s.bytes, ...req }, planner?.(task));
    ms += performance.now() - t;
    flops += r.cost.flops;
    iou.add(r.mask, s.label);
    if (r.plan.glimpses?.length) steps += r.plan.glimpses.length - 1;
    if (r.plan.stop) stops.set(r.plan.stop, (stops.get(r.plan.stop) ?? 0) + 1);
  }
  const row: Row = { family, name, miou: iou.miou, gflops: toGflops(flops / list.length), ms: ms / list.length };
  if (req.mode === "glimpse") {
    row.note = `${(steps / list.length).toFixed(1)} focus steps/image; stops: ` +
      [...stops].map(([k, v]) => `${k} ${v}`).join(", ");
  }
  console.log(
    `[${task}] ${name}: mIoU ${row.miou.toFixed(4)}  ${row.gflops.toFixed(3)} GFLOPs  ${row.ms.toFixed(1)} ms`,
  );
  return row;
}

/** Every mode and baseline on one zoo task's held-out scenes. */
export async function evalTask(task: string, count: number): Promise<ZooResult> {
  const zoo = segmenter.zoo(registry.task(task));
  if (!zoo) throw new Error(`task ${task} has no zoo`);
  const list = await scenes(task, count);
  // Warm every model once (first runs compile kernels).
  for (const s of list.slice(0, 2)) {
    await segmenter.segment({ task, bytes: s.bytes, mode: "glimpse", confidence: 1 });
    await segmenter.segment({ task, bytes: s.bytes, mode: "adaptive" });
  }
  // Tiles cut with the halo the local models were trained with, to show what the served (smaller) halo changes.
  const trained = zooOf(registry, registry.task(task))!;
  const rows: Row[] = [];
  for (const m of [zoo.global, ...zoo.locals]) {
    rows.push(
      await evaluate(task, list, "static", `fixed ${m.spec.id} (whole image)`, { mode: "fixed", model: m.spec.id }),
    );
  }
  const f2 = rows[rows.length - 1];
  // Thresholds for cascade and glimpse: quantiles of the glance's (f0's) mean confidence on these scenes, so each
  // threshold sends a known share of images (or tiles) on to the stronger models.
  const glance: number[] = [];
  for (const s of list) {
    const r = await segmenter.segment({ task, bytes: s.bytes, mode: "glimpse", confidence: 1e-9 });
    glance.push(r.plan.glimpses![0].confidence);
  }
  glance.sort((a, b) => a - b);
  const q = (p: number) => Math.round(glance[Math.min(glance.length - 1, Math.floor(p * glance.length))] * 1e4) / 1e4;
  const thresholds = [...new Set([q(0.25), q(0.5), q(0.75), q(0.95), Math.round(((1 + q(0.95)) / 2) * 1e4) / 1e4])];
  const note = `f0's mean confidence over these scenes: quartiles ${q(0.25)} / ${q(0.5)} / ${q(0.75)}, ` +
    `95th percentile ${q(0.95)}; the cascade and glimpse thresholds are taken from these.`;
  for (const tau of thresholds.slice(1, 4)) {
    rows.push(
      await evaluate(
        task,
        list,
        "cascade",
        `cascade: f0, then f2 on the image if f0's confidence < ${tau}`,
        { mode: "adaptive" },
        () => cascadePlanner(zoo, tau),
      ),
    );
  }
  for (const share of [0.25, 0.5]) {
    rows.push(
      await evaluate(
        task,
        list,
        "complexity",
        `complexity selector: f2 on the ${share * 100}% busiest tiles`,
        { mode: "adaptive" },
        () => paserPlanner(zoo, { selector: "complexity", complexityShare: share }),
      ),
    );
  }
  const adaptive: Row[] = [];
  if (zoo.policy) {
    adaptive.push(await evaluate(task, list, "paser", "PaSeR policy, no budget (its own route)", { mode: "adaptive" }));
    for (const frac of [0.1, 0.2, 0.3, 0.4, 0.45, 0.5]) {
      const budget = Math.round(f2.gflops * frac * 1e6) / 1e6;
      adaptive.push(
        await evaluate(task, list, "paser", `PaSeR policy, budget ${budget} GFLOPs (${frac * 100}% of f2)`, {
          mode: "adaptive",
          budgetFlops: fromGflops(budget),
        }),
      );
    }
    // The same policy with the halo the local models were trained with (the server cuts ZOO_HALO px, less).
    for (const budget of [undefined, Math.round(f2.gflops * 0.4 * 1e6) / 1e6]) {
      const what = budget === undefined ? "no budget" : `budget ${budget} GFLOPs (40% of f2)`;
      rows.push(
        await evaluate(task, list, "halo", `PaSeR policy, ${what}, ${trained.halo} px halo as trained`, {
          mode: "adaptive",
          budgetFlops: budget === undefined ? undefined : fromGflops(budget),
        }, () => paserPlanner(trained)),
      );
    }
    rows.push(...adaptive);
  }
  for (const conf of thresholds.length >= 3 ? thresholds : [0.99, 0.995, 0.999]) {
    rows.push(
      await evaluate(task, list, "glimpse", `glimpse, X-Confidence ${conf}`, { mode: "glimpse", confidence: conf }),
    );
  }
  return { rows, f2, adaptive, note };
}

/** The report's section of one zoo task: the table and the targets. */
export function zooSection(task: string, { rows, f2, adaptive, note }: ZooResult): string[] {
  const md: string[] = [];
  md.push(`## \`${task}\``, "", note, "");
  md.push("| mode | mIoU | mean GFLOPs | % of f2 GFLOPs | IoU/GFLOP | mean latency ms | notes |");
  md.push("|---|---:|---:|---:|---:|---:|---|");
  for (const r of rows) {
    md.push(
      `| ${r.name} | ${f(r.miou)} | ${f(r.gflops, 3)} | ${(100 * r.gflops / f2.gflops).toFixed(1)}% | ` +
        `${(r.miou / r.gflops).toFixed(2)} | ${r.ms.toFixed(1)} | ${r.note ?? ""} |`,
    );
  }
  md.push("");
  // Targets (issue 4), checked on the measured rows.
  const good = adaptive.filter((r) => r.miou >= f2.miou - 0.01 && r.gflops <= 0.4 * f2.gflops);
  const best = good.sort((a, b) => a.gflops - b.gflops)[0] ??
    [...adaptive].sort((a, b) => b.miou / b.gflops - a.miou / a.gflops)[0];
  md.push("Targets:", "", "| target | measured | met |", "|---|---|---|");
  if (best) {
    md.push(
      `| adaptive within 1 mIoU point of f2 at ≤ 40% of its GFLOPs | ${best.name}: ${f(best.miou)} vs ${f(f2.miou)} ` +
        `(${((best.miou - f2.miou) * 100).toFixed(2)} points) at ${(100 * best.gflops / f2.gflops).toFixed(1)}% | ` +
        `${good.length ? "yes" : "**no**"} |`,
    );
    const statics = rows.filter((r) => r.family === "static" && r.miou >= f2.miou - 0.03);
    const ratio = Math.min(...statics.map((s) => (best.miou / best.gflops) / (s.miou / s.gflops)));
    md.push(
      `| its IoU/GFLOP ≥ 2× every static model within 3 points of f2 (${
        statics.map((s) => s.name.split(" ")[1]).join(", ")
      }) | ` +
        `${ratio.toFixed(2)}× | ${ratio >= 2 ? "yes" : "**no**"} |`,
    );
    const flopSave = 1 - best.gflops / f2.gflops, timeSave = 1 - best.ms / f2.ms;
    md.push(
      `| wall-clock saving ≥ 70% of the FLOP saving | FLOPs −${(100 * flopSave).toFixed(1)}%, time ` +
        `−${(100 * timeSave).toFixed(1)}% (${(100 * timeSave / flopSave).toFixed(0)}%) | ` +
        `${timeSave >= 0.7 * flopSave ? "yes" : "**no**"} |`,
    );
  }
  md.push("");
  return md;
}
