// The Hono application: request ids, routes, and the single error boundary.

import { Hono } from "hono";
import type { Config } from "../lib/config.ts";
import type { ModelRegistry } from "../lib/models.ts";
import type { Segmenter, SegmentResult } from "../lib/segment.ts";
import type { MeterStore } from "../lib/metering.ts";
import type { Caller } from "./_auth.ts";
import { usageRoutes } from "./usage.ts";
import { adminRoutes } from "./admin.ts";
import type { WorkerPool } from "../workers/pool.ts";
import { onError, problem } from "./problem.ts";
import { segmentRoutes } from "./segment.ts";
import { modelRoutes } from "./models.ts";
import { healthRoutes } from "./health.ts";
import { metricsRoutes, ServerMetrics } from "./metrics.ts";
import { openApiRoutes } from "./openapi.ts";

/** Per-request variables. */
export type AppEnv = {
  Variables: {
    requestId: string;
    caller: Caller;
    /** Headers every response to this request carries (e.g. RateLimit). */
    extraHeaders: Record<string, string>;
    mode: string;
    timings: SegmentResult["timings"];
    billedGflops: number;
    /** Set by the segment route: labels of the segment metrics. */
    task: string;
    /** GFLOPs the model executions of this request ran, billed or not. */
    computedGflops: number;
  };
};

/** What the routes need; getters because models load after the socket opens. */
export interface Services {
  config: Config;
  registry: () => ModelRegistry | null;
  segmenter: () => Segmenter | null;
  pool: () => WorkerPool | null;
  meter: () => MeterStore | null;
  /** Set when loading failed: /readyz reports it. */
  loadError: () => string | null;
}

function newRequestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "req_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Creates the HTTP application.
 *
 * @example
 * ```ts
 * const app = createApp(services);
 * Deno.serve({ port: 8000 }, app.fetch);
 * ```
 */
export function createApp(services: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const metrics = new ServerMetrics(services);
  app.use("*", metrics.middleware());
  app.use("*", async (c, next) => {
    const id = newRequestId();
    c.set("requestId", id);
    await next();
    c.res.headers.set("X-Request-Id", id);
    for (const [k, v] of Object.entries(c.get("extraHeaders") ?? {})) c.res.headers.set(k, v);
  });
  app.route("/", healthRoutes(services));
  app.route("/", modelRoutes(services));
  app.route("/", segmentRoutes(services));
  app.route("/", usageRoutes(services));
  app.route("/", adminRoutes(services));
  app.route("/", metricsRoutes(metrics));
  app.route("/", openApiRoutes());
  app.get("/", async (c) => {
    const html = await Deno.readTextFile(new URL("../public/index.html", import.meta.url));
    return c.html(html);
  });
  app.notFound((c) => problem(404, "not-found", `no route ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError(onError);
  return app;
}
