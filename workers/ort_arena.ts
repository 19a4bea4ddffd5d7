// One activation arena for all of a native worker's sessions, through onnxruntime's shared (env) allocators, reached by
// FFI: onnxruntime-node exposes neither `CreateAndRegisterAllocator` nor any other way to share or shrink an arena.
//
// Why: each onnxruntime session keeps a CPU arena of its own at the peak of the largest input it ran (about 340 MB for
// PP-OCRv4 at 1920×1088), and a worker runs many sessions: the whole model and the page graphs of 1–3 windows with and
// without their blank part (workers/infer.ts). A process registering an arena here, each session taking it
// (`session.use_env_allocators`), holds one arena per registration instead: four PP-OCRv4 sessions each run at
// 1920×1088 in one thread took 1,486 MB of RSS with arenas of their own and 549 MB with one shared arena, at the same
// speed (`.scratch/arena_t3.ts`, a scratch script). Registering again replaces the env's arena: the sessions made after
// take the new one, and the old one is freed with the last session made on it (RSS back to where it was before the
// first, `.scratch/arena_t4.ts`).
//
// Where this cannot be done (another OS, a library without the soname below), sessions keep arenas of their own.

/**
 * Indexes into onnxruntime's `OrtApi` table of function pointers (onnxruntime_c_api.h). The table only grows at its
 * end: onnxruntime checks its older entries' places when it builds (static_asserts in onnxruntime_c_api.cc:
 * ReleaseCustomOpDomain at 101, SetGlobalSpinControl at 149, ReleaseArenaCfg at 157; the entries below counted from
 * those), and GetApi(version) returns that table for any version the library has.
 */
const ORT = {
  GetErrorMessage: 2,
  CreateEnv: 3,
  CreateCpuMemoryInfo: 69,
  ReleaseStatus: 93,
  CreateAndRegisterAllocator: 144,
  UnregisterAllocator: 177,
} as const;
/** The API version that added UnregisterAllocator, the newest entry used. */
const API_VERSION = 9;
/** OrtArenaAllocator, OrtMemTypeDefault: the memory info of the CPU provider's default allocator. */
const ARENA_ALLOCATOR = 1, MEM_TYPE_DEFAULT = 0;
/** ORT_LOGGING_LEVEL_ERROR (the env exists already: onnxruntime-node made it; this only takes a reference). */
const LOG_ERROR = 3;

type Shared = { register(): void };
let shared: Shared | null | undefined;

const fallback = (err: unknown) =>
  console.warn(`native sessions keep arenas of their own: ${err instanceof Error ? err.message : err}`);

/** The onnxruntime library onnxruntime-node loaded, its env and the CPU memory info; null where not reachable. */
function open(): Shared | null {
  if (shared !== undefined) return shared;
  try {
    if (Deno.build.os !== "linux") return shared = null;
    // Already loaded with the native addon (its DT_NEEDED): dlopen by soname hands back that copy, whose env and
    // allocators the sessions use.
    const lib = Deno.dlopen("libonnxruntime.so.1", { OrtGetApiBase: { parameters: [], result: "pointer" } });
    const base = new Deno.UnsafePointerView(lib.symbols.OrtGetApiBase()!);
    const getApi = new Deno.UnsafeFnPointer(base.getPointer(0)!, { parameters: ["u32"], result: "pointer" } as const);
    const table = getApi.call(API_VERSION);
    if (!table) return shared = null;
    const api = new Deno.UnsafePointerView(table);
    const fn = <const D extends Deno.ForeignFunction>(at: number, def: D) =>
      new Deno.UnsafeFnPointer(api.getPointer(8 * at)!, def);
    const message = fn(ORT.GetErrorMessage, { parameters: ["pointer"], result: "pointer" });
    const release = fn(ORT.ReleaseStatus, { parameters: ["pointer"], result: "void" });
    // A status is null on success; else its message (the status is released).
    const failed = (status: Deno.PointerValue): string | null => {
      if (!status) return null;
      const text = new Deno.UnsafePointerView(message.call(status)!).getCString();
      release.call(status);
      return text;
    };
    const out = new BigUint64Array(1);
    const logId = new TextEncoder().encode("thriftseg\0");
    const envError = failed(
      fn(ORT.CreateEnv, { parameters: ["i32", "buffer", "buffer"], result: "pointer" }).call(LOG_ERROR, logId, out),
    );
    if (envError) throw new Error(envError);
    const env = Deno.UnsafePointer.create(out[0]);
    const infoError = failed(
      fn(ORT.CreateCpuMemoryInfo, { parameters: ["i32", "i32", "buffer"], result: "pointer" })
        .call(ARENA_ALLOCATOR, MEM_TYPE_DEFAULT, out),
    );
    if (infoError) throw new Error(infoError);
    const info = Deno.UnsafePointer.create(out[0]);
    const unregister = fn(ORT.UnregisterAllocator, { parameters: ["pointer", "pointer"], result: "pointer" });
    const register = fn(ORT.CreateAndRegisterAllocator, {
      parameters: ["pointer", "pointer", "pointer"],
      result: "pointer",
    });
    shared = {
      register() {
        // Arena options null: onnxruntime's defaults. onnxruntime 1.30 replaces an arena registered before, under the
        // env's lock (environment.cc), so no session is made between the two; a version that refuses instead has the
        // old one unregistered first.
        if (!failed(register.call(env, info, null))) return;
        failed(unregister.call(env, info));
        const error = failed(register.call(env, info, null));
        if (error) throw new Error(error);
      },
    };
  } catch (err) {
    fallback(err);
    shared = null;
  }
  return shared;
}

/**
 * Registers a new, empty shared CPU arena in this process: the sessions made from now on (with
 * `session.use_env_allocators`) take it. Returns false where sessions cannot share one (they keep arenas of their own).
 */
export function freshArena(): boolean {
  const s = open();
  if (!s) return false;
  try {
    s.register();
    return true;
  } catch (err) {
    fallback(err);
    return false;
  }
}
