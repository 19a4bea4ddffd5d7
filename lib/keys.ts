// API keys at the edges: the JSON a key is shown as (admin API and `deno task keys` alike) and the bodies both
// accept to create a key or top one up. The store itself is lib/metering.ts.

import { z } from "zod";
import type { KeyStatus } from "./metering/mod.ts";
import { toGflops } from "./units.ts";

const RateLimitJson = z.object({
  requests: z.number().int().min(1).max(1_000_000),
  window_seconds: z.number().int().min(1).max(86_400),
});

/**
 * Body of `POST /v1/admin/keys` and the flags of `deno task keys create`.
 *
 * @example
 * ```ts
 * import { CreateKeyBody } from "./keys.ts";
 * CreateKeyBody.parse({ name: "acme", credit_gflops: 500 });
 * ```
 */
export const CreateKeyBody = z.object({
  name: z.string().min(1).max(100),
  credit_gflops: z.number().min(0).max(1e12).nullable().describe("null = unlimited"),
  rate_limit: RateLimitJson.optional().describe("default: RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW_S"),
});

/**
 * Body of `POST /v1/admin/keys/:id/topup` and the flags of `deno task keys topup`.
 *
 * @example
 * ```ts
 * import { TopUpBody } from "./keys.ts";
 * TopUpBody.parse({ gflops: 250 });
 * ```
 */
export const TopUpBody = z.object({ gflops: z.number().gt(0).max(1e12) });

/** A key as shown to its administrator (never the secret). */
export const KeyJson = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  credit_remaining_gflops: z.number().nullable().describe("null = unlimited"),
  debited_gflops: z.number(),
  rate_limit: RateLimitJson,
  created_at: z.string(),
  revoked_at: z.string().nullable(),
});

/** The JSON shape of {@link KeyJson}. */
export type KeyJson = z.infer<typeof KeyJson>;

/**
 * A key as the admin API and the CLI show it: GFLOPs instead of integer FLOPs, never the secret.
 *
 * @example
 * ```ts
 * import { keyJson } from "./keys.ts";
 * import { MeterStore } from "./metering/mod.ts";
 * const meter = await MeterStore.open({ path: "./data/meter.kv" });
 * const { key } = await meter.createKey({ name: "demo", creditGflops: 100 });
 * console.log(keyJson((await meter.getKey(key.id))!));
 * meter.close();
 * ```
 */
export function keyJson(k: KeyStatus): KeyJson {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    credit_remaining_gflops: k.creditFlops === null ? null : toGflops(k.creditFlops),
    debited_gflops: toGflops(k.debitedFlops),
    rate_limit: { requests: k.rateLimit.requests, window_seconds: k.rateLimit.windowSeconds },
    created_at: k.createdAt,
    revoked_at: k.revokedAt,
  };
}
