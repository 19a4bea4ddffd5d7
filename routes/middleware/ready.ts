// Readiness: handlers behind `ready` get the loaded services as `c.var.ready` (typed non-null); until loading is
// done the request gets 503 with Retry-After. `storeReady` is the same for routes that need only the store.

import { createMiddleware } from "hono/factory";
import { UnavailableError } from "../../lib/errors.ts";
import type { MeterStore } from "../../lib/metering/mod.ts";
import type { Ready, Services } from "../services.ts";

/** Variables `ready` sets. */
export type ReadyEnv = { Variables: { ready: Ready; meter: MeterStore } };
/** Variables `storeReady` sets. */
export type StoreEnv = { Variables: { meter: MeterStore } };

/**
 * 503 until models are loaded and workers warm; then `c.var.ready` (and `c.var.meter`).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { loadConfig } from "../../lib/config.ts";
 * import { Services } from "../services.ts";
 * import { ready } from "./ready.ts";
 * const services = new Services(loadConfig({}));
 * new Hono().get("/v1/models", ready(services), (c) => c.json([...c.var.ready.registry.tasks.keys()]));
 * ```
 */
export function ready(services: Services) {
  return createMiddleware<ReadyEnv>(async function ready(c, next) {
    const state = services.state;
    if (state.status === "failed") {
      throw new UnavailableError(`models failed to load: ${state.error}`, 30, "load-failed");
    }
    if (state.status !== "ready") throw new UnavailableError("models are still loading", 2, "not-ready");
    c.set("ready", state.ready);
    c.set("meter", state.meter);
    await next();
  });
}

/**
 * 503 until the metering store is open; then `c.var.meter`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { loadConfig } from "../../lib/config.ts";
 * import { Services } from "../services.ts";
 * import { storeReady } from "./ready.ts";
 * const services = new Services(loadConfig({}));
 * new Hono().get("/keys", storeReady(services), async (c) => c.json((await c.var.meter.listKeys()).length));
 * ```
 */
export function storeReady(services: Services) {
  return createMiddleware<StoreEnv>(async function storeReady(c, next) {
    const meter = services.state.meter;
    if (!meter) throw new UnavailableError("the metering store is opening", 1, "not-ready");
    c.set("meter", meter);
    await next();
  });
}
