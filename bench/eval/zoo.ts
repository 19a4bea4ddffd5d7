// The evaluation of the zoo tasks (`digits`, `micrograph`): every execution mode and baseline on the held-out test
// split, through the Segmenter the server uses.

import { decodeImage } from "../../lib/image/mod.ts";
import type { SegmentRequest } from "../../lib/segment.ts";
import { cascadePlanner, haloOf, paserPlanner, type Planner, type Zoo, ZooRun } from "../../lib/plan/mod.ts";
import {
  collect,
  gainCorrelation,
  keepTotals,
  miouOf,
  planPrice,
  rankedRoute,
  realGains,
  replay,
  type SceneOutcome,
  servedGains,
  variant,
} from "./oracle.ts";
import { fromGflops, toGflops } from "../../lib/units.ts";
import { type ClockBackend, IoU, pool, registry, ROOT, type Row, segmenter, serverSegmenter } from "./_common.ts";

/** One zoo task's rows, its f2 row, the adaptive rows the targets are checked on, and a note. */
export interface ZooResult {
  rows: Row[];
  f2: Row;
  adaptive: ZooRow[];
  note: string;
  diagnosis?: Diagnosis;
  /** Mean wall-clock ms of f2 (whole image), the default route and f0 per backend (native: where it loads). */
  clocks: Partial<Record<ClockBackend, ZooClock>>;
}

/** Wall-clock on one backend, in the server's default layout there. */
export interface ZooClock {
  f2Ms: number;
  defaultMs: number;
  /** f0 alone on the whole image (`fixed`): the route's first step, which every route pays. */
  f0Ms: number;
  layout: string;
}

/**
 * f2 on the whole image, the default adaptive route and f0, scene by scene in turn, on `backend` in the pool layout
 * the server starts with there (one warm-up pass first); undefined where onnxruntime-node does not load.
 */
export async function zooClock(task: string, count: number, backend: ClockBackend): Promise<ZooClock | undefined> {
  const served = await serverSegmenter(backend);
  if (!served) return undefined;
  const list = await scenes(task, count);
  const zoo = served.segmenter.zoo(registry.task(task))!;
  const fixed = { f2: zoo.locals[zoo.locals.length - 1].spec.id, f0: zoo.global.spec.id };
  const ms = { f2: 0, default: 0, f0: 0 };
  for (let pass = 0; pass < 2; pass++) {
    for (const s of list) {
      for (const which of ["f2", "default", "f0"] as const) {
        const t = performance.now();
        await served.segmenter.segment({
          task,
          bytes: s.bytes,
          ...(which === "default" ? { mode: "adaptive" } : { mode: "fixed", model: fixed[which] }),
        });
        if (pass === 1) ms[which] += performance.now() - t;
      }
    }
  }
  await served.close();
  return {
    f2Ms: ms.f2 / list.length,
    defaultMs: ms.default / list.length,
    f0Ms: ms.f0 / list.length,
    layout: served.label,
  };
}

/** A row of a zoo task: adaptive and oracle rows know their budget (fraction of f2's whole-image GFLOPs). */
export interface ZooRow extends Row {
  budget?: number;
  isDefault?: boolean;
}

export interface Scene {
  bytes: Uint8Array;
  label: Uint8Array;
}

/** The first `n` scenes of a split (`test`, or `val` for tuning), written once by training/scenes.py. */
export async function scenes(task: string, n: number, split: "test" | "val" = "test"): Promise<Scene[]> {
  const dir = new URL(`data/eval/${task}-${split}-${n}/`, ROOT);
  const last = new URL(`${String(n - 1).padStart(4, "0")}-label.png`, dir);
  if (!(await Deno.stat(last).then(() => true, () => false))) {
    console.log(`writing ${n} ${task} ${split} scenes with training/scenes.py …`);
    const out = await new Deno.Command("python3", {
      args: ["training/scenes.py", "--task", task, "--split", split, "--count", String(n), "--out", dir.pathname],
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
  const adaptive: ZooRow[] = [];
  const fractions = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
  let diagnosis: Diagnosis | undefined;
  if (zoo.policy) {
    const frac = zoo.defaultFraction;
    adaptive.push(
      await evaluate(
        task,
        list,
        "paser",
        frac === undefined
          ? "adaptive, no budget (the policy's argmax route)"
          : `adaptive, no budget (default: the ranking at ${frac * 100}% of f2, chosen on validation)`,
        { mode: "adaptive" },
      ),
    );
    adaptive[0].isDefault = true;
    for (const frac of fractions) {
      const budget = Math.round(f2.gflops * frac * 1e6) / 1e6;
      adaptive.push(
        await evaluate(task, list, "paser", `adaptive, budget ${budget} GFLOPs (${frac * 100}% of f2)`, {
          mode: "adaptive",
          budgetFlops: fromGflops(budget),
        }),
      );
      adaptive[adaptive.length - 1].budget = frac;
    }
    rows.push(...adaptive);
    diagnosis = await diagnose(task, list, zoo, fractions);
    rows.push(...diagnosis.oracle);
  }
  for (const conf of thresholds.length >= 3 ? thresholds : [0.99, 0.995, 0.999]) {
    rows.push(
      await evaluate(task, list, "glimpse", `glimpse, X-Confidence ${conf}`, { mode: "glimpse", confidence: conf }),
    );
  }
  // Glimpse under a budget with a target it never reaches: it spends the budget on the least-sure tiles, f1 first.
  const budget = Math.round(f2.gflops * 0.4 * 1e6) / 1e6;
  rows.push(
    await evaluate(task, list, "glimpse", `glimpse, X-Confidence 1, budget ${budget} GFLOPs (40% of f2)`, {
      mode: "glimpse",
      confidence: 1,
      budgetFlops: fromGflops(budget),
    }),
  );
  return { rows, f2, adaptive, note, diagnosis, clocks: {} };
}

/** What the per-tile outcomes say about the zoo, the tiling and the policy on the test scenes. */
export interface Diagnosis {
  /** Oracle rows (family "oracle") at each budget fraction. */
  oracle: ZooRow[];
  /** The policy's ranking replayed on the same outcomes, per fraction (like for like with the oracle). */
  replayed: { fraction: number; miou: number; gflops: number }[];
  /** f2 on every tile: one window per tile at the served halo, merged windows, and the whole image. */
  tiling: { name: string; miou: number; gflops: number }[];
  /** Spearman correlation of the critic's predicted gain with the real gain, per local model. */
  spearman: { model: string; rho: number; ranker?: number }[];
  halos: Record<string, number>;
}

/** Runs every local model on every tile of the scenes once and replays the oracle, the policy and the tiling. */
async function diagnose(task: string, list: Scene[], zoo: Zoo, fractions: number[]): Promise<Diagnosis> {
  const top = zoo.locals[zoo.locals.length - 1];
  const t0 = performance.now();
  const outcomes = await collect(
    pool,
    registry.task(task),
    list,
    zoo,
    zoo.locals.map((model) => ({ model, halo: haloOf(zoo, model) })),
    zoo.locals,
  );
  const base = keepTotals(outcomes);
  const oracle: ZooRow[] = [], replayed: Diagnosis["replayed"] = [];
  for (const frac of fractions) {
    const o = replay(outcomes, zoo, (s) => rankedRoute(s, zoo, realGains(s, zoo, base), frac));
    oracle.push({
      family: "oracle",
      name: `oracle: real per-tile gain, budget ${frac * 100}% of f2`,
      miou: o.miou,
      gflops: o.gflops,
      ms: NaN,
      note: `tiles keep/f1/f2: ${o.share.map((v) => (100 * v).toFixed(0) + "%").join(" / ")}` +
        (o.wholeShare ? `; one model on the whole image for ${(100 * o.wholeShare).toFixed(0)}% of images` : ""),
      budget: frac,
    });
    const p = replay(outcomes, zoo, (s) => rankedRoute(s, zoo, servedGains(s, zoo), frac));
    replayed.push({ fraction: frac, miou: p.miou, gflops: p.gflops });
  }
  const all = (s: SceneOutcome) => s.keep.map(() => zoo.locals.length);
  // Every tile on f2 as cut (not replayed: the never-dearer rule would run f2 on the whole image instead).
  const tiled = new Float64Array(base.length);
  for (const s of outcomes) {
    for (const c of s.tiles[variant(top, haloOf(zoo, top))]) for (let i = 0; i < c.length; i++) tiled[i] += c[i];
  }
  const every = { miou: miouOf(tiled) };
  const separate = outcomes.reduce(
    (f, s) =>
      f + s.glanceFlops + new ZooRun(zoo, s.run.task, s.run.exec, false).localFlops(top, s.keep.map((_c, t) => t)),
    0,
  );
  const merged = outcomes.reduce((f, s) => f + s.glanceFlops + planPrice(s, zoo, all(s)), 0);
  const C = base.length / 2;
  const wholeTotal = new Float64Array(2 * C);
  for (const s of outcomes) {
    for (const c of s.whole[top.spec.id]) for (let i = 0; i < c.length; i++) wholeTotal[i] += c[i];
  }
  const wholeFlops = outcomes.reduce((f, s) => f + s.wholeFlops[top.spec.id], 0);
  const n = outcomes.length * 1e9;
  const h = haloOf(zoo, top);
  const tiling = [
    { name: `${top.spec.id} on the whole image`, miou: miouOf(wholeTotal), gflops: wholeFlops / n },
    {
      name: `f0 + ${top.spec.id} on every tile, one window per tile, ${h} px halo`,
      miou: every.miou,
      gflops: separate / n,
    },
    { name: `f0 + ${top.spec.id} on every tile, merged into one window, ${h} px halo`, miou: NaN, gflops: merged / n },
  ];
  const rho = gainCorrelation(outcomes, zoo);
  const rhoServed = zoo.ranker ? gainCorrelation(outcomes, zoo, (s) => servedGains(s, zoo)) : undefined;
  console.log(`[${task}] diagnosis in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return {
    oracle,
    replayed,
    tiling,
    spearman: zoo.locals.map((m, k) => ({ model: m.spec.id, rho: rho[k], ranker: rhoServed?.[k] })),
    halos: Object.fromEntries(zoo.locals.map((m) => [m.spec.id, haloOf(zoo, m)])),
  };
}
