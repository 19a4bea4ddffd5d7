// GET /healthz (the process answers) and GET /readyz (models loaded, workers warm, billing store writable).

import { Hono } from "hono";
import type { AppEnv, Services } from "./app.ts";
import { problem } from "./problem.ts";

/** Builds the health routes. */
export function healthRoutes(services: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const err = services.loadError();
    if (err) return problem(503, "load-failed", `models failed to load: ${err}`, {}, { "Retry-After": "30" });
    const pool = services.pool();
    const stats = pool?.stats();
    if (!pool || !services.segmenter() || !stats || stats.ready < stats.size) {
      return problem(503, "not-ready", "models are loading and workers warming up", {
        workers: stats ?? null,
      }, { "Retry-After": "2" });
    }
    // Billing must be writable too, or every request would fail after its compute (cached 1 s, so cheap).
    const store = await services.meter()?.health();
    if (store && !store.ok) {
      return problem(503, "store-unavailable", `the metering store cannot be written (${store.fault})`, {
        store: { ok: false, fault: store.fault },
      }, { "Retry-After": "5" });
    }
    return c.json({ status: "ready", backend: pool.backend, workers: stats, store: store ?? null });
  });
  return app;
}
