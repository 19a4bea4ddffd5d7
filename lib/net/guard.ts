// The connection guard in front of the app's fetch handler: a cap on uploads
// in flight (503 beyond it, before a byte of the body is read), an idle
// timeout on request bodies (400 when a body stalls), and load shedding while
// the process is short of file descriptors (responses close their
// connections, new uploads get 503).

import { timedBody } from "./body_timeout.ts";

/** Options of {@link guardConnections}. */
export interface ConnectionGuardOptions {
  /** A body that sends nothing for this long is a 400 (ms). */
  bodyTimeoutMs: number;
  /** Requests with a body being handled at once; more get 503. */
  maxInflightUploads: number;
  /** True while descriptors are short (serveResilient's `underPressure`). */
  underPressure?: () => boolean;
}

/** Defaults of {@link ConnectionGuardOptions}. */
export const DEFAULT_GUARD: ConnectionGuardOptions = { bodyTimeoutMs: 10_000, maxInflightUploads: 256 };

type Handler = (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;

/** Live counters of a guard. */
export interface GuardStats {
  inflightUploads: number;
  shed: number;
}

function shed(detail: string, retryAfter: number): Response {
  const body = {
    type: "https://thriftseg.dev/problems/overloaded",
    title: "Service Unavailable",
    status: 503,
    detail,
    retry_after_seconds: retryAfter,
  };
  return new Response(JSON.stringify(body), {
    status: 503,
    headers: {
      "content-type": "application/problem+json",
      "retry-after": String(retryAfter),
      // The unread body (if any) stays on the socket: do not reuse it.
      connection: "close",
    },
  });
}

function withClose(res: Response): Response {
  try {
    res.headers.set("connection", "close");
    return res;
  } catch {
    // Immutable headers (a Response from fetch or Response.redirect): copy.
    const copy = new Response(res.body, res);
    copy.headers.set("connection", "close");
    return copy;
  }
}

/**
 * Wraps a fetch handler with the connection guard.
 *
 * @example
 * ```ts
 * import { guardConnections } from "./guard.ts";
 * const app = { fetch: (_req: Request) => new Response("ok") };
 * const guard = guardConnections(app.fetch, { bodyTimeoutMs: 10_000, maxInflightUploads: 256 });
 * Deno.serve({ port: 8000 }, guard.fetch);
 * ```
 */
export function guardConnections(
  handler: Handler,
  options: Partial<ConnectionGuardOptions> = {},
): { fetch: (req: Request, info: Deno.ServeHandlerInfo) => Promise<Response>; stats: () => GuardStats } {
  const opts = { ...DEFAULT_GUARD, ...options };
  let inflight = 0;
  let shedCount = 0;
  async function fetch(req: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
    const pressure = opts.underPressure?.() ?? false;
    const hasBody = req.body !== null && req.method !== "GET" && req.method !== "HEAD";
    if (hasBody && inflight >= opts.maxInflightUploads) {
      shedCount++;
      return shed(`${inflight} uploads are in progress, the most this server takes at once; retry shortly`, 1);
    }
    if (pressure && hasBody) {
      shedCount++;
      return shed("the server is short of connections; retry shortly", 2);
    }
    let request = req;
    if (hasBody) {
      inflight++;
      const declared = req.headers.get("content-length");
      // A new request from the URL, not from `req`: copying `req` reads its signal, and Deno then warns once that
      // the signal of a served request follows the legacy abort rule (nothing here uses it).
      request = new Request(req.url, {
        method: req.method,
        headers: req.headers,
        body: timedBody(req.body!, opts.bodyTimeoutMs, declared === null ? null : Number(declared)),
        duplex: "half",
      } as RequestInit);
    }
    try {
      const res = await handler(request, info);
      return pressure ? withClose(res) : res;
    } finally {
      if (hasBody) inflight--;
    }
  }
  return { fetch, stats: () => ({ inflightUploads: inflight, shed: shedCount }) };
}
