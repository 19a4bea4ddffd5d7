// POST /v1/segment/:task — DESIGN.md §4, top to bottom: the middlewares make the request ready (services loaded,
// caller known and within its rate limit, body within its limit, headers and query parsed, image read, idempotency
// settled), lib/serve_segment.ts runs and bills it within the caller's budget and credit, and this file shapes the
// answer: JSON with the mask, or the mask PNG with the cost in headers.

import { type Context, Hono } from "hono";
import { setMetric } from "hono/timing";
import { validator } from "hono/validator";
import { encodeMaskPng, encodeMaskRle } from "../lib/image/mod.ts";
import { sha256, type StoredResponse } from "../lib/metering/mod.ts";
import type { SegmentResult } from "../lib/segment.ts";
import { type SegmentCall, serveSegment } from "../lib/serve_segment.ts";
import { fromGflops, toGflops } from "../lib/units.ts";
import { UnprocessableError } from "../lib/errors.ts";
import type { AppEnv } from "./env.ts";
import type { Services } from "./services.ts";
import { apiKey } from "./middleware/auth.ts";
import { uploadLimit } from "./middleware/body_limit.ts";
import { creditHeader, idempotency } from "./middleware/idempotency.ts";
import { rateLimit } from "./middleware/rate_limit.ts";
import { ready } from "./middleware/ready.ts";
import { shedEarly } from "./middleware/shed.ts";
import { upload } from "./middleware/upload.ts";
import { MaskFormat, SegmentHeaders } from "./schemas.ts";

type SegmentHeaderValues = ReturnType<typeof SegmentHeaders.parse>;

/** Parses the X-* request headers; 422 naming the first bad one. */
export function segmentHeaders(headers: Record<string, string>): SegmentHeaderValues {
  const raw: Record<string, string> = {};
  for (const key of Object.keys(SegmentHeaders.shape)) if (headers[key] !== undefined) raw[key] = headers[key];
  const parsed = SegmentHeaders.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const header = String(issue.path[0] ?? "");
    throw new UnprocessableError(`invalid header ${header}: ${issue.message}`, "invalid-header", { header });
  }
  return parsed.data;
}

function maskQuery(query: Record<string, string>): { mask: "png" | "rle" } {
  const parsed = MaskFormat.safeParse(query.mask);
  if (!parsed.success) throw new UnprocessableError("query parameter mask must be 'png' or 'rle'", "invalid-query");
  return { mask: parsed.data };
}

const wantsPng = (c: Context) =>
  (c.req.header("accept") ?? "").split(",").some((a) => a.trim().startsWith("image/png"));

/** Same key + same request = replay: the task, the parsed headers, the answer's form and the image's bytes. */
async function fingerprint(c: Context): Promise<string> {
  const headers = segmentHeaders(c.req.header());
  const image = await sha256(c.get("upload").bytes);
  return JSON.stringify([c.req.param("task"), headers, wantsPng(c), maskQuery(c.req.query()).mask, image]);
}

const round = (v: number, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;

function planJson(r: SegmentResult) {
  return {
    mode: r.plan.mode,
    tiles: r.plan.tiles.map((t) => ({
      x: t.x,
      y: t.y,
      w: t.w,
      h: t.h,
      model: t.model,
      scale: t.scale,
      ...(t.scaleY !== undefined ? { scale_y: t.scaleY } : {}),
      halo: t.halo,
      ...(t.score !== undefined ? { score: t.score } : {}),
    })),
    executions: r.plan.executions.map((e) => ({
      model: e.model,
      shape: e.dims,
      ...(e.tails ? { tails: e.tails } : {}),
      gflops: toGflops(e.flops),
    })),
    glimpses: r.plan.glimpses ?? [],
    ...(r.plan.stop ? { stop: r.plan.stop } : {}),
    ...(r.plan.coverage ? { coverage: r.plan.coverage } : {}),
  };
}

/** The 200 response: the mask PNG alone, or the JSON document of DESIGN.md §4. */
function render(
  c: Context,
  result: SegmentResult,
  budgetFlops: number | undefined,
  format: { png: boolean; mask: "png" | "rle"; budget: (flops: number | undefined) => number | null },
): StoredResponse {
  const e0 = performance.now();
  const png = format.png || format.mask === "png" ? encodeMaskPng(result.mask, result.width, result.height) : null;
  const timings = { ...result.timings, encode: performance.now() - e0 };
  for (const [name, ms] of Object.entries(timings)) setMetric(c, name, ms, undefined, 2);
  const cost = { gflops: toGflops(result.cost.flops), gmacs: toGflops(result.cost.macs) };
  const headers: Record<string, string> = {
    "X-Cost-GFLOPs": String(cost.gflops),
    "X-Cost-GMACs": String(cost.gmacs),
    "X-Backend": result.backend,
  };
  if (format.png) return { status: 200, headers: { ...headers, "content-type": "image/png" }, body: png! };
  const started = c.get("metric")?.timers.get("total")?.start;
  const total = started === undefined ? undefined : performance.now() - started;
  const body = {
    id: c.get("requestId"),
    task: result.task.name,
    width: result.width,
    height: result.height,
    classes: result.task.classes,
    mask: png
      ? { format: "png", encoding: "base64", data: png.toBase64() }
      : { format: "rle", ...encodeMaskRle(result.mask, result.width, result.height) },
    plan: planJson(result),
    cost: {
      ...cost,
      flops: result.cost.flops,
      breakdown: result.cost.breakdown.map((l) => ({
        model: l.model,
        runs: l.runs,
        gflops: toGflops(l.flops),
        gmacs: toGflops(l.macs),
      })),
    },
    budget: {
      gflops: format.budget(budgetFlops),
      min_gflops: toGflops(result.plan.minFlops),
    },
    backend: result.backend,
    timings_ms: Object.fromEntries(
      Object.entries({ ...timings, ...(total === undefined ? {} : { total }) }).map(([k, v]) => [k, round(v)]),
    ),
  };
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  return { status: 200, headers: { ...headers, "content-type": "application/json" }, body: bytes };
}

/**
 * Builds the segment route.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { loadConfig } from "../lib/config.ts";
 * import { Services } from "./services.ts";
 * import { segmentRoutes } from "./segment.ts";
 * const app = new Hono().route("/", segmentRoutes(new Services(loadConfig({}))));
 * ```
 */
export function segmentRoutes(services: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.post("/v1/segment/:task", shedEarly(services));
  app.post(
    "/v1/segment/:task",
    ready(services),
    apiKey(services.config),
    rateLimit(),
    // Unknown tasks fail before the body is read.
    validator("param", (v, c) => ({ task: c.var.ready.registry.task(v.task).name })),
    validator("header", (v) => segmentHeaders(v)),
    validator("query", (v) => maskQuery(v as Record<string, string>)),
    uploadLimit(services.config.MAX_UPLOAD_BYTES),
    upload((c) => c.var.ready.forms),
    idempotency({ fingerprint }),
    async (c) => {
      const { task } = c.req.valid("param");
      const h = c.req.valid("header");
      c.set("task", task);
      c.set("mode", h["x-mode"]);
      const budget = h["x-budget-gflops"];
      const call: SegmentCall = {
        task,
        mode: h["x-mode"],
        model: h["x-model"],
        budgetFlops: budget === undefined ? undefined : fromGflops(budget),
        deadlineMs: h["x-deadline-ms"],
        confidence: h["x-confidence"],
        ...c.var.upload,
      };
      const format = {
        png: wantsPng(c),
        mask: c.req.valid("query").mask,
        // The caller's own budget is echoed as sent; a cap from the credit in GFLOPs.
        budget: (flops: number | undefined) =>
          flops === undefined ? null : flops === call.budgetFlops ? budget! : toGflops(flops),
      };
      const { caller } = c.var;
      const served = await serveSegment(c.var.ready, call, {
        subject: caller.id,
        creditFlops: caller.key?.creditFlops ?? null,
      }, {
        requestId: c.get("requestId"),
        idempotency: c.var.idempotency,
        render: (result, budgetFlops) => render(c, result, budgetFlops, format),
        ran: (result) => {
          c.set("mode", result.plan.mode);
          c.set("timings", result.timings);
          c.set("computedGflops", (c.get("computedGflops") ?? 0) + toGflops(result.cost.flops));
        },
      });
      // After the body was rendered (a replay is byte for byte the first answer): in Server-Timing only.
      setMetric(c, "bill", served.billMs, undefined, 2);
      c.set("billedGflops", toGflops(served.result.cost.flops));
      return c.body(served.response.body as Uint8Array<ArrayBuffer>, 200, {
        ...served.response.headers,
        "X-Credit-Remaining-GFLOPs": creditHeader(served.remainingFlops),
      });
    },
  );
  return app;
}
