import assert from "node:assert/strict";
import { ModelRegistry } from "../../lib/models.ts";
import { WorkerPool } from "../../lib/exec/mod.ts";
import type { Backend } from "../../workers/protocol.ts";

// The WebGPU path inside a real worker. Deno resolves the bare `onnxruntime-web` to the package's Node build, which has
// no WebGPU backend, and the WebGPU build fails to import in a worker unless its `location` is hidden
// (workers/runtime_web.ts): for a while every `BACKEND=webgpu` session silently ran on WASM. Any adapter will do here,
// the software one of a GPU-less machine too (the server never picks that one: lib/exec/backend.ts); where Deno finds
// none at all, there is nothing to run WebGPU on and the test is skipped.
// deno-lint-ignore no-explicit-any
const adapter = await (navigator as any).gpu?.requestAdapter().catch(() => null);
const registry = await ModelRegistry.load();
const f0 = registry.model("digits-f0");
const models = [{ id: f0.spec.id, bytes: f0.bytes, input: f0.spec.input }];

async function logits(backend: Backend): Promise<{ actual: Backend; data: Float32Array }> {
  const pool = new WorkerPool({ size: 1, queueLimit: 4, backend, threads: 1, models });
  await pool.start();
  try {
    const x = Float32Array.from({ length: 64 * 64 }, (_, i) => ((i * 7919) % 256) / 255);
    const r = await pool.run(f0.spec.id, [1, 1, 64, 64], x, 120_000);
    return { actual: pool.backend, data: r.outputs.logits.data };
  } finally {
    pool.close();
  }
}

Deno.test({
  name: "webgpu: a WebGPU worker runs its sessions on WebGPU, with WASM's outputs",
  ignore: !adapter,
  fn: async () => {
    const gpu = await logits("webgpu");
    assert.equal(gpu.actual, "webgpu", "the worker fell back to WASM");
    const cpu = await logits("wasm-simd");
    assert.equal(gpu.data.length, cpu.data.length);
    let worst = 0;
    for (let i = 0; i < cpu.data.length; i++) worst = Math.max(worst, Math.abs(gpu.data[i] - cpu.data[i]));
    assert.ok(worst < 1e-3, `max |webgpu - wasm| = ${worst}`);
  },
});
