// One worker pool measured in a process of its own, for bench/run.ts. In one process, pools started one after another
// do not measure alike: V8 shares compiled WebAssembly between the isolates of a process, and an onnxruntime-web pool
// started after the earlier ones were gone ran at a third of the speed of the first for its whole life (640², 2
// threads: 340 vs 130 ms a run, the third pool of every sequence); six pools alive at once took each other's cores.
// A server has one pool, started once: so does each probe.
//
//   deno run -A bench/_probe.ts raw <backend> <threads> <runs>      → {"ms": [...]} time inside session.run
//   deno run -A bench/_probe.ts policy <backend> <workers> <threads> [<lone worker's threads>]
//                                                                     → {"c1": [...], "c4": [...]} ms, jobs/s

import { decodeImage } from "../lib/image/mod.ts";
import { ModelRegistry } from "../lib/models.ts";
import { Executor, WorkerPool } from "../lib/exec/mod.ts";
import type { Backend } from "../lib/exec/mod.ts";
import { wholeImageCall } from "../lib/plan/fixed.ts";
import { textImage } from "../dev/fixtures.ts";
import { settle, sizeLines } from "./_bench.ts";

const PROBE_SIZE = 640;

const [what, backend, ...nums] = Deno.args;
const [a, b, lone = 0] = nums.map(Number);
const registry = await ModelRegistry.load();
const text = registry.model("text-ppocrv4-det");
// As the server's workers load it (the elementwise runs folded: lib/models.ts `workerModels`).
const models = registry.workerModels().filter((m) => m.id === text.spec.id);
const S = PROBE_SIZE, dims = [1, 3, S, S];
const [size, threads] = what === "raw" ? [1, a] : [a, b];
const pool = new WorkerPool({ size, queueLimit: 64, backend: backend as Backend, threads, loneThreads: lone, models });
await pool.start();
if (pool.backend !== backend) throw new Error(`asked for ${backend}, got ${pool.backend}`);
let result: Record<string, number[]>;
if (what === "raw") {
  // The model alone: a tensor in, the time inside session.run out.
  const tensor = () => new Float32Array(3 * S * S).fill(0.2);
  await pool.run(text.spec.id, dims, tensor(), 120_000);
  const ms: number[] = [];
  for (let i = 0; i < b; i++) ms.push((await pool.run(text.spec.id, dims, tensor(), 120_000)).inferMs);
  result = { ms };
} else {
  // As the server runs a fixed request: the decoded image in, the model on its padded window, the outputs back.
  const { image: page } = await textImage(S, S, sizeLines(S, S));
  const image = await decodeImage(new Uint8Array(await page.encode()));
  const once = () =>
    new Executor(pool, image, { maxExecPixels: 1 << 24, timeoutMs: 120_000 }).run([
      wholeImageCall(text, S, S, 1 << 24),
    ]);
  // Warm every worker: one job alone, then four at once.
  await once();
  await Promise.all([0, 1, 2, 3].map(() => once()));
  const c1: number[] = [], c4: number[] = [];
  await settle();
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    await once();
    c1.push(performance.now() - t0);
  }
  // Four clients, each sending its next job when its last is answered (as the HTTP benchmark's c=4): jobs per second.
  for (let i = 0; i < 2; i++) {
    await settle();
    const t0 = performance.now();
    await Promise.all([0, 1, 2, 3].map(async () => {
      for (let k = 0; k < 4; k++) await once();
    }));
    c4.push(16_000 / (performance.now() - t0));
  }
  result = { c1, c4 };
}
pool.close();
console.log(JSON.stringify(result));
Deno.exit(0);
