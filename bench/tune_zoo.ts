// Chooses how the trained zoos are served, on the validation split (never the test split), and writes the choices to
// models/serving.json, which lib/plan/zoo.ts reads. From one collection of per-tile outcomes (bench/eval/oracle.ts:
// every local model on every tile at halos 0/4/8/16, f0, the policy, the models on the whole image), replayed and
// priced exactly on the served geometry:
//   - the halo of each local model: the pair whose replayed budget curve (the policy's ranking at 10–60% of the
//     strongest model's whole-image FLOPs) has the highest mean mIoU — a halo is paid for only where seams cost more
//     accuracy than its FLOPs buy elsewhere;
//   - the ranking's gains: the critic's, or a linear ranker (lib/plan/ranker.ts) over the glance's uncertainty and
//     the critic, kept only when its curve beats the critic's under two-fold cross-validation over the scenes' halves
//     (then refitted on all);
//   - the default route (no budget header): the ranking at the knee of its replayed curve — spend while the next step
//     buys mIoU per GFLOP at least as fast as the static models' own last step (second-strongest → strongest on the
//     whole image) does.
//
//   deno run -A bench/tune_zoo.ts [--scenes 40] [--task digits --task micrograph]

import { type ServingChoice, type Zoo, zooOf } from "../lib/plan/mod.ts";
import { RANKER_FEATURES, type RankerWeights, rankGains } from "../lib/plan/ranker.ts";
import { pool, registry, ROOT } from "./eval/_common.ts";
import { scenes } from "./eval/zoo.ts";
import {
  collect,
  keepTotals,
  loadOutcomes,
  miouOf,
  rankedRoute,
  realGains,
  replay,
  saveOutcomes,
  type SceneOutcome,
  spearman,
  variant,
} from "./eval/oracle.ts";

const args = Deno.args;
const flag = (name: string) => args.flatMap((a, i) => (a === `--${name}` ? [args[i + 1]] : []));
const SCENES = Number(flag("scenes")[0] ?? 40);
const TASKS = flag("task").length ? flag("task") : ["digits", "micrograph"];
const HALOS = [0, 4, 8, 16];
const FRACTIONS = Array.from({ length: 21 }, (_v, i) => Math.round((0.1 + 0.025 * i) * 1000) / 1000);
/** Budget fractions the halo and ranker choices are scored on (mean replayed mIoU). */
const SCORED = FRACTIONS.filter((_f, i) => i % 2 === 0);

const file = new URL("models/serving.json", ROOT);
const serving = JSON.parse(await Deno.readTextFile(file));
const r4 = (v: number) => Math.round(v * 1e4) / 1e4;
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** Least squares with a small ridge: weights w minimising Σ (x·w − y)² + ε‖w‖². */
function fit(xs: number[][], ys: number[]): number[] {
  const d = xs[0].length;
  const a = Array.from({ length: d }, () => new Array(d + 1).fill(0));
  xs.forEach((x, n) => {
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) a[i][j] += x[i] * x[j];
      a[i][d] += x[i] * ys[n];
    }
  });
  const scale = Math.max(...a.map((r, i) => r[i])) || 1;
  for (let i = 0; i < d; i++) a[i][i] += 1e-6 * scale;
  for (let i = 0; i < d; i++) {
    let p = i;
    for (let r = i + 1; r < d; r++) if (Math.abs(a[r][i]) > Math.abs(a[p][i])) p = r;
    [a[i], a[p]] = [a[p], a[i]];
    for (let r = 0; r < d; r++) {
      if (r === i) continue;
      const k = a[r][i] / a[i][i];
      for (let c = i; c <= d; c++) a[r][c] -= k * a[i][c];
    }
  }
  return a.map((r, i) => r[d] / r[i]);
}

for (const task of TASKS) {
  const spec = registry.task(task);
  const trained = zooOf(registry, spec)!;
  const top = trained.locals[trained.locals.length - 1];
  const second = trained.locals[trained.locals.length - 2];
  const shas = [trained.global, ...trained.locals, trained.policy!].map((m) => m.spec.sha256.slice(0, 8)).join("-");
  const cache = new URL(`data/eval/outcomes-${task}-val-${SCENES}-${shas}.json`, ROOT);
  let outcomes: SceneOutcome[];
  if (await Deno.stat(cache).then(() => true, () => false)) {
    outcomes = await loadOutcomes(cache, trained, spec);
  } else {
    const list = await scenes(task, SCENES, "val");
    const t0 = performance.now();
    outcomes = await collect(
      pool,
      spec,
      list,
      trained,
      trained.locals.flatMap((model) => HALOS.map((halo) => ({ model, halo }))),
      trained.locals,
    );
    console.log(`[${task}] ${SCENES} val scenes collected in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    await saveOutcomes(cache, outcomes);
  }
  const C = spec.classes.length;
  const sum = (list: SceneOutcome[], pick: (o: SceneOutcome) => Float64Array[]) => {
    const total = new Float64Array(2 * C);
    for (const o of list) for (const c of pick(o)) for (let i = 0; i < c.length; i++) total[i] += c[i];
    return miouOf(total);
  };
  const haloTable: Record<string, Record<string, number>> = {};
  for (const m of trained.locals) {
    haloTable[m.spec.id] = {
      whole_image: r4(sum(outcomes, (o) => o.whole[m.spec.id])),
      ...Object.fromEntries(HALOS.map((h) => [`halo_${h}`, r4(sum(outcomes, (o) => o.tiles[variant(m, h)]))])),
    };
  }
  console.log(`[${task}] every tile, mIoU by halo:`, JSON.stringify(haloTable));

  const gainsOf = (ranker: RankerWeights | null) => (o: SceneOutcome) =>
    ranker ? rankGains(ranker, o.features, o.gain!) : o.gain!;
  const curve = (zoo: Zoo, list: SceneOutcome[], gains: (o: SceneOutcome) => number[][], fractions: number[]) =>
    fractions.map((fraction) => ({ fraction, ...replay(list, zoo, (o) => rankedRoute(o, zoo, gains(o), fraction)) }));

  // Halos: every pair, scored by the critic's replayed curve.
  const combos: { halos: Record<string, number>; score: number }[] = [];
  for (const h1 of HALOS) {
    for (const h2 of HALOS) {
      const halos = { [second.spec.id]: h1, [top.spec.id]: h2 };
      const zoo = { ...trained, halos };
      combos.push({ halos, score: mean(curve(zoo, outcomes, gainsOf(null), SCORED).map((p) => p.miou)) });
    }
  }
  combos.sort((a, b) => b.score - a.score);
  const halo = combos[0].halos;
  console.log(`[${task}] halo pairs by mean replayed mIoU:`, combos.slice(0, 5).map((c) => JSON.stringify(c)));
  const served: Zoo = { ...trained, halos: halo };

  // The critic's and the glance features' rank correlation with the real gains.
  const base = keepTotals(outcomes);
  const real = outcomes.map((o) => realGains(o, served, base));
  const correlation: Record<string, Record<string, number>> = {};
  trained.locals.forEach((m, k) => {
    const y = real.flatMap((g) => g[k + 1]);
    correlation[m.spec.id] = {
      critic: r4(spearman(outcomes.flatMap((o) => o.gain![k + 1]), y)),
      ...Object.fromEntries(
        RANKER_FEATURES.slice(1, -1).map((
          name,
          i,
        ) => [name, r4(spearman(outcomes.flatMap((o) => o.features.map((f) => f[i + 1])), y))]),
      ),
    };
  });
  console.log(`[${task}] Spearman with the real gain:`, JSON.stringify(correlation));

  // The ranker: two-fold cross-validation — fitted on one half, judged on the other against the critic, both ways.
  const fitRanker = (list: SceneOutcome[], gains: number[][][]): RankerWeights => ({
    features: RANKER_FEATURES,
    weights: trained.locals.map((_m, k) =>
      fit(
        list.flatMap((o) => o.features.map((f, t) => [...f, o.gain![k + 1][t]])),
        gains.flatMap((g) => g[k + 1]),
      )
    ),
  });
  const half = Math.floor(outcomes.length / 2);
  const folds = [[0, half], [half, outcomes.length]].map(([a, b]) => {
    const trainIdx = outcomes.map((_o, i) => i).filter((i) => i < a || i >= b);
    const r = fitRanker(trainIdx.map((i) => outcomes[i]), trainIdx.map((i) => real[i]));
    const held = outcomes.slice(a, b);
    return {
      critic: mean(curve(served, held, gainsOf(null), SCORED).map((p) => p.miou)),
      ranker: mean(curve(served, held, gainsOf(r), SCORED).map((p) => p.miou)),
    };
  });
  const criticScore = mean(folds.map((f) => f.critic)), rankerScore = mean(folds.map((f) => f.ranker));
  const useRanker = rankerScore > criticScore;
  console.log(`[${task}] two-fold mean replayed mIoU: critic ${r4(criticScore)}, ranker ${r4(rankerScore)}`);
  const ranker = useRanker ? fitRanker(outcomes, real) : null;

  // The default route: the knee of the replayed curve with the chosen gains.
  const points = curve(served, outcomes, gainsOf(ranker), FRACTIONS);
  const oracle = curve(served, outcomes, (o) => realGains(o, served, base), FRACTIONS);
  const meanWhole = (id: string) => mean(outcomes.map((o) => o.wholeFlops[id])) / 1e9;
  const topWhole = sum(outcomes, (o) => o.whole[top.spec.id]);
  const staticSlope = (topWhole - sum(outcomes, (o) => o.whole[second.spec.id])) /
    (meanWhole(top.spec.id) - meanWhole(second.spec.id));
  const hull: typeof points = [];
  for (const p of [...points].sort((a, b) => a.gflops - b.gflops)) {
    if (hull.length && p.miou <= hull[hull.length - 1].miou) continue;
    while (hull.length >= 2) {
      const [a, b] = hull.slice(-2);
      if ((p.miou - b.miou) / (p.gflops - b.gflops) >= (b.miou - a.miou) / (b.gflops - a.gflops)) hull.pop();
      else break;
    }
    hull.push(p);
  }
  let k = 0;
  while (
    k + 1 < hull.length && (hull[k + 1].miou - hull[k].miou) / (hull[k + 1].gflops - hull[k].gflops) >= staticSlope
  ) {
    k++;
  }
  const knee = hull[k];
  const choice: ServingChoice = {
    halo,
    default_route: { rule: "budget", fraction_of_strongest: knee.fraction },
    ranker,
  };
  serving.tasks[task] = {
    ...choice,
    validation: {
      scenes: `training/scenes.py --task ${task} --split val, scenes 0-${SCENES - 1}`,
      halo_rule: "the pair of halos whose replayed budget curve (critic ranking, budgets " +
        `${SCORED[0] * 100}–${SCORED[SCORED.length - 1] * 100}% of ${top.spec.id} on the whole image) has the ` +
        "highest mean mIoU",
      every_tile_miou_by_halo: haloTable,
      halo_pairs: combos.slice(0, 5).map((c) => ({ ...c.halos, mean_miou: r4(c.score) })),
      spearman_with_real_gain: correlation,
      ranker_rule: "linear ranker kept if its mean replayed mIoU, two-fold cross-validated over the halves, beats " +
        `the critic's (ranker ${r4(rankerScore)}, critic ${r4(criticScore)})`,
      default_rule: "the knee of the replayed curve: the last point of its upper convex hull reached by segments " +
        `that buy mIoU per GFLOP at least as fast as ${second.spec.id} → ${top.spec.id} on the whole image ` +
        `(${staticSlope.toFixed(5)} mIoU/GFLOP)`,
      strongest_whole_image: { miou: r4(topWhole), gflops: r4(meanWhole(top.spec.id)) },
      budget_curve: points.map((p, i) => ({
        fraction: p.fraction,
        miou: r4(p.miou),
        gflops: r4(p.gflops),
        oracle_miou: r4(oracle[i].miou),
        oracle_gflops: r4(oracle[i].gflops),
      })),
    },
  };
  for (const p of serving.tasks[task].validation.budget_curve) console.log(`[${task}]`, JSON.stringify(p));
  console.log(`[${task}] chose`, JSON.stringify({ halo, fraction: knee.fraction, ranker: !!ranker }));
}
pool.close();
serving.about = "Serving choices of the trained zoos (per-model halo, ranking gains, default route), made on the " +
  "validation split by `deno run -A bench/tune_zoo.ts`; do not edit by hand.";
await Deno.writeTextFile(file, JSON.stringify(serving, null, 2) + "\n");
await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", "models/serving.json"], cwd: ROOT }).output();
console.log("wrote models/serving.json");
