import assert from "node:assert/strict";
import { WorkerLayout } from "../../lib/exec/layout.ts";

const idle = { ready: true, job: null };
const busy = { ready: true, job: {} };
const down = { ready: false, job: null };
// Jobs as the pool passes them: the input's shape and the job's FLOPs.
const page = { dims: [1, 3, 640, 640], flops: 4.8e9 };
const small = { dims: [1, 2, 256, 256], flops: 1.8e7 }; // the digits routing policy on a scene
const scene = { dims: [1, 1, 256, 256], flops: 4.6e9 }; // digits f2 on a whole scene
const large = { dims: [1, 3, 1088, 1920], flops: 2.4e10 };

Deno.test("layout: threads, spinning and input buffers per worker", () => {
  const plain = new WorkerLayout({ size: 1, threads: 2 });
  assert.deepEqual(plain.workers.map((w) => [w.threads, w.spin, w.lone]), [[2, true, false]]);
  const lone = new WorkerLayout({ size: 2, threads: 1, loneThreads: 2 });
  assert.deepEqual(lone.workers.map((w) => [w.threads, w.spin, w.lone]), [[1, false, false], [1, false, false], [
    2,
    true,
    true,
  ]]);
  // The lone worker keeps the whole budget; the others what a job up to loneAbovePixels needs.
  assert.ok(lone.workers[2].inputBufferBytes > lone.workers[0].inputBufferBytes);
  assert.equal(lone.workers[0].inputBufferBytes, 3 * 4 * 2 ** 19);
});

Deno.test("layout: the lone worker takes a page alone and every large job; the others the rest", () => {
  const l = new WorkerLayout({ size: 2, threads: 1, loneThreads: 2 });
  assert.equal(l.pick(page, 1, [idle, idle, idle]), 2, "alone");
  assert.equal(l.pick(page, 2, [idle, idle, idle]), 0, "not alone: another job waits");
  assert.equal(l.pick(page, 1, [busy, idle, idle]), 1, "not alone: another job runs");
  assert.equal(l.pick(small, 1, [idle, idle, idle]), 0, "small jobs never take it");
  assert.equal(l.pick({ ...page, flops: 0 }, 1, [idle, idle, idle]), 0, "nor jobs of unknown cost");
  assert.equal(l.pick(scene, 1, [idle, idle, idle]), 2, "a costly job on a small input does");
  assert.equal(l.pick(large, 3, [idle, idle, idle]), 2, "large jobs take it whatever the load");
  assert.equal(l.pick(large, 1, [idle, idle, busy]), -1, "and wait for it");
  assert.equal(l.pick(page, 2, [busy, busy, idle]), -1, "the others busy: wait, not beside them on the lone one");
  assert.equal(l.pick(page, 2, [down, down, idle]), 2, "no other worker up: the lone one serves");
  assert.equal(new WorkerLayout({ size: 2, threads: 1 }).pick(large, 1, [busy, idle]), 1, "no lone worker");
});
