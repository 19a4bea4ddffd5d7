// A small typed client for thriftseg's HTTP API, on openapi-fetch, with the
// types generated from /openapi.json (schema.d.ts, `deno task client:gen`).
// Errors come back as ThriftsegError carrying the problem+json body; the cost
// headers of a segment call come back as numbers next to the result.

import createClient, { type Client } from "openapi-fetch";
import type { components, operations, paths } from "./schema.d.ts";

export type { components, paths };
/** The JSON answer of POST /v1/segment/:task. */
export type SegmentResponse = components["schemas"]["SegmentResponse"];
/** GET /v1/models. */
export type ModelsResponse = components["schemas"]["ModelsResponse"];
/** GET /v1/usage. */
export type UsageResponse = components["schemas"]["UsageResponse"];
/** GET /v1/usage/events. */
export type EventsResponse = components["schemas"]["EventsResponse"];
/** An RFC 9457 problem, as every error answer carries. */
export type Problem = components["schemas"]["Problem"];
type SegmentHeaders = NonNullable<operations["segment"]["parameters"]["header"]>;
/** `adaptive`, `glimpse` or `fixed`. */
export type Mode = NonNullable<SegmentHeaders["X-Mode"]>;

/** An error answer (4xx/5xx) of the API, with its problem+json body. */
export class ThriftsegError extends Error {
  /**
   * @param status the HTTP status
   * @param problem the problem+json body, or null when the answer had none
   */
  constructor(readonly status: number, readonly problem: Problem | null, readonly response: Response) {
    super(
      problem ? `${status} ${problem.title}${problem.detail ? `: ${problem.detail}` : ""}` : `HTTP ${status}`,
    );
    this.name = "ThriftsegError";
  }

  /** Seconds to wait before a retry (429, 503), from `Retry-After`; null when absent. */
  get retryAfterSeconds(): number | null {
    const v = this.response.headers.get("retry-after");
    return v === null ? null : Number(v);
  }
}

/** What the headers of a segment answer say. */
export interface SegmentMeta {
  requestId: string | null;
  /** Exactly `cost.gflops` of the JSON body. */
  costGflops: number;
  costGmacs: number;
  /** The key's credit after this request; null with keys off. */
  creditRemainingGflops: number | "unlimited" | null;
  /** `Server-Timing` as milliseconds per phase (decode, plan, queue, infer, …, total). */
  timingsMs: Record<string, number>;
  /** True when this answer is the replay of an earlier one with the same Idempotency-Key (not billed again). */
  replayed: boolean;
  backend: string | null;
}

/** Options of one segment call; all optional. */
export interface SegmentOptions {
  mode?: Mode;
  /** Model id for `fixed` mode (see models()). */
  model?: string;
  /** Hard cap on this request's GFLOPs; 422 (ThriftsegError) when no plan fits. */
  budgetGflops?: number;
  /** Glimpse stop threshold in (0, 1]. */
  confidence?: number;
  deadlineMs?: number;
  /** A retry with the same key replays the first answer and is never billed twice. */
  idempotencyKey?: string;
  /** The image's media type; default: the Blob's type, else application/octet-stream (the server sniffs). */
  contentType?: string;
  /** Mask encoding in the JSON body: `png` (default, base64) or `rle`. */
  mask?: "png" | "rle";
  signal?: AbortSignal;
}

/** Options of the client. */
export interface ClientOptions {
  /** e.g. `http://localhost:8000` */
  baseUrl: string;
  /** An API key (`tsk_…`); not needed with AUTH=off. */
  apiKey?: string;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/** The thriftseg client. */
export interface ThriftsegClient {
  /** The underlying openapi-fetch client, typed by schema.d.ts, for the routes not wrapped here. */
  raw: Client<paths>;
  /** POST /v1/segment/:task with a JSON answer: the mask, its plan and its cost. */
  segment(
    task: string,
    image: Blob | Uint8Array,
    opts?: SegmentOptions,
  ): Promise<{ result: SegmentResponse; meta: SegmentMeta }>;
  /** POST /v1/segment/:task with `Accept: image/png`: the mask PNG alone, the cost from the headers. */
  segmentMask(
    task: string,
    image: Blob | Uint8Array,
    opts?: Omit<SegmentOptions, "mask">,
  ): Promise<{ png: Uint8Array; meta: SegmentMeta }>;
  /** GET /v1/models: tasks, classes, models and their GFLOPs. */
  models(): Promise<ModelsResponse>;
  /** GET /v1/usage: the caller's per-day totals (dates as YYYY-MM-DD). */
  usage(range?: { from?: string; to?: string }): Promise<UsageResponse>;
  /** GET /v1/usage/events: one page of usage events; pass `next_cursor` back as `cursor`. */
  usageEvents(page?: { cursor?: string; limit?: number }): Promise<EventsResponse>;
}

/**
 * Creates a client.
 *
 * @example
 * ```ts
 * const api = createThriftseg({ baseUrl: "http://localhost:8000", apiKey: Deno.env.get("KEY") });
 * const image = await Deno.readFile("docs/examples/digits-0.png");
 * const { result, meta } = await api.segment("digits", image, { budgetGflops: 0.8, contentType: "image/png" });
 * console.log(result.cost.gflops, meta.creditRemainingGflops, result.plan.tiles.length);
 * ```
 */
export function createThriftseg(options: ClientOptions): ThriftsegClient {
  const raw = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    headers: options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {},
    fetch: options.fetch,
  });

  function segmentCall(task: string, image: Blob | Uint8Array, opts: SegmentOptions, accept: SegmentHeaders["Accept"]) {
    const blob = image instanceof Blob ? image : new Blob([image as Uint8Array<ArrayBuffer>]);
    const header: SegmentHeaders = { Accept: accept };
    if (opts.mode) header["X-Mode"] = opts.mode;
    if (opts.model) header["X-Model"] = opts.model;
    if (opts.budgetGflops !== undefined) header["X-Budget-GFLOPs"] = String(opts.budgetGflops);
    if (opts.confidence !== undefined) header["X-Confidence"] = String(opts.confidence);
    if (opts.deadlineMs !== undefined) header["X-Deadline-Ms"] = String(opts.deadlineMs);
    if (opts.idempotencyKey !== undefined) header["Idempotency-Key"] = opts.idempotencyKey;
    return raw.POST("/v1/segment/{task}", {
      params: { path: { task }, header, query: opts.mask ? { mask: opts.mask } : undefined },
      body: blob,
      // The image goes as the raw body, not as JSON.
      bodySerializer: (body: unknown) => body as Blob,
      headers: { "Content-Type": opts.contentType ?? (blob.type || "application/octet-stream") },
      parseAs: accept === "image/png" ? "arrayBuffer" : "json",
      signal: opts.signal,
    });
  }

  return {
    raw,
    async segment(task, image, opts = {}) {
      const { data, error, response } = await segmentCall(task, image, opts, "application/json");
      if (error !== undefined || data === undefined) throw await problemOf(response, error);
      return { result: data as SegmentResponse, meta: metaOf(response) };
    },
    async segmentMask(task, image, opts = {}) {
      const { data, error, response } = await segmentCall(task, image, opts, "image/png");
      if (error !== undefined || data === undefined) throw await problemOf(response, error);
      return { png: new Uint8Array(data as unknown as ArrayBuffer), meta: metaOf(response) };
    },
    async models() {
      const { data, error, response } = await raw.GET("/v1/models");
      if (error !== undefined || data === undefined) throw await problemOf(response, error);
      return data;
    },
    async usage(range = {}) {
      const { data, error, response } = await raw.GET("/v1/usage", { params: { query: range } });
      if (error !== undefined || data === undefined) throw await problemOf(response, error);
      return data;
    },
    async usageEvents(page = {}) {
      const { data, error, response } = await raw.GET("/v1/usage/events", { params: { query: page } });
      if (error !== undefined || data === undefined) throw await problemOf(response, error);
      return data;
    },
  };
}

function problemOf(response: Response, error: unknown): ThriftsegError {
  const problem = error && typeof error === "object" && "title" in error ? error as Problem : null;
  return new ThriftsegError(response.status, problem, response);
}

/** Parses `Server-Timing: decode;dur=1.2, infer;dur=40` into `{ decode: 1.2, infer: 40 }`. */
export function parseServerTiming(header: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (header ?? "").split(",")) {
    const [name, ...params] = part.trim().split(";");
    const dur = params.map((p) => /^dur=([\d.]+)$/.exec(p.trim())).find(Boolean);
    if (name) out[name.trim()] = dur ? Number(dur[1]) : 0;
  }
  return out;
}

function metaOf(response: Response): SegmentMeta {
  const h = response.headers;
  const credit = h.get("x-credit-remaining-gflops");
  return {
    requestId: h.get("x-request-id"),
    costGflops: Number(h.get("x-cost-gflops")),
    costGmacs: Number(h.get("x-cost-gmacs")),
    creditRemainingGflops: credit === null ? null : credit === "unlimited" ? "unlimited" : Number(credit),
    timingsMs: parseServerTiming(h.get("server-timing")),
    replayed: h.get("idempotent-replayed") === "true",
    backend: h.get("x-backend"),
  };
}
