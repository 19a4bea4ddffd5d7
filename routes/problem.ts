// The one place where errors become application/problem+json (RFC 9457).

import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ProblemError } from "../lib/errors.ts";

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/**
 * Builds a problem+json Response.
 *
 * @example
 * ```ts
 * import { problem } from "./problem.ts";
 * const res = problem(404, "not-found", "no route GET /nope");
 * ```
 */
export function problem(
  status: number,
  slug: string,
  detail: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
  requestId?: string,
): Response {
  const body = {
    type: `https://thriftseg.dev/problems/${slug}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
    ...(requestId ? { instance: requestId } : {}),
    ...extra,
  };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
}

/**
 * Hono onError handler: typed errors keep their status, Hono's own middlewares' HTTPExceptions keep the response
 * they carry (built with {@link problem} where thriftseg configures them), anything else is a 500.
 */
export function onError(err: Error, c: Context): Response {
  const requestId = c.get("requestId" as never) as string | undefined;
  if (err instanceof ProblemError) return problem(err.status, err.slug, err.message, err.extra, err.headers, requestId);
  if (err instanceof HTTPException) {
    const res = err.getResponse();
    if (res.headers.get("content-type") === "application/problem+json") return res;
    const slug = err.status === 400 ? "bad-request" : `http-${err.status}`;
    return problem(err.status, slug, err.message || TITLES[err.status] || "Error", {}, {}, requestId);
  }
  console.error(`[${requestId ?? "-"}] unexpected error:`, err);
  return problem(500, "internal", "the server failed to process this request", {}, {}, requestId);
}
