// The report's section of one zoo task (docs/EVAL.md): the table of every mode, the diagnosis and the targets, from
// what bench/eval/zoo.ts measured.

import type { ZooClock, ZooResult, ZooRow } from "./zoo.ts";
import { CLOCK_NAMES, type ClockBackend, type Row } from "./_common.ts";

const f = (v: number, d = 4) => v.toFixed(d);

/** The report's section of one zoo task: the table, the diagnosis and the targets. */
export function zooSection(task: string, { rows, f2, adaptive, note, diagnosis, clocks }: ZooResult): string[] {
  const md: string[] = [];
  const pct = (g: number) => `${(100 * g / f2.gflops).toFixed(1)}%`;
  const pts = (d: number) => `${d >= 0 ? "+" : ""}${(100 * d).toFixed(2)}`;
  const statics = rows.filter((r) => r.family === "static");
  /** The best static model whose whole-image cost fits `gflops`. */
  const bestStatic = (gflops: number) =>
    statics.filter((s) => s.gflops <= gflops + 1e-9).sort((a, b) => b.miou - a.miou)[0];
  md.push(`## \`${task}\``, "", note, "");
  md.push(
    "| mode | mIoU | mean GFLOPs | % of f2 GFLOPs | IoU/GFLOP | mean latency ms | vs best static that fits | notes |",
  );
  md.push("|---|---:|---:|---:|---:|---:|---|---|");
  for (const r of rows) {
    const b = r.family === "static" ? undefined : bestStatic(r.gflops);
    md.push(
      `| ${r.name} | ${f(r.miou)} | ${f(r.gflops, 3)} | ${pct(r.gflops)} | ${(r.miou / r.gflops).toFixed(2)} | ` +
        `${Number.isNaN(r.ms) ? "—" : r.ms.toFixed(1)} | ${
          b ? `${pts(r.miou - b.miou)} vs ${b.name.split(" ")[1]}` : ""
        } | ` +
        `${r.note ?? ""} |`,
    );
  }
  md.push("");
  if (diagnosis) {
    const { oracle, replayed, tiling, spearman, halos } = diagnosis;
    md.push(
      "Diagnosis. Every local model ran once on every tile of these scenes (one window per tile, served halos: " +
        Object.entries(halos).map(([m, h]) => `${m} ${h} px`).join(", ") +
        "), and f2 on the whole image; routes are then replayed on these per-tile outcomes, each priced exactly " +
        "on the served geometry (f0, the policy, merged windows; never dearer, as served: a plan dearer than f2 on the " +
        "whole image runs that, one that sends every tile to one model runs it on the whole image). " +
        "The oracle ranks each tile's upgrades by their real gain against the label per FLOP (the same convex-hull " +
        "ranking as the policy's budget mode, budget.ts): the upper bound of any policy on this zoo and tiling. " +
        "Replayed masks use one window per tile, so they differ slightly from served (merged) ones.",
      "",
      "| budget (% of f2) | policy served | policy replayed | oracle | oracle − policy (replayed), points | " +
        "oracle − f2 (whole image), points |",
      "|---:|---:|---:|---:|---:|---:|",
    );
    oracle.forEach((o, i) => {
      const served = adaptive.find((a) => a.budget === o.budget);
      const r = replayed[i];
      md.push(
        `| ${o.budget! * 100}% | ${served ? `${f(served.miou)} @ ${pct(served.gflops)}` : "—"} | ` +
          `${f(r.miou)} @ ${pct(r.gflops)} | ${f(o.miou)} @ ${pct(o.gflops)} | ${pts(o.miou - r.miou)} | ` +
          `${pts(o.miou - f2.miou)} |`,
      );
    });
    md.push("", "| cost of tiling | mIoU | mean GFLOPs | % of f2 GFLOPs |", "|---|---:|---:|---:|");
    for (const t of tiling) {
      md.push(`| ${t.name} | ${Number.isNaN(t.miou) ? "—" : f(t.miou)} | ${f(t.gflops, 3)} | ${pct(t.gflops)} |`);
    }
    md.push(
      "",
      "Rank correlation (Spearman, over all tiles) with the real gain of each upgrade: the policy's critic " +
        spearman.map((s) => `${s.model} ${s.rho.toFixed(3)}`).join(", ") +
        (spearman[0].ranker === undefined ? "" : "; the served ranking (the linear ranker fitted on validation, " +
          "models/serving.json) " + spearman.map((s) => `${s.model} ${s.ranker!.toFixed(3)}`).join(", ")) +
        ".",
      "",
    );
  }
  // Targets (issue 14), checked on the measured rows.
  const oracle = diagnosis?.oracle ?? [];
  md.push(
    "Targets (the last column: the same target for the oracle, the upper bound of any policy on this zoo and tiling; " +
      "where the oracle misses too, the zoo and the tiling are the limit, where only the policy misses, its ranking is):",
    "",
    "| target | measured | met | oracle |",
    "|---|---|---|---|",
  );
  const yes = (ok: boolean) => (ok ? "yes" : "**no**");
  const againstStatic = (list: ZooRow[]) => {
    const gaps = list.filter((a) => a.budget !== undefined).map((a) => {
      const b = bestStatic(a.gflops)!;
      return { a, b, d: a.miou - b.miou };
    });
    if (!gaps.length) return { text: "—", ok: false };
    const worst = gaps.reduce((p, q) => (q.d < p.d ? q : p));
    return {
      text: `worst: ${worst.a.budget! * 100}% of f2, ${f(worst.a.miou)} vs ${worst.b.name.split(" ")[1]} ` +
        `${f(worst.b.miou)} (${pts(worst.d)} points); met at ` +
        `${gaps.filter((g) => g.d >= 0.01).map((g) => `${g.a.budget! * 100}%`).join(", ") || "none"}`,
      ok: gaps.every((g) => g.d >= 0.01),
    };
  };
  const policyVsStatic = againstStatic(adaptive), oracleVsStatic = againstStatic(oracle);
  md.push(
    `| at every budget 10–60% of f2, adaptive ≥ best static that fits + 1 point | ${policyVsStatic.text} | ` +
      `${yes(policyVsStatic.ok)} | ${
        oracle.length ? `${oracleVsStatic.text} (${oracleVsStatic.ok ? "met" : "missed"})` : "—"
      } |`,
  );
  const near = (limit: number, pool: ZooRow[], tol: number) =>
    pool.filter((r) => r.gflops <= limit * f2.gflops && r.miou >= f2.miou - tol).sort((a, b) => a.gflops - b.gflops)[0];
  const bestUnder = (limit: number, pool: ZooRow[]) =>
    pool.filter((r) => r.gflops <= limit * f2.gflops).sort((a, b) => b.miou - a.miou)[0];
  const show = (r: Row | undefined) =>
    r ? `${r.name}: ${f(r.miou)} (${pts(r.miou - f2.miou)} points) at ${pct(r.gflops)}` : "no row";
  const showOracle = (limit: number, tol: number) => {
    if (!oracle.length) return "—";
    const o = near(limit, oracle, tol);
    return `${show(o ?? bestUnder(limit, oracle))} (${o ? "met" : "missed"})`;
  };
  const half = near(0.3, adaptive, 0.005);
  md.push(
    `| adaptive within 0.5 point of f2 at ≤ 30% | ${show(half ?? bestUnder(0.3, adaptive))} | ${yes(!!half)} | ` +
      `${showOracle(0.3, 0.005)} |`,
  );
  const def = adaptive.find((a) => a.isDefault);
  if (def) {
    const ok = def.gflops <= 0.3 * f2.gflops && def.miou >= f2.miou - 0.01;
    md.push(
      `| the default route within 1 point of f2 at ≤ 30% | ${show(def)} | ${yes(ok)} | ${showOracle(0.3, 0.01)} |`,
    );
  }
  const glimpse = rows.filter((r) => r.family === "glimpse");
  const g = near(0.4, glimpse, 0.01);
  md.push(
    `| glimpse within 1 point of f2 at ≤ 40% | ${show(g ?? bestUnder(0.4, glimpse))} | ${yes(!!g)} | ` +
      `${showOracle(0.4, 0.01)} |`,
  );
  // FLOPs do not depend on the backend: the default route's saving, against each backend's time.
  const measured = def ? Object.entries(clocks) as [ClockBackend, ZooClock][] : [];
  const flopSave = def ? 1 - def.gflops / f2.gflops : 0;
  for (const [backend, clock] of measured) {
    const timeSave = 1 - clock.defaultMs / clock.f2Ms;
    md.push(
      `| wall-clock saving ≥ 90% of the FLOP saving (default route), ${
        CLOCK_NAMES[backend].long
      }, the server's default ` +
        `layout (${clock.layout}) | FLOPs −${(100 * flopSave).toFixed(1)}%, time −${(100 * timeSave).toFixed(1)}% (${
          (100 * timeSave / flopSave).toFixed(1)
        }%; f2 ${clock.f2Ms.toFixed(1)} ms, default route ` +
        `${clock.defaultMs.toFixed(1)} ms) | ${yes(timeSave >= 0.9 * flopSave)} | — |`,
    );
  }
  md.push("");
  const glance = statics.reduce((a, b) => (b.gflops < a.gflops ? b : a));
  if (def && glance !== f2 && measured.length) {
    // The glance's own time, against a route whose every other FLOP ran at f2's FLOPs per ms.
    const bound = ([backend, c]: [ClockBackend, ZooClock]) => {
      const best = 1 - c.f0Ms / c.f2Ms - (def.gflops - glance.gflops) / f2.gflops;
      return `${c.f0Ms.toFixed(1)} ms on ${CLOCK_NAMES[backend].on} (${
        (100 * c.f0Ms / c.f2Ms).toFixed(1)
      }% of f2's time; ` +
        `the route then saves at most ${(100 * best / flopSave).toFixed(0)}% of its FLOP saving)`;
    };
    const rate = ([backend, c]: [ClockBackend, ZooClock]) =>
      `${((c.defaultMs / def.gflops) / (c.f2Ms / f2.gflops)).toFixed(2)}× (${CLOCK_NAMES[backend].short})`;
    md.push(
      `What bounds the wall-clock lines: the default route's time per FLOP is ${
        measured.map(rate).join(" and ")
      } f2's. A lone f2 request runs on every core in both layouts (WASM: the one worker's threads; native: ` +
        "the lone worker), while the route's steps are smaller models on smaller windows. Its first step, " +
        `${glance.name.split(" ")[1]} on the whole image (${pct(glance.gflops)} of f2's FLOPs; few-channel ` +
        "convolutions), takes alone (`fixed`) " + measured.map(bound).join(" and ") +
        ", even if every other FLOP of the route ran at f2's speed.",
      "",
    );
  }
  return md;
}
