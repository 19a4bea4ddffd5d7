// onnxruntime-node (native CPU execution provider) behind the worker's Runtime interface: the self-hosting path.
// Deno loads its N-API addon inside the worker; that needs `--allow-ffi`.

import * as ort from "onnxruntime-node";
import { ARENA_LIMITS, type Feed, type Tensor } from "./protocol.ts";
import { feedTensor, type Runtime, type RuntimeSession } from "./runtime.ts";
import { trimMalloc } from "../lib/libc.ts";
import { freshArena } from "./ort_arena.ts";

/**
 * The native runtime. Each session gets its own intra-op thread pool of `threads` threads; one inter-op thread (the
 * text and zoo graphs are chains, so parallel branches buy nothing; the page graphs, lib/onnx/page.ts, branch per
 * window and tail slot, but ran slower in parallel mode: the text default's model time on four test pages in the
 * server's layout, 72–142 ms sequential, 96–203 ms with 2 inter-op threads of 1 intra-op thread, 146–264 ms with 2 of
 * 2; medians of 6 runs, a scratch patch). Pool threads spin between operators only with `spin` (a lone worker): a
 * thread that busy-waits steals the core another worker's session is about to use. Memory patterns are off: they plan
 * one block per input shape, and with the many shapes adaptive plans produce they made the arena grow faster and the
 * second run of every new shape slow, for no gain on a warm shape (measured: 640² PP-OCRv4 within noise).
 *
 * @example
 * ```ts ignore
 * const session = await nodeRuntime().load(modelBytes, 2);
 * ```
 */
export function nodeRuntime(limits: typeof ARENA_LIMITS = ARENA_LIMITS, spin = false): Runtime {
  const keeper = new ArenaKeeper(limits);
  return {
    backend: "native",
    load: (bytes: Uint8Array, threads: number, opts?: { spin?: boolean }) =>
      RecreatableSession.open(bytes, threads, keeper, spin && (opts?.spin ?? true)),
    settle: () => keeper.settle(),
  };
}

/**
 * The session options every native session starts from (the served ones, bench/eval/layer_time.ts's profiled one):
 * `threads` intra-op threads, one inter-op thread, memory patterns off (see {@link nodeRuntime}).
 */
export const nativeSessionOptions = (threads: number): ort.InferenceSession.SessionOptions => ({
  executionProviders: ["cpu"],
  graphOptimizationLevel: "all",
  executionMode: "sequential",
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  enableMemPattern: false,
});

const create = (bytes: Uint8Array, threads: number, spin: boolean, shared: boolean) =>
  ort.InferenceSession.create(bytes, {
    ...nativeSessionOptions(threads),
    // A spinning pool stops spinning when its run ends (force_spinning_stop): spinning between one run's operators is
    // what makes a lone request fast, and a pool still spinning after its run takes the cores from the next session's
    // (measured when a level-by-level job ran one session per level, back to back). Measured over HTTP, native, 4 text pages, c=1, interleaved
    // (a scratch script): fixed −1 to −5 %, the default plan −1 to −8 %.
    extra: {
      // With `shared`, the session takes the arena registered last (./ort_arena.ts) instead of one of its own.
      session: {
        ...(spin ? { "intra_op.allow_spinning": "1", "force_spinning_stop": "1" } : { "intra_op.allow_spinning": "0" }),
        ...(shared ? { use_env_allocators: "1" } : {}),
      },
    },
  });

const rssMb = () => Deno.memoryUsage().rss / 2 ** 20;

/**
 * Watches a worker's runs and gives their arena memory back (see {@link ARENA_LIMITS}). The worker's sessions share one
 * arena (`shared`, ./ort_arena.ts): giving it back registers a new one and recreates every session of the worker, for
 * a session not recreated would keep the old arena, and all it grew to, alive. Where sessions cannot share one, each
 * keeps its own, and the sessions used since the last trim are recreated.
 */
class ArenaKeeper {
  #used = new Set<RecreatableSession>();
  #sessions = new Set<RecreatableSession>();
  #idle?: ReturnType<typeof setTimeout>;
  #baselineMb = 0;
  /** The process RSS after this worker last gave its arena back, MiB (none yet: -Infinity). */
  #trimmedMb = -Infinity;
  #trimming: Promise<void> | null = null;
  readonly shared: boolean;

  constructor(readonly limits: typeof ARENA_LIMITS) {
    this.shared = freshArena();
  }

  /** Notes a session made (`live`) or released. */
  track(session: RecreatableSession, live: boolean): void {
    if (live) {
      this.#sessions.add(session);
    } else {
      this.#sessions.delete(session);
      this.#used.delete(session);
    }
  }

  /** Called after every run: notes the session as used and re-arms the idle timer. */
  ran(session: RecreatableSession): void {
    this.#used.add(session);
    clearTimeout(this.#idle);
    this.#baselineMb ||= rssMb();
    this.#idle = setTimeout(() => {
      // A shared arena may hold other workers' growth too (their sessions made while it was the one registered): the
      // worker gives it back whenever it ran since, or the first worker's trim would keep the others below the ratio.
      if (this.shared || rssMb() > this.#baselineMb * this.limits.idleAboveRatio) this.trim();
      else this.#used.clear();
    }, this.limits.idleMs);
    // An idle timer must not keep a worker (or a test) alive on its own.
    Deno.unrefTimer(this.#idle);
  }

  /**
   * Called after every job: past the hard limit, and grown by `regrowMb` since this worker last gave its arena back,
   * the arena is given back now. Per job, not per run: a level-by-level job runs several sessions in turn, and
   * recreating them between its runs would make each of its next runs grow its arena again.
   */
  settle(): void {
    const rss = rssMb();
    if (rss > this.limits.hardMb && rss > this.#trimmedMb + this.limits.regrowMb) {
      clearTimeout(this.#idle);
      this.trim();
    }
  }

  /** Recreates the sessions (above), then hands freed heap pages back to the system. */
  trim(): Promise<void> {
    this.#trimming ??= (async () => {
      const sessions = [...(this.shared ? this.#sessions : this.#used)];
      this.#used.clear();
      // Where it fails, the sessions recreated take the arena registered last, or arenas of their own.
      if (this.shared) freshArena();
      for (const s of sessions) await s.recreate();
      // Released sessions free their arenas, but glibc keeps freed heap pages mapped: give them back too (measured:
      // −380 MB after the soak's extreme-aspect inputs).
      trimMalloc();
      this.#trimmedMb = rssMb();
    })().finally(() => this.#trimming = null);
    return this.#trimming;
  }

  /** Runs wait for a trim under way. */
  get busy(): Promise<void> | null {
    return this.#trimming;
  }

  /** Cancels the idle timer (the worker is closing). */
  stop(): void {
    clearTimeout(this.#idle);
  }
}

/** A session that can be recreated in place; runs wait for a recreation under way. */
class RecreatableSession implements RuntimeSession {
  #broken: Error | null = null;
  #released = false;

  private constructor(
    private session: ort.InferenceSession,
    readonly bytes: Uint8Array,
    readonly threads: number,
    readonly keeper: ArenaKeeper,
    readonly spin: boolean,
  ) {}

  static async open(
    bytes: Uint8Array,
    threads: number,
    keeper: ArenaKeeper,
    spin: boolean,
  ): Promise<RecreatableSession> {
    const session = new RecreatableSession(
      await create(bytes, threads, spin, keeper.shared),
      bytes,
      threads,
      keeper,
      spin,
    );
    keeper.track(session, true);
    return session;
  }

  run(data: Float32Array, dims: number[]): Promise<Record<string, Tensor>> {
    return this.runFeeds({ [this.session.inputNames[0]]: { data, dims } });
  }

  async runFeeds(feeds: Record<string, Feed>): Promise<Record<string, Tensor>> {
    await this.keeper.busy;
    // A failed recreation fails the run: the pool answers 503 and replaces the worker.
    if (this.#broken) throw this.#broken;
    const session = this.session;
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) inputs[name] = feedTensor(ort.Tensor, t);
    const out = await session.run(inputs);
    const outputs: Record<string, Tensor> = {};
    for (const name of session.outputNames) {
      const t = out[name];
      let data = t.data as Float32Array;
      // The result must be a plain, whole ArrayBuffer the worker can transfer to the main thread without a copy.
      if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) data = data.slice();
      outputs[name] = { dims: [...t.dims], data };
    }
    this.keeper.ran(this);
    return outputs;
  }

  /** Releases the session (and its arena) and creates it again from the same bytes. */
  async recreate(): Promise<void> {
    if (this.#broken || this.#released) return;
    try {
      await this.session.release();
      this.session = await create(this.bytes, this.threads, this.spin, this.keeper.shared);
    } catch (err) {
      this.#broken = err instanceof Error ? err : new Error(String(err));
    }
  }

  async release(): Promise<void> {
    this.keeper.stop();
    await this.keeper.busy;
    this.#released = true;
    this.keeper.track(this, false);
    if (!this.#broken) await this.session.release();
  }
}
