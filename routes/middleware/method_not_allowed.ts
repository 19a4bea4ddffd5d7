// A known path with the wrong method: 405 problem+json with `Allow` (hono/method-not-allowed finds the methods
// the app serves on the path).

import type { Env, Hono, MiddlewareHandler } from "hono";
import { methodNotAllowed } from "hono/method-not-allowed";
import { problem } from "../problem.ts";

/**
 * 405 with `Allow` instead of 404 when the path exists under another method.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { wrongMethod } from "./method_not_allowed.ts";
 * const app = new Hono();
 * app.use(wrongMethod(app));
 * app.post("/v1/segment/:task", (c) => c.text("ok"));
 * // GET /v1/segment/text → 405, Allow: POST
 * ```
 */
export function wrongMethod<E extends Env>(app: Hono<E>): MiddlewareHandler<E> {
  return methodNotAllowed<E>({
    app,
    onMethodNotAllowed: (c, methods) =>
      problem(
        405,
        "method-not-allowed",
        `${c.req.method} is not allowed on ${c.req.path}; use ${methods.join(" or ")}`,
        { allow: methods },
        { Allow: methods.join(", ") },
        c.get("requestId" as never),
      ),
  });
}
