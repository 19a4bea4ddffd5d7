// A ranker of tile upgrades fitted on the validation split (bench/tune_zoo.ts, models/serving.json): predicts each
// local model's gain on a tile from what the glance already knows — the tile's uncertainty under f0, the image's,
// and the policy's own predicted gain — as a linear function. It replaces the critic's gains in the budget ranking
// when the serving choice carries one.

import type { Box } from "./geometry.ts";
import type { ProbMap } from "./probmap.ts";

/** Linear weights per local model (index = action − 1) over {@link tileFeatures} plus the critic's gain. */
export interface RankerWeights {
  features: string[];
  weights: number[][];
}

/** Names of the features, in order (the critic's gain for the action is appended last). */
export const RANKER_FEATURES = ["1", "tile unsure", "tile entropy", "image unsure", "tile × image unsure", "critic"];

/**
 * Per tile: [1, 1 − mean max-probability, mean entropy / ln C, the image's 1 − mean max-probability, their product].
 *
 * @example
 * ```ts
 * import { ProbMap } from "./probmap.ts";
 * import { tileFeatures } from "./ranker.ts";
 * const probs = new ProbMap(2, 2, 2);
 * const window = { x: 0, y: 0, w: 2, h: 2 };
 * probs.write({ window, c: 2, data: new Float32Array(8) }, window); // p = 0.5 everywhere
 * tileFeatures(probs, [{ x: 0, y: 0, w: 2, h: 2 }])[0]; // [1, 0.5, 1, 0.5, 0.25]
 * ```
 */
export function tileFeatures(probs: ProbMap, tiles: Box[]): number[][] {
  const { h, w, top, entropy } = probs;
  const plane = h * w;
  let img = 0;
  for (let p = 0; p < plane; p++) img += 1 - top[p];
  img /= plane;
  return tiles.map((t) => {
    let u = 0, e = 0;
    for (let y = t.y; y < t.y + t.h; y++) {
      for (let x = t.x; x < t.x + t.w; x++) {
        u += 1 - top[y * w + x];
        e += entropy[y * w + x];
      }
    }
    const n = t.w * t.h;
    return [1, u / n, e / n, img, (u / n) * img];
  });
}

/** Predicted gains [action][tile] (action 0 = keep = 0) from features and the critic's gains. */
export function rankGains(ranker: RankerWeights, features: number[][], critic: number[][]): number[][] {
  return [
    features.map(() => 0),
    ...ranker.weights.map((wts, k) =>
      features.map((f, t) => {
        const x = [...f, critic[k + 1][t]];
        return x.reduce((s, v, i) => s + v * wts[i], 0);
      })
    ),
  ];
}
