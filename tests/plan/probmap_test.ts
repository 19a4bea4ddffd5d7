// The zoo planners' probability map: a worker's summaries written as they came, and a class-only write (a plan's last
// step) that leaves nothing stale to be read.

import assert from "node:assert/strict";
import { summariseBatch } from "../../lib/image/mod.ts";
import { ProbMap } from "../../lib/plan/probmap.ts";

const window = { x: 0, y: 0, w: 3, h: 1 };
// Logits [C=2, 1, 3]: classes 1, 0, 1.
const scores = { dims: [1, 2, 1, 3], data: new Float32Array([0, 4, 0, 3, 0, 1]) };

Deno.test("ProbMap: a worker's summary writes what the scores would", () => {
  const fromScores = new ProbMap(2, 1, 3), fromSummary = new ProbMap(2, 1, 3);
  fromScores.write({ window, c: 2, data: scores.data }, window);
  fromSummary.write({ window, c: 3, data: summariseBatch(scores, 1, 3, "all").data, summarised: "all" }, window);
  assert.deepEqual(fromSummary.argmax(), fromScores.argmax());
  assert.deepEqual(fromSummary.top, fromScores.top);
  assert.deepEqual(fromSummary.entropy, fromScores.entropy);
  assert.equal(fromSummary.confidence(), fromScores.confidence());
});

Deno.test("ProbMap: a class-only write updates the mask, and reading the stale probabilities after it throws", () => {
  const probs = new ProbMap(2, 1, 3);
  probs.write({ window, c: 2, data: new Float32Array(6) }, window); // all ties: class 0
  const core = { x: 1, y: 0, w: 2, h: 1 };
  probs.write({ window, c: 1, data: summariseBatch(scores, 1, 3, "class").data, summarised: "class" }, core);
  assert.deepEqual(probs.argmax(), new Uint8Array([0, 0, 1]));
  assert.throws(() => probs.confidence(), /stale/);
  assert.throws(() => probs.policyPlanes(), /stale/);
});
