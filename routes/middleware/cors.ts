// CORS for browser apps on other origins (hono/cors): the request headers of DESIGN.md §4 are allowed and the
// response headers a client reads (cost, credit, timing, rate limits, replays) are exposed.

import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";

/** Request headers a cross-origin caller may send. */
export const ALLOWED_HEADERS = [
  "Authorization",
  "Content-Type",
  "Accept",
  "Idempotency-Key",
  "X-Mode",
  "X-Model",
  "X-Budget-GFLOPs",
  "X-Confidence",
  "X-Deadline-Ms",
];

/** Response headers a cross-origin caller may read. */
export const EXPOSED_HEADERS = [
  "X-Request-Id",
  "X-Cost-GFLOPs",
  "X-Cost-GMACs",
  "X-Backend",
  "X-Credit-Remaining-GFLOPs",
  "Server-Timing",
  "RateLimit",
  "RateLimit-Policy",
  "Retry-After",
  "Idempotent-Replayed",
];

/**
 * CORS for the given origins (`*` = any origin).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { apiCors } from "./cors.ts";
 * const app = new Hono().use(apiCors(["https://app.example.com"]));
 * ```
 */
export function apiCors(origins: "*" | string[]): MiddlewareHandler {
  return cors({
    origin: origins,
    allowMethods: ["GET", "HEAD", "POST", "OPTIONS"],
    allowHeaders: ALLOWED_HEADERS,
    exposeHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
}
