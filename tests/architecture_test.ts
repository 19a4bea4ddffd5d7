// docs/ARCHITECTURE.md's "may import" rules, checked against the real import lines of every source file: a folder
// that reaches where it should not fails here, and the diagram stays true to the code.

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** Where a file (by path prefix, longest first) may import from, by path prefix. */
const RULES: [string, string[]][] = [
  ["lib/onnx/", ["lib/onnx/"]],
  ["lib/image/decode_pool.ts", ["lib/image/", "lib/errors.ts", "workers/decode.ts"]],
  ["lib/image/", ["lib/image/", "lib/errors.ts"]],
  [
    "lib/exec/",
    [
      "lib/exec/",
      "lib/errors.ts",
      "lib/image/",
      "lib/models.ts",
      "lib/units.ts",
      "workers/protocol.ts",
      "workers/infer.ts",
    ],
  ],
  ["lib/plan/", ["lib/plan/", "lib/exec/", "lib/image/", "lib/models.ts", "lib/errors.ts", "lib/units.ts", "models/"]],
  ["lib/", ["lib/", "workers/protocol.ts", "models/"]],
  ["routes/", ["routes/", "lib/"]],
  ["workers/", ["workers/", "lib/image/", "lib/errors.ts", "lib/libc.ts", "lib/onnx/page.ts"]],
  ["main.ts", ["lib/", "routes/", "main.ts"]],
  // Benchmarks start real servers in-process through the entry point.
  // ... and bench/eval/squeeze.ts feeds page graphs as the workers do, on its own sessions; bench/eval/layer_time.ts
  // profiles a session opened with the workers' native options.
  [
    "bench/",
    ["bench/", "lib/", "dev/", "main.ts", "workers/levels.ts", "workers/protocol.ts", "workers/runtime_node.ts"],
  ],
  ["bin/", ["bin/", "lib/"]],
  ["dev/", ["dev/", "lib/"]],
];

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}${e.name}`;
    if (e.isDirectory) yield* sources(`${path}/`);
    else if (e.name.endsWith(".ts") || e.name.endsWith(".mjs")) yield path;
  }
}

/** Relative import specifiers of a file (static imports, re-exports, dynamic imports and worker URLs). */
function relativeImports(text: string): string[] {
  const out: string[] = [];
  const patterns = [
    /(?:import|export)\s[^;]*?from\s+"(\.{1,2}\/[^"]+)"/g,
    /import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g,
    /new URL\(\s*"(\.{1,2}\/[^"]+\.ts)"\s*,\s*import\.meta\.url\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(m[1]);
  return out;
}

Deno.test("every import follows docs/ARCHITECTURE.md's rules", async () => {
  const files = ["main.ts"];
  for (const dir of ["lib/", "routes/", "workers/", "bench/", "bin/", "dev/"]) {
    for await (const f of sources(dir)) if (!f.startsWith("bench/peer/")) files.push(f);
  }
  const broken: string[] = [];
  for (const file of files) {
    const rule = RULES.find(([prefix]) => file.startsWith(prefix));
    assert.ok(rule, `no rule for ${file}`);
    const text = await Deno.readTextFile(new URL(file, ROOT));
    for (const spec of relativeImports(text)) {
      const target = new URL(spec, new URL(file, ROOT)).pathname.slice(ROOT.pathname.length);
      if (!rule[1].some((p) => target.startsWith(p))) broken.push(`${file} → ${target}`);
    }
  }
  assert.deepEqual(broken, [], `imports outside the rules:\n${broken.join("\n")}`);
});

Deno.test("the architecture page names every module folder and entry point", async () => {
  const doc = await Deno.readTextFile(new URL("docs/ARCHITECTURE.md", ROOT));
  for (
    const name of ["main.ts", "routes/", "lib/plan/", "lib/exec/", "workers/", "lib/image/", "lib/onnx/", "bench/"]
  ) {
    assert.ok(doc.includes(name), `docs/ARCHITECTURE.md does not mention ${name}`);
  }
  assert.ok(doc.includes("```mermaid"));
});
