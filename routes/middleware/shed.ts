// Load shedding ahead of the per-key rate limiter: a request the Segmenter would shed now (503 + Retry-After) is
// refused before the rate limiter counts it. Counted, a client that honours Retry-After spends its quota on the
// server's overload: in the soak's burst of 200 keyed requests on 4 processes (`deno task soak --only e`), the retries
// of shed requests ran the key's 600-per-minute window dry (105 answers 429) and the last client was served after
// 47 s; shed here, no 429 and all served after 13 s. The Segmenter decides again, for real, when the request reaches
// it (lib/segment.ts `overloaded`).

import { createMiddleware } from "hono/factory";
import type { Services } from "../services.ts";

/**
 * 503 `overloaded` with Retry-After when the server would shed a new request now (nothing while models load: `ready`
 * answers that). Runs before authentication: shedding costs no key lookup either.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { loadConfig } from "../../lib/config.ts";
 * import { Services } from "../services.ts";
 * import { shedEarly } from "./shed.ts";
 * const services = new Services(loadConfig({}));
 * new Hono().post("/work", shedEarly(services), (c) => c.text("admitted"));
 * ```
 */
export function shedEarly(services: Services) {
  return createMiddleware(async function shedEarly(_c, next) {
    const state = services.state;
    const shed = state.status === "ready" ? state.ready.segmenter.overloaded() : null;
    if (shed) throw shed;
    await next();
  });
}
