// Server configuration, read once from the environment with sane defaults.

import { z } from "zod";

const intFromEnv = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

const ConfigSchema = z.object({
  PORT: intFromEnv(8000, 0),
  HOSTNAME: z.string().default("0.0.0.0"),
  MAX_UPLOAD_BYTES: intFromEnv(20 * 1024 * 1024, 1),
  MAX_PIXELS: intFromEnv(16_000_000, 1),
  /** Workers in the inference pool; 0 = the default layout (see `poolLayout`). */
  WORKERS: intFromEnv(0, 0),
  /** Jobs waiting for a worker before the server answers 503. */
  QUEUE_LIMIT: intFromEnv(64, 1),
  /** Server-side limit on one request's inference, ms; a single model run longer than this is a hang. */
  REQUEST_TIMEOUT_MS: intFromEnv(60_000, 1),
  /**
   * Admission: a new request that would wait longer than this for a worker (estimated from the FLOPs queued ahead
   * and the measured throughput) is shed at once with 503 + Retry-After, so admitted requests keep their latency.
   * 0 (the default) = auto: at most one request per worker in flight, so admitted requests keep about their
   * unloaded latency (docs/RELIABILITY.md, overload).
   */
  MAX_QUEUE_DELAY_MS: intFromEnv(0, 0),
  /** Decode workers (uploads are decoded off the main thread). */
  DECODE_WORKERS: intFromEnv(1, 1),
  /** A decode past this many ms is refused (422) and its worker replaced. */
  DECODE_TIMEOUT_MS: intFromEnv(10_000, 1),
  /** `auto`: native (onnxruntime-node) when it loads, else WebGPU on a real (non-fallback) adapter, else WASM-SIMD. */
  BACKEND: z.enum(["auto", "native", "wasm", "webgpu"]).default("auto"),
  /** Intra-op threads per worker (native: per session; WASM: per worker); 0 = one per core. */
  THREADS: intFromEnv(0, 0),
  /** Largest input one model execution may take, in pixels (keeps WASM memory bounded). */
  MAX_EXEC_PIXELS: intFromEnv(4_194_304, 1024),
  /** Halo (px) around the tiles of the trained zoos (digits, micrograph); capped at the models' trained halo. */
  ZOO_HALO: intFromEnv(8, 0),
  /** Where the embedded Deno KV file (metering) lives. */
  DATA_DIR: z.string().default("./data"),
  /** A remote KV (KV Connect URL) shared by many instances; overrides DATA_DIR. */
  KV_URL: z.string().url().optional(),
  /** `on`: API keys required; `off`: everything is metered under `anonymous`. */
  AUTH: z.enum(["on", "off"]).default("on"),
  /** Bearer token for /v1/admin/*; the admin API is disabled without it. */
  ADMIN_TOKEN: z.string().min(16).optional(),
  /** Price of one GFLOP, in CURRENCY. */
  PRICE_PER_GFLOP: z.coerce.number().min(0).default(0.00002),
  CURRENCY: z.string().regex(/^[A-Z]{3}$/).default("USD"),
  /** Default per-key rate limit: requests per window. */
  RATE_LIMIT_REQUESTS: intFromEnv(600, 1),
  RATE_LIMIT_WINDOW_S: intFromEnv(60, 1),
  /** A request body that sends nothing for this long is a 400, ms (Deno.serve has no body timeout). */
  BODY_TIMEOUT_MS: intFromEnv(10_000, 1),
  /** Requests with a body handled at once; more get 503 before their body is read. */
  MAX_INFLIGHT_UPLOADS: intFromEnv(256, 1),
  /** `1`: listen with SO_REUSEPORT so several processes share PORT (docs/DEPLOY.md). */
  REUSE_PORT: z.enum(["0", "1"]).default("0").transform((v) => v === "1"),
  /** Origins a browser app may call the API from: `*` (default) or a comma-separated list of origins. */
  CORS_ORIGINS: z.string().trim().default("*").transform((v, ctx) => {
    if (v === "*") return "*" as const;
    const origins = v.split(",").map((o) => o.trim()).filter(Boolean);
    for (const o of origins) {
      if (!/^https?:\/\/[^/\s]+$/.test(o)) {
        ctx.addIssue({ code: "custom", message: `"${o}" is not an origin like https://app.example.com` });
      }
    }
    return origins;
  }),
});

/** Parsed server configuration. */
export type Config = z.infer<typeof ConfigSchema>;

/**
 * Reads the configuration from an environment-like record.
 *
 * @example
 * ```ts
 * const config = loadConfig({ PORT: "0" });
 * ```
 */
export function loadConfig(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(ConfigSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== "") picked[key] = v;
  }
  const parsed = ConfigSchema.safeParse(picked);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid configuration: ${issues.join("; ")}`);
  }
  return parsed.data;
}

/** How the inference pool is laid out: `size` workers × `threads` threads, and a lone worker's threads (0: none). */
export interface PoolLayout {
  size: number;
  threads: number;
  loneThreads: number;
}

/**
 * The inference pool's layout. `WORKERS` or `THREADS` set: exactly that (the other defaulting to one worker or every
 * core), no lone worker. Neither set, as measured on 2 cores (docs/BENCHMARKS.md "Thread policy", each pool in a
 * process of its own):
 * - native: one worker per core with one thread each, plus a lone worker with every core that takes a job only when it
 *   would run alone and is not small (lib/exec/layout.ts `LONE_MIN_FLOPS`; its threads spin between operators, which pays only alone). A
 *   lone request runs as fast as on one worker with every core, four clients at once run side by side (640²: c=1
 *   61.0–63.2 vs 62.3–62.8 ms, c=4 20.7–21.3 vs 15.9–16.0 jobs/s in two `deno task bench` runs; rows `2×1 + lone ×2`
 *   and `1×2`). Jobs over 2¹⁹ input pixels run on the lone worker only (one such run keeps every core busy anyway).
 * - WASM: one worker with every core: a lone job as fast as two such workers, four at once faster (6.9–7.0 vs 5.3–5.7
 *   jobs/s: two workers' WASM threads oversubscribe the cores); a recycled WASM worker serves on while its replacement
 *   loads, so one worker does not stall.
 */
export function poolLayout(config: Config, backend: string): PoolLayout {
  const n = cores();
  if (config.WORKERS > 0 || config.THREADS > 0) {
    return { size: config.WORKERS || 1, threads: config.THREADS || n, loneThreads: 0 };
  }
  return backend === "native" && n > 1
    ? { size: n, threads: 1, loneThreads: n }
    : { size: 1, threads: n, loneThreads: 0 };
}

function cores(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}
