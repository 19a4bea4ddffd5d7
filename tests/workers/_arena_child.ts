// Child process of runtime_node_test.ts: RSS is per process, so the measurement runs alone. Prints
// {before, grown, after} in MiB: after a small run, after a 32×65536 run, and after the idle time. With the argument
// `share`, prints {grown: [MiB, …]} instead: the RSS each of three sessions of one runtime adds by its first run of one
// 32×16384 input. With `limit N`, prints {rounds: [[grown, settled], …]}: RSS after two rounds of a 32×16384 run, each
// followed by a job's end past the hard limit (with `regrowMb` N).
import { ModelRegistry } from "../../lib/models.ts";
import { ARENA_LIMITS } from "../../workers/protocol.ts";
import { nodeRuntime } from "../../workers/runtime_node.ts";

const rssMb = () => Math.round(Deno.memoryUsage().rss / 2 ** 20);
const registry = await ModelRegistry.load();
const text = registry.workerModels().find((m) => m.id === "text-ppocrv4-det")!;
// The server's limits, with a short idle time (the server waits ARENA_LIMITS.idleMs).
const limits = { ...ARENA_LIMITS, idleMs: 1000 };
if (Deno.args[0] === "share") {
  const runtime = nodeRuntime(limits);
  const grown: number[] = [];
  for (let i = 0; i < 3; i++) {
    const s = await runtime.load(text.bytes, 1);
    await s.run(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]);
    const start = rssMb();
    await s.run(new Float32Array(3 * 32 * 16384), [1, 3, 32, 16384]);
    grown.push(rssMb() - start);
  }
  console.log(JSON.stringify({ grown }));
  Deno.exit(0);
}
if (Deno.args[0] === "limit") {
  // Always past the hard limit; the arena is given back after a job only when the process grew by `regrowMb` since.
  const runtime = nodeRuntime({ ...limits, hardMb: 0, regrowMb: Number(Deno.args[1]) });
  const s = await runtime.load(text.bytes, 1);
  const rounds: number[][] = [];
  for (let i = 0; i < 2; i++) {
    await s.run(new Float32Array(3 * 32 * 16384), [1, 3, 32, 16384]);
    const grown = rssMb();
    runtime.settle();
    // A run waits for the arena's recreation under way.
    await s.run(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]);
    rounds.push([grown, rssMb()]);
  }
  console.log(JSON.stringify({ rounds }));
  Deno.exit(0);
}
const session = await nodeRuntime(limits).load(text.bytes, 1);
await session.run(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]);
const before = rssMb();
// A 32×65536 strip (what a 1×65535 upload pads to): a few hundred MB of intermediate tensors.
const out = await session.run(new Float32Array(3 * 32 * 65536), [1, 3, 32, 65536]);
const grown = rssMb();
await new Promise((r) => setTimeout(r, limits.idleMs + 1000));
const after = rssMb();
const again = await session.run(new Float32Array(3 * 64 * 64), [1, 3, 64, 64]);
await session.release();
console.log(
  JSON.stringify({ before, grown, after, dims: Object.values(out)[0].dims, again: Object.values(again)[0].dims }),
);
