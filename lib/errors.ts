// Typed errors of thriftseg. Library code throws these; the HTTP layer turns
// them into application/problem+json in exactly one place (routes/problem.ts).

import { ceilGflops, toGflops } from "./units.ts";

/** Base class: an error that maps to an HTTP status and a problem type. */
export class ProblemError extends Error {
  /** HTTP status code sent to the client. */
  readonly status: number;
  /** Short slug used in the problem `type` URI, e.g. `image-too-large`. */
  readonly slug: string;
  /** Extra members merged into the problem+json body. */
  readonly extra: Record<string, unknown>;
  /** Extra response headers (e.g. Retry-After). */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    slug: string,
    message: string,
    extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.slug = slug;
    this.extra = extra;
    this.headers = headers;
  }
}

/** 400: the body is not a decodable image, or a header/field is malformed. */
export class BadRequestError extends ProblemError {
  constructor(message: string, slug = "bad-request", extra: Record<string, unknown> = {}) {
    super(400, slug, message, extra);
  }
}

/** 400: the bytes claim to be an image but cannot be decoded. */
export class InvalidImageError extends ProblemError {
  constructor(message: string) {
    super(400, "invalid-image", message);
  }
}

/** 404: unknown task, model or route. */
export class NotFoundError extends ProblemError {
  constructor(message: string, slug = "not-found") {
    super(404, slug, message);
  }
}

/** 413: body over MAX_UPLOAD_BYTES or image over MAX_PIXELS. */
export class PayloadTooLargeError extends ProblemError {
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(413, "payload-too-large", message, extra);
  }
}

/** 415: a media type thriftseg does not decode (e.g. WebP). */
export class UnsupportedMediaTypeError extends ProblemError {
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(415, "unsupported-media-type", message, extra);
  }
}

/** 422: a header value is well-formed but unusable (e.g. budget too small). */
export class UnprocessableError extends ProblemError {
  constructor(message: string, slug = "unprocessable", extra: Record<string, unknown> = {}) {
    super(422, slug, message, extra);
  }
}

/** 503: queue full, worker crashed or not ready yet. */
export class UnavailableError extends ProblemError {
  constructor(message: string, retryAfterSeconds = 1, slug = "unavailable") {
    super(503, slug, message, { retry_after_seconds: retryAfterSeconds }, {
      "Retry-After": String(retryAfterSeconds),
    });
  }
}

/** 504: the request's deadline or the server timeout was exceeded. */
export class TimeoutError extends ProblemError {
  constructor(message: string) {
    super(504, "timeout", message);
  }
}

/** 401: no API key, or one the server does not know. */
export class UnauthorizedError extends ProblemError {
  constructor(message: string) {
    super(401, "unauthorized", message, {}, { "WWW-Authenticate": 'Bearer realm="thriftseg"' });
  }
}

/** 403: a known key without access (revoked, or not an admin). */
export class ForbiddenError extends ProblemError {
  constructor(message: string, slug = "forbidden") {
    super(403, slug, message);
  }
}

/** 402: the key's credit does not cover the cheapest plan. No retry helps. */
export class PaymentRequiredError extends ProblemError {
  constructor(message: string, creditRemainingGflops: number, extra: Record<string, unknown> = {}) {
    super(402, "credit-exhausted", message, { credit_remaining_gflops: creditRemainingGflops, ...extra });
  }
}

/** 409: a request with the same Idempotency-Key is still running. */
export class ConflictError extends ProblemError {
  constructor(message: string, slug = "conflict") {
    super(409, slug, message, {}, { "Retry-After": "1" });
  }
}

/** 429: the key's rate limit is spent for this window. */
export class RateLimitedError extends ProblemError {
  constructor(message: string, retryAfterSeconds: number, headers: Record<string, string>) {
    super(429, "rate-limited", message, { retry_after_seconds: retryAfterSeconds }, {
      "Retry-After": String(retryAfterSeconds),
      ...headers,
    });
  }
}

/** 422: the budget (X-Budget-GFLOPs, or the credit used as a cap) is below the cheapest plan for this image. */
export class BudgetTooSmallError extends UnprocessableError {
  constructor(
    /** FLOPs of the cheapest plan. */
    readonly minFlops: number,
    /** The budget, in FLOPs. */
    readonly budgetFlops: number,
  ) {
    const min = ceilGflops(minFlops);
    const budget = toGflops(budgetFlops);
    super(`budget of ${budget} GFLOPs is below the cheapest plan for this image (${min} GFLOPs)`, "budget-too-small", {
      min_gflops: min,
      budget_gflops: budget,
    });
  }
}

/**
 * 422: a model execution would take the request past its budget. The executor refuses it before anything is sent to
 * a worker; planners price their steps first, so a client sees this only if a planner misjudged.
 */
export class BudgetExceededError extends UnprocessableError {
  constructor(readonly spentFlops: number, readonly stepFlops: number, readonly budgetFlops: number) {
    super(
      `refused a model execution of ${toGflops(stepFlops)} GFLOPs: ${toGflops(spentFlops)} of the budget's ` +
        `${toGflops(budgetFlops)} GFLOPs are already spent`,
      "budget-exceeded",
      { budget_gflops: toGflops(budgetFlops) },
    );
  }
}

/** 422: one model execution would exceed the server's execution-size limit (input pixels per batch item). */
export class ExecutionTooLargeError extends UnprocessableError {
  constructor(message: string, maxExecPixels: number, extra: Record<string, unknown> = {}) {
    super(message, "execution-too-large", { max_exec_pixels: maxExecPixels, ...extra });
  }
}

/** 503: the queue holds more work than can start within the server's queue-delay bound; shed before any work. */
export class OverloadedError extends UnavailableError {
  constructor(readonly expectedWaitMs: number, bound: string) {
    super(
      `the server is at capacity: a new request would wait about ${Math.round(expectedWaitMs)} ms for a worker ` +
        `(${bound}); retry shortly`,
      Math.max(1, Math.ceil(expectedWaitMs / 1000)),
      "overloaded",
    );
  }
}

/** 504: at the measured throughput the request cannot finish within X-Deadline-Ms; refused before any work. */
export class DeadlineUnreachableError extends TimeoutError {
  constructor(readonly etaMs: number, readonly leftMs: number) {
    super(
      `X-Deadline-Ms cannot be met: the next step needs about ${Math.round(etaMs)} ms, ` +
        `${Math.max(0, Math.round(leftMs))} ms are left`,
    );
  }
}
