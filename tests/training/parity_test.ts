// Parity of the trained models as committed: the ONNX files in models/, run in
// onnxruntime-web (the serving runtime), give PyTorch's outputs on the fixed
// inputs that training/export.py stored in tests/training/fixtures/, and the
// manifest's sha256 values match the files.

import * as ort from "onnxruntime-web";
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const TOLERANCE = 1e-4;

interface Stored {
  shape: number[];
  data: string;
}
interface Fixture {
  model: string;
  input: Stored;
  outputs: Record<string, Stored>;
}
interface Entry {
  id: string;
  task: string;
  file?: string;
  sha256: string;
}

function decode(s: Stored): Float32Array {
  const bin = atob(s.data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

const manifest = JSON.parse(await Deno.readTextFile(new URL("models/manifest.json", ROOT))) as {
  tasks: Record<string, unknown>;
  models: Entry[];
};
const fixtureDir = new URL("tests/training/fixtures/", ROOT);
const fixtures: Fixture[] = [];
for await (const f of Deno.readDir(fixtureDir)) {
  if (f.name.endsWith(".json")) fixtures.push(JSON.parse(await Deno.readTextFile(new URL(f.name, fixtureDir))));
}
fixtures.sort((a, b) => a.model.localeCompare(b.model));

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

Deno.test("manifest: every committed model file matches its sha256", async () => {
  const files = manifest.models.filter((m) => m.file);
  assert(files.length >= 8, `expected both trained zoos in the manifest, found ${files.length} files`);
  for (const m of files) {
    const bytes = await Deno.readFile(new URL(`models/${m.file}`, ROOT));
    assert.deepEqual(await sha256Hex(bytes), m.sha256, `${m.id}: sha256 of models/${m.file}`);
  }
});

Deno.test("manifest: the export kept the text task and its pretrained model", () => {
  assert("text" in manifest.tasks);
  assert(manifest.models.some((m) => m.id === "text-ppocrv4-det"));
});

Deno.test("parity: a fixture exists for every trained model", () => {
  const trained = manifest.models.filter((m) => m.file).map((m) => m.id).sort();
  assert.deepEqual(fixtures.map((f) => f.model), trained);
});

for (const fx of fixtures) {
  Deno.test(`parity: ${fx.model} in onnxruntime-web matches PyTorch within ${TOLERANCE}`, async () => {
    const entry = manifest.models.find((m) => m.id === fx.model);
    assert(entry?.file, `${fx.model} is not in the manifest`);
    const session = await ort.InferenceSession.create(await Deno.readFile(new URL(`models/${entry.file}`, ROOT)), {
      executionProviders: ["wasm"],
    });
    try {
      const input = new ort.Tensor("float32", decode(fx.input), fx.input.shape);
      const out = await session.run({ [session.inputNames[0]]: input });
      for (const [name, want] of Object.entries(fx.outputs)) {
        const got = out[name];
        assert(got, `${fx.model}: no output named ${name}`);
        assert.deepEqual([...got.dims], want.shape, `${fx.model}/${name}: shape`);
        const a = got.data as Float32Array, b = decode(want);
        let worst = 0;
        for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
        assert(worst <= TOLERANCE, `${fx.model}/${name}: max |onnx − torch| = ${worst}`);
      }
    } finally {
      await session.release();
    }
  });
}
