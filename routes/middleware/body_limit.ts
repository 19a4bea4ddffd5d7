// The upload limit (hono/body-limit): a body over MAX_UPLOAD_BYTES is refused with 413 problem+json, from its
// Content-Length when it has one, else as soon as the stream passes the limit. A body that breaks off while it is
// being read is the client's fault: 400.

import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { BadRequestError, PayloadTooLargeError, ProblemError } from "../../lib/errors.ts";

/**
 * 413 for bodies over `maxBytes`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { uploadLimit } from "./body_limit.ts";
 * new Hono().post("/upload", uploadLimit(20 * 1024 * 1024), (c) => c.text("ok"));
 * ```
 */
export function uploadLimit(maxBytes: number): MiddlewareHandler {
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: (c) => {
      const declared = c.req.header("content-length");
      throw new PayloadTooLargeError(
        declared
          ? `body of ${declared} bytes is over the ${maxBytes}-byte limit`
          : `body is over the ${maxBytes}-byte limit`,
        { max_bytes: maxBytes },
      );
    },
  });
  return async function uploadLimit(c, next) {
    try {
      return await limit(c, next);
    } catch (err) {
      if (err instanceof ProblemError) throw err;
      throw new BadRequestError(`could not read the request body: ${(err as Error).message}`, "bad-body");
    }
  };
}
