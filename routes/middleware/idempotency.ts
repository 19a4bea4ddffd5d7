// Idempotency-Key (per API key, 24 h): a retry of a billed request replays the first response and is not billed
// again; the same key with another request is 422; while the first attempt runs, 409. The key is claimed here and
// released when the attempt fails; a successful attempt stores its response together with its debit, in one
// transaction (lib/metering.ts), which is why the handler gets the key and fingerprint to bill with. Hono has no
// idempotency middleware, hence this one.

import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { UnprocessableError } from "../../lib/errors.ts";
import { sha256 } from "../../lib/metering/mod.ts";
import { toGflops } from "../../lib/units.ts";
import { IdempotencyKey } from "../schemas.ts";
import type { CallerEnv } from "./auth.ts";

/** Variables `idempotency` sets: the claimed key and the request's fingerprint, when the client sent a key. */
export type IdempotencyEnv = CallerEnv & {
  Variables: { idempotency: { key: string; fingerprint: string } | undefined };
};

/** The credit header every segment response carries: remaining GFLOPs, or `unlimited`. */
export function creditHeader(remaining: bigint | null): string {
  return remaining === null ? "unlimited" : String(toGflops(remaining));
}

/**
 * Replays, refuses or claims by `Idempotency-Key`. `fingerprint` says what makes two requests the same one.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { loadConfig } from "../../lib/config.ts";
 * import { Services } from "../services.ts";
 * import { storeReady } from "./ready.ts";
 * import { apiKey } from "./auth.ts";
 * import { idempotency } from "./idempotency.ts";
 * const services = new Services(loadConfig({}));
 * new Hono().post(
 *   "/charge",
 *   storeReady(services),
 *   apiKey(services.config),
 *   idempotency({ fingerprint: async (c) => await c.req.text() }),
 *   (c) => c.text("charged"),
 * );
 * ```
 */
export function idempotency(options: { fingerprint: (c: Context) => Promise<string> }) {
  return createMiddleware<IdempotencyEnv>(async function idempotency(c, next) {
    const key = c.req.header("idempotency-key");
    if (key === undefined) {
      c.set("idempotency", undefined);
      return await next();
    }
    if (!IdempotencyKey.safeParse(key).success) {
      throw new UnprocessableError("Idempotency-Key must be 1-255 visible ASCII characters", "invalid-header", {
        header: "idempotency-key",
      });
    }
    const { meter, caller } = c.var;
    const fingerprint = await sha256(await options.fingerprint(c));
    const stored = await meter.beginIdempotent(caller.id, key, fingerprint);
    if (stored) {
      return c.body(stored.body as Uint8Array<ArrayBuffer>, stored.status as 200, {
        ...stored.headers,
        "Idempotent-Replayed": "true",
        "X-Credit-Remaining-GFLOPs": creditHeader(await meter.remaining(caller.id)),
      });
    }
    c.set("idempotency", { key, fingerprint });
    await next();
    // Anything but a billed success leaves the key free for a retry.
    if (c.error || c.res.status !== 200) await meter.release(caller.id, key).catch(() => {});
  });
}
