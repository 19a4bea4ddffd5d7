// GET /healthz (the process answers) and GET /readyz (models loaded, workers warm, billing store writable).

import { Hono } from "hono";
import type { AppEnv } from "./env.ts";
import type { Services } from "./services.ts";
import { problem } from "./problem.ts";

/** Builds the health routes. */
export function healthRoutes(services: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const state = services.state;
    if (state.status === "failed") {
      return problem(503, "load-failed", `models failed to load: ${state.error}`, {}, { "Retry-After": "30" });
    }
    const stats = state.status === "ready" ? state.ready.pool.stats() : null;
    if (state.status !== "ready" || !stats || stats.ready < stats.size) {
      return problem(503, "not-ready", "models are loading and workers warming up", {
        workers: stats,
      }, { "Retry-After": "2" });
    }
    // Billing must be writable too, or every request would fail after its compute (cached 1 s, so cheap).
    const store = await state.meter.health();
    if (!store.ok) {
      return problem(503, "store-unavailable", `the metering store cannot be written (${store.fault})`, {
        store: { ok: false, fault: store.fault },
      }, { "Retry-After": "5" });
    }
    return c.json({ status: "ready", backend: state.ready.pool.backend, workers: stats, store });
  });
  return app;
}
