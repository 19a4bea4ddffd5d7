import assert from "node:assert/strict";
import { boundSentence, type LayerTime, planBound } from "../../bench/eval/bound.ts";

// A detector whose tail is half its FLOPs and 40 % of its time (its front slower per FLOP).
const layer = (threads: number, backend: LayerTime["backend"]): LayerTime => ({
  width: 1920,
  height: 1088,
  threads,
  backend,
  wholeMs: 100,
  frontMs: 60,
  tailTime: 0.4,
  tailFlops: 0.5,
});

Deno.test("planBound: each part at its own time per FLOP, no overhead", () => {
  const b = planBound(layer(1, "node"), 0.9, 0.3);
  assert.ok(Math.abs(b.flops - 0.6) < 1e-12);
  assert.ok(Math.abs(b.time - 0.66) < 1e-12);
  assert.ok(Math.abs(b.saving - 0.34 / 0.4) < 1e-12);
});

Deno.test("boundSentence: end to end, the decode scales the shape's bound at the served thread count only", () => {
  const times = [layer(1, "node"), layer(2, "node"), layer(2, "web")];
  const shape = boundSentence(times, 0.9, 0.3);
  assert.ok(shape.includes("85.0% / 85.0% / 85.0% of the FLOP saving"));
  assert.ok(!shape.includes("End to end"));
  // Native: 85 % of the FLOP saving × 0.9 of the time savable = 76.5 %; WASM × 0.96 = 81.6 %.
  const both = boundSentence(times, 0.9, 0.3, { node: 0.9, web: 0.96 });
  assert.match(
    both,
    /the rest of a request is 90\.0% \/ 96\.0% of full resolution's time on 2 native threads \/ 2 WASM/,
  );
  assert.match(
    both,
    /at best 76\.5% \/ 81\.6% of the FLOP saving: the 90% line is out of its reach on 2 native threads and 2 WASM/,
  );
  // A shape within the line (115 %) that the decode puts beyond it (× 0.7: 80.5 %) is not called overhead-bound there;
  // one the decode leaves within it (× 0.8: 92 %) still is.
  const fast = (threads: number, backend: LayerTime["backend"]) => ({ ...layer(threads, backend), tailTime: 0.6 });
  const beyond = boundSentence([fast(2, "node"), fast(2, "web")], 0.9, 0.3, { node: 0.7 });
  assert.match(beyond, /On 2 WASM threads the 90% line is within the plan's shape/);
  assert.match(
    beyond,
    /allows at best 80\.5% of the FLOP saving: the 90% line is out of its reach on 2 native threads,/,
  );
  const within = boundSentence([fast(2, "node"), fast(2, "web")], 0.9, 0.3, { node: 0.8 });
  assert.match(within, /On 2 native threads and 2 WASM threads the 90% line is within the plan's shape/);
  assert.match(within, /allows at best 92\.0% of the FLOP saving\.$/);
});
