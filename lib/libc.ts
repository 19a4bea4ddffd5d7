// glibc's allocator, tuned through FFI (granted with the native backend's --allow-ffi; elsewhere, or off glibc, every
// call here is a no-op). No Deno or npm API exposes mallopt or malloc_trim, hence the two symbols by hand.
//
// Why: on this class of machine (a virtual machine) touching freshly mapped memory costs about 20 µs per 4 KiB page, and
// glibc maps every allocation above its dynamic mmap threshold afresh, so each request's tensors (a 640² input is 4.9
// MB) paid page faults every time: `deno task bench` measured 25 ms of a 640² request outside the model that way. With
// a fixed 32 MiB threshold (glibc's maximum) those buffers come from the heap and are reused. Fixing the mmap threshold
// also freezes the trim threshold at its 128 KiB default, so a heap gave its freed top back at once and the next
// request faulted it in again: the trim threshold is fixed at 1 GiB too, and what the heaps keep is handed back by
// `trimMalloc` when a worker goes idle (workers/runtime_node.ts).

type Libc = {
  mallopt(param: number, value: number): number;
  malloc_trim(pad: bigint): number;
  gettid(): number;
  setpriority(which: number, who: number, prio: number): number;
};

let libc: Libc | null | undefined;

function open(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    if (Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      return libc = null;
    }
    const lib = Deno.dlopen("libc.so.6", {
      mallopt: { parameters: ["i32", "i32"], result: "i32" },
      malloc_trim: { parameters: ["usize"], result: "i32" },
      gettid: { parameters: [], result: "i32" },
      setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
    });
    libc = lib.symbols;
  } catch {
    libc = null;
  }
  return libc;
}

const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
const TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024;
/** glibc's largest mmap threshold on 64-bit systems (HEAP_MAX_SIZE / 2). */
const MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024;

/**
 * Allocations under 32 MiB come from (reused) heap memory instead of fresh mappings, process-wide, from now on. Returns
 * whether it was applied.
 *
 * @example
 * ```ts
 * import { tuneMalloc } from "./libc.ts";
 * tuneMalloc(); // false without --allow-ffi
 * ```
 */
export function tuneMalloc(): boolean {
  const c = open();
  return c?.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) === 1 &&
    c.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) === 1;
}

/**
 * Hands free heap pages of every allocator arena back to the system (malloc_trim(0)).
 *
 * @example
 * ```ts
 * import { trimMalloc } from "./libc.ts";
 * trimMalloc();
 * ```
 */
export function trimMalloc(): void {
  open()?.malloc_trim(0n);
}

/**
 * Gives memory back once the server goes quiet: `idleMs` after the last `touch()` (one per request or job), `drop()`
 * (a caller's own caches, such as a worker's reused buffers), a full garbage collection when the runtime exposes one
 * (`--v8-flags=--expose-gc`, which `deno task start` passes; the flag reaches workers too), then {@link trimMalloc}.
 * Without it, the buffers of large uploads stay in the main isolate until V8 next collects, which an idle server may
 * not do for a long time, and glibc keeps the freed pages (the trim threshold is 1 GiB, above): 100 raw 4 MiB uploads
 * left the server 215 → 278 MB 70 s later without this, 215 → 226 MB 20 s later with it. The collection holds the
 * calling thread for a few ms, so it runs only when nothing has arrived for `idleMs`, at most once per quiet spell.
 *
 * @example
 * ```ts
 * import { idleRelease } from "./libc.ts";
 * const release = idleRelease(5000);
 * release.touch(); // on every request
 * release.close();
 * ```
 */
export function idleRelease(idleMs: number, drop?: () => void): { touch(): void; close(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gc = (globalThis as { gc?: () => void }).gc;
  const run = () => {
    timer = undefined;
    drop?.();
    gc?.();
    trimMalloc();
  };
  return {
    touch() {
      if (timer !== undefined) clearTimeout(timer);
      const t = setTimeout(run, idleMs);
      Deno.unrefTimer(t);
      timer = t;
    },
    close() {
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

const PRIO_PROCESS = 0;

/**
 * Lowers the scheduling priority of the calling thread only (Linux: a thread id is a valid PRIO_PROCESS target), and
 * so of every thread it starts from now on (onnxruntime's intra-op pool, libvips' workers inherit it). Workers call it
 * first thing: with both cores busy with inference, the main thread (HTTP, /healthz, stitching) otherwise waits its
 * turn behind half a dozen busy threads. Returns whether it was applied.
 *
 * @example
 * ```ts
 * import { niceThisThread } from "./libc.ts";
 * niceThisThread(10); // false without --allow-ffi
 * ```
 */
export function niceThisThread(nice: number): boolean {
  const c = open();
  return c ? c.setpriority(PRIO_PROCESS, c.gettid(), nice) === 0 : false;
}
