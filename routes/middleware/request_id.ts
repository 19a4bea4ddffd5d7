// Request ids: `req_` + 24 hex digits on every request, sent back as X-Request-Id. The id names the request's usage
// event, so a client-sent X-Request-Id is not taken over (hono/request-id would); it is minted here every time.

import type { MiddlewareHandler } from "hono";
import { requestId } from "hono/request-id";
import type { AppEnv } from "../env.ts";

/** A fresh request id, `req_` + 96 random bits in hex. */
export function newRequestId(): string {
  return "req_" + crypto.getRandomValues(new Uint8Array(12)).toHex();
}

/**
 * Sets `requestId` for the request and `X-Request-Id` on whatever response it gets, errors included.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { requestIds } from "./request_id.ts";
 * const app = new Hono().use(requestIds());
 * app.get("/", (c) => c.text(c.get("requestId")));
 * ```
 */
export function requestIds(): MiddlewareHandler<AppEnv> {
  // headerName "" makes Hono's middleware ignore the client's header; the response header is set after the
  // handler so it also lands on responses built outside the context (errors, replays).
  const mint = requestId({ headerName: "", generator: newRequestId });
  return async function requestIds(c, next) {
    await mint(c, next);
    c.header("X-Request-Id", c.get("requestId"));
  };
}
