// Per-key rate limits (fixed window, counted in the metering store so every instance shares them). Hono has no
// rate limiter of its own, hence this one. Over the limit: 429 with Retry-After and the IETF draft RateLimit
// headers; under it, every response to the request carries RateLimit and RateLimit-Policy. Anonymous callers
// (AUTH=off) are not limited.

import { createMiddleware } from "hono/factory";
import type { CallerEnv } from "./auth.ts";

/**
 * Counts the request against the caller's key.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { loadConfig } from "../../lib/config.ts";
 * import { Services } from "../services.ts";
 * import { storeReady } from "./ready.ts";
 * import { apiKey } from "./auth.ts";
 * import { rateLimit } from "./rate_limit.ts";
 * const services = new Services(loadConfig({}));
 * new Hono().post("/work", storeReady(services), apiKey(services.config), rateLimit(), (c) => c.text("ok"));
 * ```
 */
export function rateLimit() {
  return createMiddleware<CallerEnv>(async function rateLimit(c, next) {
    const { key, id } = c.var.caller;
    if (!key) return await next();
    const headers = await c.var.meter.admit(id, key.rateLimit);
    await next();
    for (const [name, value] of Object.entries(headers)) c.header(name, value);
  });
}
