// Which runtime the inference workers get: the one decision made before a WorkerPool starts (main.ts), kept apart
// from the pool, which runs whatever backend it is given.

import type { Backend } from "../../workers/protocol.ts";

/** What `BACKEND` may ask for. */
export type BackendPreference = "auto" | "native" | "wasm" | "webgpu";

/**
 * Picks the backend. `auto`: onnxruntime-node when it loads (it needs `--allow-ffi`), else WebGPU on a real GPU
 * adapter — never the software fallback Deno exposes on GPU-less machines — else WASM-SIMD. A forced backend that
 * is not available falls back the same way, with a warning.
 *
 * @example
 * ```ts ignore
 * const backend = await detectBackend("auto"); // "native" under `deno task start`, "wasm-simd" without --allow-ffi
 * ```
 */
export async function detectBackend(preference: BackendPreference): Promise<Backend> {
  if (preference === "wasm") return "wasm-simd";
  if (preference === "auto" || preference === "native") {
    const why = await nativeUnavailable();
    if (!why) return "native";
    if (preference === "native") console.warn(`BACKEND=native but onnxruntime-node does not load (${why})`);
  }
  let real = false;
  try {
    // deno-lint-ignore no-explicit-any
    const adapter: any = await (navigator as any).gpu?.requestAdapter();
    const fallback = adapter?.info?.isFallbackAdapter ?? adapter?.isFallbackAdapter ?? true;
    real = !!adapter && fallback === false;
  } catch {
    real = false;
  }
  if (preference === "webgpu" && !real) {
    console.warn("BACKEND=webgpu but no real GPU adapter was found; using wasm-simd");
  }
  return real ? "webgpu" : "wasm-simd";
}

/** Why onnxruntime-node cannot run here (no FFI permission, no binary for this platform), or null when it can. */
async function nativeUnavailable(): Promise<string | null> {
  if ((await Deno.permissions.query({ name: "ffi" })).state !== "granted") return "no --allow-ffi";
  try {
    // Loads the N-API addon once in this process; the workers then share the already-loaded library.
    await import("onnxruntime-node");
    return null;
  } catch (err) {
    return (err as Error).message.split("\n")[0];
  }
}
