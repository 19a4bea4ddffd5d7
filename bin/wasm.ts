// wasm: compiles the project's WebAssembly text (lib/plan/ink_scan.wat) to the binary committed beside it, which the
// code imports (Deno loads .wasm modules natively; nothing compiles at run time).
//
//   deno task wasm    writes lib/plan/ink_scan.wasm (tests/plan/ink_scan_test.ts fails where it is stale)
//
// wabt (npm) is the WebAssembly Binary Toolkit's own wat2wasm compiled to JS, pinned in deno.json: the same text
// gives the same bytes.

import wabtInit from "wabt";

/** The project's WebAssembly modules: text, and the binary compiled from it, relative to the repository root. */
export const WASM_MODULES = [{ text: "lib/plan/ink_scan.wat", binary: "lib/plan/ink_scan.wasm" }];

/** `text` (WebAssembly text, SIMD allowed) compiled to a validated binary; `name` labels its errors. */
export async function compileWat(name: string, text: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const module = wabt.parseWat(name, text, { simd: true });
  try {
    module.validate();
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url);
  for (const { text, binary } of WASM_MODULES) {
    const bytes = await compileWat(text, await Deno.readTextFile(new URL(text, root)));
    await Deno.writeFile(new URL(binary, root), bytes);
    console.log(`${binary}: ${bytes.length} bytes`);
  }
}
