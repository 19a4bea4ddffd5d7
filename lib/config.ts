// Server configuration, read once from the environment with sane defaults.

import { z } from "zod";

const intFromEnv = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

const ConfigSchema = z.object({
  PORT: intFromEnv(8000, 0),
  HOSTNAME: z.string().default("0.0.0.0"),
  MAX_UPLOAD_BYTES: intFromEnv(20 * 1024 * 1024, 1),
  MAX_PIXELS: intFromEnv(16_000_000, 1),
  /** Workers in the inference pool; 0 = one per core. */
  WORKERS: intFromEnv(0, 0),
  /** Jobs waiting for a worker before the server answers 503. */
  QUEUE_LIMIT: intFromEnv(64, 1),
  /** Server-side limit on one request's inference, ms. */
  REQUEST_TIMEOUT_MS: intFromEnv(60_000, 1),
  /** `auto` picks WebGPU only on a real (non-fallback) adapter. */
  BACKEND: z.enum(["auto", "wasm", "webgpu"]).default("auto"),
  /** onnxruntime-web WASM threads per worker. */
  WASM_THREADS: intFromEnv(1, 1),
  /** Largest input one model execution may take, in pixels (keeps WASM memory bounded). */
  MAX_EXEC_PIXELS: intFromEnv(4_194_304, 1024),
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

/** Number of pool workers after resolving `WORKERS=0` to the core count. */
export function workerCount(config: Config): number {
  return config.WORKERS > 0 ? config.WORKERS : Math.max(1, navigator.hardwareConcurrency || 1);
}
