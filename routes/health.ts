// GET /healthz (the process answers) and GET /readyz (models loaded, workers warm).

import { Hono } from "hono";
import type { AppEnv, Services } from "./app.ts";
import { problem } from "./problem.ts";

/** Builds the health routes. */
export function healthRoutes(services: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => {
    const err = services.loadError();
    if (err) return problem(503, "load-failed", `models failed to load: ${err}`, {}, { "Retry-After": "30" });
    const pool = services.pool();
    const stats = pool?.stats();
    if (!pool || !services.segmenter() || !stats || stats.ready < stats.size) {
      return problem(503, "not-ready", "models are loading and workers warming up", {
        workers: stats ?? null,
      }, { "Retry-After": "2" });
    }
    return c.json({ status: "ready", backend: pool.backend, workers: stats });
  });
  return app;
}
