// GET /metrics (Prometheus text format) and the middleware that feeds it: requests by route, status and mode,
// GFLOPs computed and billed, latency histograms (total, queue, inference), queue depth, worker restarts.

import { Hono, type MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { MetricsRegistry } from "../lib/metrics/mod.ts";
import type { AppEnv } from "./env.ts";
import type { Services } from "./services.ts";

/** The server's metrics, registered once per app. */
export class ServerMetrics {
  readonly registry = new MetricsRegistry();
  readonly requests = this.registry.counter(
    "thriftseg_http_requests_total",
    "HTTP requests answered, by route pattern, method, status and segmentation mode (empty when not a segment call).",
    ["route", "method", "status", "mode"],
  );
  readonly latency = this.registry.histogram(
    "thriftseg_http_request_duration_seconds",
    "Wall-clock time from request to response headers, by route pattern.",
    ["route"],
  );
  readonly queue = this.registry.histogram(
    "thriftseg_queue_wait_seconds",
    "Time a segment request's model executions waited for a worker (summed over its executions).",
    ["task", "mode"],
  );
  readonly inference = this.registry.histogram(
    "thriftseg_inference_seconds",
    "Model run time of a segment request in the workers (summed over its executions).",
    ["task", "mode"],
  );
  readonly computed = this.registry.counter(
    "thriftseg_gflops_computed_total",
    "GFLOPs of the model executions run (exact counter FLOPs), billed or not (e.g. when the billing write failed).",
    ["task", "mode"],
  );
  readonly billed = this.registry.counter(
    "thriftseg_gflops_billed_total",
    "GFLOPs debited from callers' credit (idempotent replays are not billed again).",
    ["task", "mode"],
  );
  readonly queueDepth = this.registry.gauge("thriftseg_queue_depth", "Model executions waiting for a worker.");
  readonly busy = this.registry.gauge("thriftseg_workers_busy", "Workers running a model now.");
  readonly workers = this.registry.gauge("thriftseg_workers", "Workers in the pool.");
  readonly backend = this.registry.gauge(
    "thriftseg_backend_info",
    "1 for the runtime the workers run models on (native, webgpu or wasm-simd).",
    ["backend"],
  );
  readonly restarts = this.registry.counter(
    "thriftseg_worker_restarts_total",
    "Workers replaced after a crash or a timeout.",
  );

  constructor(services: Services) {
    this.registry.collect(() => {
      const state = services.state;
      const stats = state.status === "ready" ? state.ready.pool.stats() : undefined;
      this.queueDepth.set(undefined, stats?.queued ?? 0);
      this.busy.set(undefined, stats?.busy ?? 0);
      this.workers.set(undefined, stats?.size ?? 0);
      if (stats) this.backend.set({ backend: stats.backend }, 1);
      const seen = this.restarts.get();
      if (stats && stats.restarts > seen) this.restarts.inc(undefined, stats.restarts - seen);
    });
  }

  /** Middleware that records every request once its response is ready. */
  middleware(): MiddlewareHandler<AppEnv> {
    return async (c, next) => {
      const started = performance.now();
      try {
        await next();
      } finally {
        // An unmatched path would otherwise mint one series per URL a scanner tries.
        const last = routePath(c, -1);
        const route = last === "*" || last === "/*" ? "unmatched" : last;
        const mode = c.get("mode") ?? "";
        this.requests.inc({ route, method: c.req.method, status: String(c.res.status), mode });
        this.latency.observe({ route }, (performance.now() - started) / 1000);
        const task = c.get("task");
        if (task !== undefined) {
          const labels = { task, mode };
          const timings = c.get("timings");
          if (timings) {
            this.queue.observe(labels, timings.queue / 1000);
            this.inference.observe(labels, timings.infer / 1000);
          }
          const computed = c.get("computedGflops");
          if (computed !== undefined) this.computed.inc(labels, computed);
          const billed = c.get("billedGflops");
          if (billed !== undefined) this.billed.inc(labels, billed);
        }
      }
    };
  }
}

/** Builds GET /metrics. */
export function metricsRoutes(metrics: ServerMetrics): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/metrics", (c) => c.body(metrics.registry.render(), 200, { "content-type": metrics.registry.contentType }));
  return app;
}
