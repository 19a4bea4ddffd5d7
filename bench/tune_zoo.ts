// Chooses how the trained zoos are served, on the validation split (never the test split), and writes the choices to
// models/serving.json, which lib/plan/zoo.ts reads:
//   - each local model's halo: the smallest of 0/4/8/16 px whose every-tile mIoU is within HALO_TOLERANCE of the
//     trained halo's (16 px) — seams that measurably do not hurt are not paid for;
//   - the default route (no budget header): the policy's budget ranking at a fraction of the strongest model's
//     whole-image FLOPs, the knee of the replayed curve on validation: spend while the next step buys mIoU per GFLOP
//     at least as fast as the static models' own last step (second-strongest → strongest on the whole image) does.
//     Also recorded: the smallest fraction within DEFAULT_TOLERANCE of the strongest model.
//
//   deno run -A bench/tune_zoo.ts [--scenes 40] [--task digits --task micrograph]

import { type ServingChoice, zooOf } from "../lib/plan/mod.ts";
import { pool, registry, ROOT } from "./eval/_common.ts";
import { scenes } from "./eval/zoo.ts";
import { collect, keepTotals, miouOf, rankedRoute, realGains, replay, variant } from "./eval/oracle.ts";

const args = Deno.args;
const flag = (name: string) => args.flatMap((a, i) => (a === `--${name}` ? [args[i + 1]] : []));
const SCENES = Number(flag("scenes")[0] ?? 40);
const TASKS = flag("task").length ? flag("task") : ["digits", "micrograph"];
const HALOS = [0, 4, 8, 16];
/** mIoU (fraction) a smaller halo may lose against the trained one. */
const HALO_TOLERANCE = 0.0005;
/** mIoU (fraction) the default route may lose against the strongest model on the whole image. */
const DEFAULT_TOLERANCE = 0.005;
const FRACTIONS = Array.from({ length: 21 }, (_v, i) => Math.round((0.1 + 0.025 * i) * 1000) / 1000);

const file = new URL("models/serving.json", ROOT);
const serving = JSON.parse(await Deno.readTextFile(file));
const r4 = (v: number) => Math.round(v * 1e4) / 1e4;

for (const task of TASKS) {
  const spec = registry.task(task);
  const trained = zooOf(registry, spec)!;
  const top = trained.locals[trained.locals.length - 1];
  const list = await scenes(task, SCENES, "val");
  const t0 = performance.now();
  const outcomes = await collect(
    pool,
    spec,
    list,
    trained,
    trained.locals.flatMap((model) => HALOS.map((halo) => ({ model, halo }))),
    trained.locals,
  );
  console.log(`[${task}] ${SCENES} val scenes collected in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const sum = (pick: (o: (typeof outcomes)[0]) => Float64Array[]) => {
    const C = spec.classes.length;
    const total = new Float64Array(2 * C);
    for (const o of outcomes) for (const c of pick(o)) for (let i = 0; i < c.length; i++) total[i] += c[i];
    return miouOf(total);
  };
  const haloTable: Record<string, Record<string, number>> = {};
  const halo: Record<string, number> = {};
  for (const m of trained.locals) {
    const whole = sum((o) => o.whole[m.spec.id]);
    const per = Object.fromEntries(HALOS.map((h) => [String(h), r4(sum((o) => o.tiles[variant(m, h)]))]));
    haloTable[m.spec.id] = { whole_image: r4(whole), ...per };
    const ref = sum((o) => o.tiles[variant(m, trained.halo)]);
    halo[m.spec.id] = HALOS.find((h) => sum((o) => o.tiles[variant(m, h)]) >= ref - HALO_TOLERANCE)!;
    console.log(`[${task}] ${m.spec.id} every tile, mIoU by halo:`, haloTable[m.spec.id], "→", halo[m.spec.id]);
  }
  const served = { ...trained, halos: halo };
  const topWhole = sum((o) => o.whole[top.spec.id]);
  const base = keepTotals(outcomes);
  const curve = FRACTIONS.map((fraction) => {
    const policy = replay(outcomes, served, (o) => rankedRoute(o, served, o.gain!, fraction));
    const oracle = replay(outcomes, served, (o) => rankedRoute(o, served, realGains(o, served, base), fraction));
    return {
      fraction,
      policy_miou: r4(policy.miou),
      policy_gflops: r4(policy.gflops),
      oracle_miou: r4(oracle.miou),
      oracle_gflops: r4(oracle.gflops),
    };
  });
  for (const p of curve) console.log(`[${task}]`, JSON.stringify(p));
  // The knee of the replayed curve: walk its upper convex hull from the cheapest point and stop where the next
  // segment buys mIoU at a worse rate per GFLOP than upgrading the whole image from the second-strongest model to the
  // strongest does (the static Pareto front's own last segment).
  const second = trained.locals[trained.locals.length - 2];
  const meanWhole = (m: typeof top) =>
    outcomes.reduce((f, o) => f + o.wholeFlops[m.spec.id], 0) / outcomes.length / 1e9;
  const staticSlope = (topWhole - sum((o) => o.whole[second.spec.id])) / (meanWhole(top) - meanWhole(second));
  const hull: typeof curve = [];
  for (const p of [...curve].sort((a, b) => a.policy_gflops - b.policy_gflops)) {
    if (hull.length && p.policy_miou <= hull[hull.length - 1].policy_miou) continue;
    while (hull.length >= 2) {
      const [a, b] = hull.slice(-2);
      const s1 = (b.policy_miou - a.policy_miou) / (b.policy_gflops - a.policy_gflops);
      const s2 = (p.policy_miou - b.policy_miou) / (p.policy_gflops - b.policy_gflops);
      if (s2 >= s1) hull.pop();
      else break;
    }
    hull.push(p);
  }
  let k = 0;
  while (
    k + 1 < hull.length &&
    (hull[k + 1].policy_miou - hull[k].policy_miou) / (hull[k + 1].policy_gflops - hull[k].policy_gflops) >= staticSlope
  ) k++;
  const knee = hull[k];
  const within = curve.find((p) => p.policy_miou >= topWhole - DEFAULT_TOLERANCE);
  console.log(
    `[${task}] static slope ${staticSlope.toFixed(5)} mIoU/GFLOP; knee ${knee.fraction}; within ` +
      `${DEFAULT_TOLERANCE * 100} point: ${within?.fraction ?? "none"}`,
  );
  const pick = knee;
  const choice: ServingChoice = { halo, default_route: { rule: "budget", fraction_of_strongest: pick.fraction } };
  serving.tasks[task] = {
    ...choice,
    validation: {
      scenes: `training/scenes.py --task ${task} --split val, scenes 0-${SCENES - 1}`,
      halo_rule: `smallest halo whose every-tile mIoU is within ${HALO_TOLERANCE * 100} point of the trained ` +
        `${trained.halo} px halo's`,
      halo_miou: haloTable,
      default_rule: "the knee of the replayed policy curve: the last point of its upper convex hull reached by " +
        `segments that buy mIoU per GFLOP at least as fast as ${second.spec.id} → ${top.spec.id} on the whole image ` +
        `(${staticSlope.toFixed(5)} mIoU/GFLOP)`,
      within_tolerance: { tolerance: DEFAULT_TOLERANCE, fraction: within?.fraction ?? null },
      strongest_whole_image_miou: r4(topWhole),
      budget_curve: curve,
    },
  };
  console.log(`[${task}] chose`, JSON.stringify(choice));
}
pool.close();
await Deno.writeTextFile(file, JSON.stringify(serving, null, 2) + "\n");
await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", "models/serving.json"], cwd: ROOT }).output();
console.log("wrote models/serving.json");
