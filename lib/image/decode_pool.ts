// DecodePool: image decoding in Web Workers (workers/decode.ts) with a bounded
// queue (503 when full) and a hard per-image timeout that terminates the stuck
// worker and starts a fresh one. `decodeOffThread` is decodeImage's drop-in
// replacement: same limits, same typed errors, the RGBA shared (SharedArrayBuffer), not copied.

import {
  BadRequestError,
  InvalidImageError,
  PayloadTooLargeError,
  ProblemError,
  UnavailableError,
  UnprocessableError,
  UnsupportedMediaTypeError,
} from "../errors.ts";
import type { DecodeLimits, RgbaImage } from "./types.ts";
import { sharpAvailable } from "./_sharp.ts";
import type { FormFile } from "./form.ts";

/** main → decode worker. */
export interface DecodeRequest {
  id: number;
  bytes: Uint8Array;
  limits: Partial<DecodeLimits>;
  contentType?: string;
  /** JPEG, and PNG over SHARP_PNG_MIN_PIXELS, through sharp (lib/image/_sharp.ts). */
  native: boolean;
  /** Not an image but a multipart/form-data body with this Content-Type: reply with its `image` field. */
  form?: string;
}

/** main → decode worker: an image's pixels the server is done with, for the worker to decode a later upload into. */
export interface DecodeRelease {
  release: SharedArrayBuffer;
}

/** An error as it crosses the worker boundary. */
export type SerialisedError =
  | { problem: true; name: string; status: number; slug: string; message: string; extra: Record<string, unknown> }
  | { problem: false; name: string; message: string };

/**
 * decode worker → main; `grows`: the job may have left memory behind in the worker that only a fresh worker gives
 * back: it grew a WebAssembly decoder, whose memory only grows (lib/image/decode.ts `wasmGrowth`). A parsed multipart
 * form leaves only garbage the worker collects (lib/image/form.ts; Deno's own parser, used before, left blob-store
 * parts that needed this).
 */
export type DecodeReply =
  | { id: number; grows: boolean; ok: true; width: number; height: number; data: Uint8Array }
  | { id: number; grows: boolean; ok: true; file: FormFile | null }
  | { id: number; grows: boolean; ok: false; error: SerialisedError };

/** Options of {@link DecodePool}. */
export interface DecodePoolOptions {
  /** Decode workers (default 1: decoding is rare next to inference). */
  size: number;
  /** Images waiting for a worker before 503 (default 32). */
  queueLimit: number;
  /** Hard limit on one decode, ms; past it the worker is terminated and replaced (default 10 s). */
  timeoutMs: number;
  /**
   * A worker is replaced after this many jobs grew its memory (`grows`: a fresh or larger WebAssembly decode), so
   * that memory is given back (default 200). Native (sharp) decodes and WebAssembly decodes no larger than earlier
   * ones do not count: they grow none, and every replacement takes the main thread 60–100 ms to start a worker (CPU
   * profiles of the soak) and its first decode loads the decoders again: under 3× overload, replacing the worker every
   * 200 small PNGs made the slowest 1% of admitted requests 1.6× slower (p99 127 vs 81 ms without replacements, in a
   * copy of the soak's phase (b) that reads each answer's Server-Timing).
   */
  maxJobsPerWorker: number;
  /**
   * A worker after any such job is also replaced once it has been idle this long, ms (default 60 s, as the inference
   * workers' arena release: ARENA_LIMITS.idleMs): a quiet server gives the grown memory back without waiting for the
   * 200th job, and the restart's main-thread cost lands when nothing is waiting.
   */
  idleRecycleMs: number;
  /**
   * Decode JPEG, and PNG over SHARP_PNG_MIN_PIXELS (lib/image/decode.ts), natively with sharp (default false; main.ts
   * turns it on with the native backend).
   */
  native: boolean;
}

/** Defaults of {@link DecodePoolOptions}. */
export const DEFAULT_DECODE_POOL: DecodePoolOptions = {
  size: 1,
  queueLimit: 32,
  timeoutMs: 10_000,
  maxJobsPerWorker: 200,
  idleRecycleMs: 60_000,
  native: false,
};

interface Job {
  req: DecodeRequest;
  /** The caller gives its bytes away: they are transferred (detached), not copied. */
  transfer: boolean;
  resolve: (reply: Extract<DecodeReply, { ok: true }>) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
  jobs: number;
  /** Jobs that grew its memory (`grows`): fresh or larger WebAssembly decodes. */
  growJobs: number;
  timer?: ReturnType<typeof setTimeout>;
  idle?: ReturnType<typeof setTimeout>;
}

/** Counters for tests and metrics. */
export interface DecodePoolStats {
  size: number;
  busy: number;
  queued: number;
  /** Workers replaced after a timeout or a crash. */
  restarts: number;
  /** Workers replaced after `maxJobsPerWorker` growing decodes, or idle after any (`idleRecycleMs`). */
  recycled: number;
}

/**
 * Pixel buffers larger than this are not kept for reuse (16 MiB: a 4-megapixel RGBA image, a phone's or a 1440p
 * desktop's screenshot). Each one over it is decoded into fresh memory, paid in page faults: at 8 MiB a 1170×2532
 * screenshot cost the decode worker about 2,900 faults and 30–50 ms on every upload (`deno run -A bench/faults.ts`:
 * the workers' faults per request). A worker keeps at most {@link REUSE_MAX_BUFFERS}, and drops them once idle
 * (workers/decode.ts).
 */
export const REUSE_MAX_BYTES = 16 * 2 ** 20;
/** How many released buffers a decode worker keeps. */
export const REUSE_MAX_BUFFERS = 2;

// A fresh worker's first job also loads the decoders' modules; the hard limit is for decoding, not for that.
const STARTUP_GRACE_MS = 2000;

const WORKER_URL = new URL("../../workers/decode.ts", import.meta.url);

function unexpected(): never {
  throw new Error("the decode worker answered a different kind of job");
}

// Rebuilds a worker's error as the class decodeImage would have thrown.
function rebuild(e: SerialisedError): Error {
  if (!e.problem) {
    const err = new Error(e.message);
    err.name = e.name;
    return err;
  }
  switch (e.name) {
    case "InvalidImageError":
      return new InvalidImageError(e.message);
    case "BadRequestError":
      return new BadRequestError(e.message, e.slug, e.extra);
    case "PayloadTooLargeError":
      return new PayloadTooLargeError(e.message, e.extra);
    case "UnsupportedMediaTypeError":
      return new UnsupportedMediaTypeError(e.message, e.extra);
    default:
      return new ProblemError(e.status, e.slug, e.message, e.extra);
  }
}

/**
 * A pool of decode workers.
 *
 * @example
 * ```ts
 * const pool = new DecodePool({ timeoutMs: 5000 });
 * const img = await pool.decode(await Deno.readFile("scene.png"), { maxPixels: 16e6 }, "image/png");
 * pool.close();
 * ```
 */
export class DecodePool {
  readonly options: DecodePoolOptions;
  /** Whether PNG and JPEG go through sharp: set once the inference backend is known ({@link decodeNatively}). */
  native: boolean;
  #slots: Slot[] = [];
  #queue: Job[] = [];
  #nextId = 1;
  #restarts = 0;
  #recycled = 0;
  #closed = false;
  #nextRelease = 0;

  constructor(options: Partial<DecodePoolOptions> = {}) {
    this.options = { ...DEFAULT_DECODE_POOL, ...options };
    this.native = this.options.native;
    for (let i = 0; i < this.options.size; i++) this.#slots.push(this.#spawn());
  }

  /**
   * Decodes through sharp from now on when `wanted` (the inference backend is native) and sharp loads here, else with
   * the WebAssembly decoders; says which.
   */
  async decodeNatively(wanted: boolean): Promise<boolean> {
    return this.native = wanted && await sharpAvailable();
  }

  /**
   * Decodes like `decodeImage`, in a worker. The worker gets a copy of `bytes`, unless `transfer`: then `bytes` is
   * transferred to it and left detached (empty) here, when it spans its whole buffer (else it is copied all the same).
   */
  decode(
    bytes: Uint8Array,
    limits: Partial<DecodeLimits> = {},
    contentType?: string,
    { transfer = false }: { transfer?: boolean } = {},
  ): Promise<RgbaImage> {
    const req = { id: this.#nextId++, bytes, limits, contentType, native: this.native };
    return this.#enqueue(req, transfer, "images are waiting to be decoded").then(
      (reply) => "data" in reply ? { width: reply.width, height: reply.height, data: reply.data } : unexpected(),
    );
  }

  /**
   * The `image` field of a multipart/form-data body (null when the form has no file there), parsed in a worker
   * (lib/image/form.ts): the parser holds the thread it runs on for about 5 ms per MiB (Deno's own, used before, ~14),
   * time the main thread would answer nothing else in. The body is transferred, not copied. A malformed body is a 400
   * `bad-multipart`, as it would be on the main thread.
   */
  parseForm(body: Uint8Array, contentType: string): Promise<FormFile | null> {
    const req = { id: this.#nextId++, bytes: body, limits: {}, native: false, form: contentType };
    return this.#enqueue(req, true, "uploads are waiting to be read").then((reply) =>
      "file" in reply ? reply.file : unexpected()
    );
  }

  // Queues a job: 503 when the pool is closed or `queueLimit` jobs already wait ("too many <waiting>").
  #enqueue(req: DecodeRequest, transfer: boolean, waiting: string): Promise<Extract<DecodeReply, { ok: true }>> {
    if (this.#closed) return Promise.reject(new UnavailableError("the decode pool is closed", 1));
    if (this.#queue.length >= this.options.queueLimit) {
      return Promise.reject(new UnavailableError(`too many ${waiting}`, 1, "decode-queue-full"));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ req, transfer, resolve, reject });
      this.#pump();
    });
  }

  /**
   * Gives back the pixels of an image this pool decoded, once nothing reads them any more (the request is answered):
   * a later decode writes into them instead of a fresh SharedArrayBuffer. Fresh memory is not free: on a virtual
   * machine the first touch of each 4 KiB page costs ~15–20 µs, 6 ms of a 640² upload. Other images are ignored.
   */
  release(image: RgbaImage): void {
    const buffer = image.data.buffer;
    if (this.#closed || !(buffer instanceof SharedArrayBuffer) || buffer.byteLength > REUSE_MAX_BYTES) return;
    const slot = this.#slots[this.#nextRelease++ % this.#slots.length];
    slot?.worker.postMessage({ release: buffer } satisfies DecodeRelease);
  }

  /** Current counters. */
  stats(): DecodePoolStats {
    return {
      size: this.#slots.length,
      busy: this.#slots.filter((s) => s.job).length,
      queued: this.#queue.length,
      restarts: this.#restarts,
      recycled: this.#recycled,
    };
  }

  /** Terminates every worker; queued and running decodes fail with 503. */
  close(): void {
    this.#closed = true;
    for (const slot of this.#slots) {
      clearTimeout(slot.timer);
      clearTimeout(slot.idle);
      slot.worker.terminate();
      slot.job?.reject(new UnavailableError("the decode pool closed", 1));
    }
    for (const job of this.#queue.splice(0)) job.reject(new UnavailableError("the decode pool closed", 1));
    this.#slots = [];
  }

  #spawn(): Slot {
    const slot: Slot = { worker: new Worker(WORKER_URL, { type: "module" }), job: null, jobs: 0, growJobs: 0 };
    slot.worker.onmessage = (event: MessageEvent<DecodeReply>) => this.#settle(slot, event.data);
    slot.worker.onerror = (event) => {
      event.preventDefault();
      this.#replace(slot, new UnavailableError("the decode worker crashed; retry", 1, "decode-crashed"), true);
    };
    return slot;
  }

  #pump(): void {
    for (const slot of this.#slots) {
      if (slot.job || this.#queue.length === 0) continue;
      const job = this.#queue.shift()!;
      clearTimeout(slot.idle);
      slot.job = job;
      slot.jobs++;
      slot.timer = setTimeout(() => {
        this.#replace(
          slot,
          new UnprocessableError(
            `decoding this image took longer than ${this.options.timeoutMs} ms; send a smaller or simpler image`,
            "decode-timeout",
            { decode_timeout_ms: this.options.timeoutMs },
          ),
          true,
        );
      }, this.options.timeoutMs + (slot.jobs === 1 ? STARTUP_GRACE_MS : 0));
      // Unless the caller gives its bytes away, the worker gets a copy, made by slice and transferred. Posting the
      // bytes as they are would copy them through the structured-clone serialiser instead: ~50 ms of the main thread
      // for a 13 MB upload vs ~3 ms (measured in Deno 2.9). The copy itself is fresh memory: a CPU profile of the
      // soak's uploads found it the main thread's second largest cost, hence `transfer` for callers done with them.
      const given = job.req.bytes;
      const whole = given.byteOffset === 0 && given.byteLength === given.buffer.byteLength &&
        given.buffer instanceof ArrayBuffer;
      const bytes = job.transfer && whole ? given : given.slice();
      slot.worker.postMessage({ ...job.req, bytes }, [bytes.buffer as ArrayBuffer]);
    }
  }

  #settle(slot: Slot, reply: DecodeReply): void {
    const job = slot.job;
    if (!job || job.req.id !== reply.id) return;
    clearTimeout(slot.timer);
    slot.job = null;
    if (reply.ok) job.resolve(reply);
    else job.reject(rebuild(reply.error));
    if (reply.grows) slot.growJobs++;
    if (slot.growJobs >= this.options.maxJobsPerWorker) {
      this.#recycled++;
      this.#replace(slot, null, false);
      return;
    }
    this.#pump();
    if (!slot.job && slot.growJobs > 0) {
      slot.idle = setTimeout(() => {
        if (slot.job || !this.#slots.includes(slot)) return;
        this.#recycled++;
        this.#replace(slot, null, false);
      }, this.options.idleRecycleMs);
      Deno.unrefTimer(slot.idle);
    }
  }

  // Terminates a slot's worker (failing its job with `err`) and starts another in its place.
  #replace(slot: Slot, err: Error | null, fault: boolean): void {
    clearTimeout(slot.timer);
    clearTimeout(slot.idle);
    slot.worker.terminate();
    if (slot.job && err) slot.job.reject(err);
    if (fault) this.#restarts++;
    const i = this.#slots.indexOf(slot);
    if (i < 0 || this.#closed) return;
    this.#slots[i] = this.#spawn();
    this.#pump();
  }
}

let shared: DecodePool | null = null;

/**
 * Decodes an upload in the shared decode pool: `decodeImage`'s limits and
 * typed errors (400/413/415), plus 422 `decode-timeout` past the pool's hard
 * limit and 503 when too many images wait. The pool starts on first use; its
 * size and timeout come from `DECODE_WORKERS` and `DECODE_TIMEOUT_MS` when set.
 *
 * @example
 * ```ts
 * import { decodeOffThread } from "./decode_pool.ts";
 * const bytes = await Deno.readFile("docs/examples/text-0.png");
 * const img = await decodeOffThread(bytes, { maxPixels: 16_000_000 }, "image/png");
 * console.log(img.width, img.height);
 * ```
 */
export function decodeOffThread(
  bytes: Uint8Array,
  limits: Partial<DecodeLimits> = {},
  contentType?: string,
): Promise<RgbaImage> {
  shared ??= new DecodePool(fromEnv());
  return shared.decode(bytes, limits, contentType);
}

/** The shared pool, if started (for stats and shutdown). */
export function sharedDecodePool(): DecodePool | null {
  return shared;
}

function fromEnv(): Partial<DecodePoolOptions> {
  const read = (name: string) => {
    try {
      const v = Number(Deno.env.get(name));
      return Number.isInteger(v) && v > 0 ? v : undefined;
    } catch {
      return undefined; // no env permission: defaults
    }
  };
  const out: Partial<DecodePoolOptions> = {};
  const size = read("DECODE_WORKERS");
  const timeoutMs = read("DECODE_TIMEOUT_MS");
  if (size) out.size = size;
  if (timeoutMs) out.timeoutMs = timeoutMs;
  return out;
}
