// The Executor (lib/exec/): prices exactly what it runs, batches per model and window size, and refuses — before any
// job reaches the pool — a call over the budget or over the execution-size limit. A recording pool stands in for the
// workers, so the test can see what would have reached them.

import assert from "node:assert/strict";
import { ModelRegistry } from "../../lib/models.ts";
import { Executor } from "../../lib/exec/mod.ts";
import { BudgetExceededError, ExecutionTooLargeError } from "../../lib/errors.ts";
import { RecordingPool } from "../_pool.ts";

const registry = await ModelRegistry.load();
const f1 = registry.model("digits-f1");
const f2 = registry.model("digits-f2");
const image = { width: 256, height: 256, data: new Uint8Array(256 * 256 * 4) };
const win = (x: number, y: number, s = 80) => ({ x, y, w: s, h: s });

Deno.test("executor: the price of a set of calls is the counter's FLOPs of the batches it then runs", async () => {
  const pool = new RecordingPool(2);
  const exec = new Executor(pool, image, { maxExecPixels: 2 * 80 * 80, timeoutMs: 1000 });
  const calls = [
    { model: f1, windows: [win(-8, -8), win(56, -8), win(120, -8), win(-8, 56, 112)] },
    { model: f2, windows: [win(184, 184)] },
  ];
  const price = exec.price(calls);
  const out = await exec.run(calls);
  // f1: three 80×80 windows in batches of at most 2, one 112×112 window alone; f2: one window. They reach the pool
  // largest first (the executions list them in the calls' order).
  assert.deepEqual(pool.jobs.map((j) => [j.model, ...j.dims]), [
    ["digits-f2", 1, 1, 80, 80],
    ["digits-f1", 2, 1, 80, 80],
    ["digits-f1", 1, 1, 112, 112],
    ["digits-f1", 1, 1, 80, 80],
  ]);
  const flops = pool.jobs.map((j) => registry.model(j.model).counter.count(j.dims).flops);
  assert.deepEqual(flops, flops.toSorted((a, b) => b - a));
  const recount = pool.jobs.reduce((s, j) => s + registry.model(j.model).counter.count(j.dims).flops, 0);
  assert.equal(price.flops, recount);
  assert.equal(exec.flops, recount);
  assert.deepEqual(exec.executions.map((e) => e.model + e.dims).sort(), pool.jobs.map((j) => j.model + j.dims).sort());
  // Every window gets its own output back, in order, at window size.
  assert.deepEqual(out[0].map((o) => o.window), calls[0].windows);
  assert.ok(out[0].every((o) => o.c === 2 && o.data.length === 2 * o.window.w * o.window.h));
  // Jobs carry windows of one shared image, not copies of the pixels.
  const first = pool.jobs[0].input;
  assert.ok(!(first instanceof Float32Array) && first.kind === "windows");
  assert.ok(first.image.data.buffer instanceof SharedArrayBuffer);
});

Deno.test("executor: a call over the budget is refused before anything reaches the pool", async () => {
  const pool = new RecordingPool();
  const one = f2.counter.count([1, 1, 80, 80]).flops;
  const exec = new Executor(pool, image, { budgetFlops: 2 * one, maxExecPixels: 1 << 22, timeoutMs: 1000 });
  await exec.run([{ model: f2, windows: [win(0, 0)] }]);
  assert.equal(exec.flops, one);
  assert.equal(exec.left, one);
  // Two more windows cost more than what is left: refused whole, nothing sent, nothing spent.
  await assert.rejects(exec.run([{ model: f2, windows: [win(64, 0), win(128, 0)] }]), (err: unknown) => {
    assert.ok(err instanceof BudgetExceededError);
    assert.equal(err.status, 422);
    return true;
  });
  assert.equal(pool.jobs.length, 1);
  assert.equal(exec.flops, one);
  assert.equal(exec.executions.length, 1);
  // What still fits runs.
  assert.ok(exec.fits(one));
  await exec.run([{ model: f2, windows: [win(64, 0)] }]);
  assert.equal(exec.flops, 2 * one);
  assert.ok(!exec.fits(1));
});

Deno.test("executor: one window over the execution-size limit is refused with the limit in the problem", async () => {
  const pool = new RecordingPool();
  const exec = new Executor(pool, image, { maxExecPixels: 100 * 100, timeoutMs: 1000 });
  const call = { model: f1, windows: [win(0, 0), win(0, 0, 128)] };
  assert.throws(() => exec.price([call]), ExecutionTooLargeError);
  await assert.rejects(exec.run([call]), (err: unknown) => {
    assert.ok(err instanceof ExecutionTooLargeError);
    assert.equal(err.extra.max_exec_pixels, 100 * 100);
    return true;
  });
  assert.equal(pool.jobs.length, 0);
  // A scaled window is limited by its input size, not its image size.
  await exec.run([{ model: f1, windows: [win(0, 0, 128)], scale: 0.5 }]);
  assert.deepEqual(pool.jobs[0].dims, [1, 1, 64, 64]);
});

Deno.test("executor: releaseOutputs frees every output the workers sent back, once the planner is done", async () => {
  const pool = new RecordingPool(2);
  const exec = new Executor(pool, image, { maxExecPixels: 2 * 80 * 80, timeoutMs: 1000 });
  const [outs] = await exec.run([{ model: f1, windows: [win(-8, -8), win(56, -8), win(120, -8)] }]);
  assert.ok(outs.every((o) => o.data.length === 2 * 80 * 80));
  const buffers = new Set(outs.map((o) => o.data.buffer as ArrayBuffer));
  assert.equal(buffers.size, 2, "two batches: two buffers, the first shared by its two windows");
  exec.releaseOutputs();
  assert.ok([...buffers].every((b) => b.detached && b.byteLength === 0));
  assert.ok(outs.every((o) => o.data.length === 0));
  // Outputs of later runs are the next release's; a second release of the same is harmless.
  const [later] = await exec.run([{ model: f2, windows: [win(0, 0)] }]);
  exec.releaseOutputs();
  exec.releaseOutputs();
  assert.equal(later[0].data.length, 0);
});
