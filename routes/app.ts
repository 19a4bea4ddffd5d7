// The Hono application, top to bottom: metrics, request id, Server-Timing, CORS and 405s for every request; then
// the routes, each with the middlewares it needs; one error boundary (problem.ts) at the end.

import { type Context, Hono } from "hono";
import { timing } from "hono/timing";
import type { AppEnv } from "./env.ts";
import type { Services } from "./services.ts";
import { onError, problem } from "./problem.ts";
import { apiCors } from "./middleware/cors.ts";
import { wrongMethod } from "./middleware/method_not_allowed.ts";
import { requestIds } from "./middleware/request_id.ts";
import { adminRoutes } from "./admin.ts";
import { docsRoutes } from "./docs.ts";
import { healthRoutes } from "./health.ts";
import { metricsRoutes, ServerMetrics } from "./metrics.ts";
import { modelRoutes } from "./models.ts";
import { openApiRoutes } from "./openapi.ts";
import { segmentRoutes } from "./segment.ts";
import { usageRoutes } from "./usage.ts";

export type { AppEnv } from "./env.ts";
export { type Ready, Services } from "./services.ts";

/**
 * Creates the HTTP application.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../lib/config.ts";
 * import { createApp, Services } from "./app.ts";
 * const app = createApp(new Services(loadConfig({})));
 * const res = await app.request("/healthz");
 * ```
 */
export function createApp(services: Services): Hono<AppEnv> {
  const { config } = services;
  const app = new Hono<AppEnv>();
  const metrics = new ServerMetrics(services);
  app.use(metrics.middleware());
  app.use(requestIds());
  const origins = config.CORS_ORIGINS;
  // Timing-Allow-Origin follows CORS, so a browser app that may read the API may read its Server-Timing too.
  const timingOrigin = origins === "*" ? "*" : (c: Context) => {
    const origin = c.req.header("origin");
    return origin !== undefined && origins.includes(origin) ? origin : false;
  };
  app.use(timing({ totalDescription: "total", crossOrigin: timingOrigin }));
  app.use(apiCors(origins));
  app.use(wrongMethod(app));
  app.route("/", healthRoutes(services));
  app.route("/", modelRoutes(services));
  app.route("/", segmentRoutes(services));
  app.route("/", usageRoutes(services));
  app.route("/", adminRoutes(services));
  app.route("/", metricsRoutes(metrics));
  app.route("/", openApiRoutes());
  app.route("/", docsRoutes());
  app.get("/", async (c) => {
    const html = await Deno.readTextFile(new URL("../public/index.html", import.meta.url));
    return c.html(html);
  });
  app.notFound((c) => problem(404, "not-found", `no route ${c.req.method} ${c.req.path}`, {}, {}, c.get("requestId")));
  app.onError(onError);
  return app;
}
