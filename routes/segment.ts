// POST /v1/segment/:task — DESIGN.md §4, top to bottom: parse headers and
// body, run the Segmenter, answer JSON or the mask PNG with the cost headers.

import { Hono } from "hono";
import { PaymentRequiredError, UnavailableError, UnprocessableError } from "../lib/errors.ts";
import { flopsToGflops, sha256 } from "../lib/metering.ts";
import { authenticate } from "./_auth.ts";
import { encodeMaskPng, encodeMaskRle } from "../lib/image/mod.ts";
import type { SegmentResult } from "../lib/segment.ts";
import { readUpload } from "./_body.ts";
import { IdempotencyKey, MaskFormat, SegmentHeaders } from "./schemas.ts";
import type { AppEnv, Services } from "./app.ts";

function parseHeaders(headers: Headers) {
  const raw: Record<string, string> = {};
  for (const key of Object.keys(SegmentHeaders.shape)) {
    const v = headers.get(key);
    if (v !== null) raw[key] = v;
  }
  const parsed = SegmentHeaders.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const header = String(issue.path[0] ?? "");
    throw new UnprocessableError(`invalid header ${header}: ${issue.message}`, "invalid-header", { header });
  }
  return parsed.data;
}

const round = (v: number, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;

function serverTiming(t: Record<string, number>): string {
  return Object.entries(t).map(([k, v]) => `${k};dur=${round(v, 2)}`).join(", ");
}

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
      halo: t.halo,
      ...(t.score !== undefined ? { score: t.score } : {}),
    })),
    executions: r.plan.executions.map((e) => ({ model: e.model, shape: e.dims, gflops: e.flops / 1e9 })),
    glimpses: r.plan.glimpses ?? [],
    ...(r.plan.stop ? { stop: r.plan.stop } : {}),
  };
}

/** Credit as a budget: the effective budget is min(X-Budget-GFLOPs, remaining credit). */
function effectiveBudget(header: number | undefined, credit: number | undefined): number | undefined {
  if (credit === undefined) return header;
  return header === undefined ? credit : Math.min(header, credit);
}

/** Builds the segment route. */
export function segmentRoutes(services: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.post("/v1/segment/:task", authenticate(services), async (c) => {
    const started = performance.now();
    const { config, segmenter } = services;
    const meter = services.meter()!;
    const caller = c.get("caller");
    if (caller.key) c.set("extraHeaders", await meter.admit(caller.id, caller.key.rateLimit));
    if (!segmenter()) throw new UnavailableError("models are still loading", 2, "not-ready");
    const h = parseHeaders(c.req.raw.headers);
    c.set("mode", h["x-mode"]);
    const maskFormat = MaskFormat.safeParse(c.req.query("mask") ?? undefined);
    if (!maskFormat.success) {
      throw new UnprocessableError("query parameter mask must be 'png' or 'rle'", "invalid-query");
    }
    const idem = c.req.header("idempotency-key");
    if (idem !== undefined && !IdempotencyKey.safeParse(idem).success) {
      throw new UnprocessableError("Idempotency-Key must be 1-255 visible ASCII characters", "invalid-header", {
        header: "idempotency-key",
      });
    }
    const task = c.req.param("task");
    // Unknown tasks fail before the body is read.
    services.registry()!.task(task);
    c.set("task", task);
    const upload = await readUpload(c.req.raw, config.MAX_UPLOAD_BYTES);
    const wantsPng = (c.req.header("accept") ?? "").split(",").some((a) => a.trim().startsWith("image/png"));

    // Same key + same request = replay; same key + different request = 422.
    const fingerprint = idem === undefined ? "" : await sha256(
      JSON.stringify([task, h, wantsPng, maskFormat.data, await sha256(upload.bytes)]),
    );
    if (idem !== undefined) {
      const stored = await meter.beginIdempotent(caller.id, idem, fingerprint);
      if (stored) {
        const remaining = await meter.remaining(caller.id);
        return new Response(stored.body as Uint8Array<ArrayBuffer>, {
          status: stored.status,
          headers: {
            ...stored.headers,
            "Idempotent-Replayed": "true",
            "X-Credit-Remaining-GFLOPs": creditHeader(remaining),
          },
        });
      }
    }
    try {
      const remaining = await meter.remaining(caller.id);
      const credit = remaining === null ? undefined : flopsToGflops(remaining);
      if (credit !== undefined && credit <= 0) {
        throw new PaymentRequiredError("credit exhausted: top up this key to continue", credit);
      }
      let result: SegmentResult;
      try {
        result = await segmenter()!.segment({
          task,
          mode: h["x-mode"],
          model: h["x-model"],
          budgetGflops: effectiveBudget(h["x-budget-gflops"], credit),
          deadlineMs: h["x-deadline-ms"],
          confidence: h["x-confidence"],
          bytes: upload.bytes,
          contentType: upload.contentType,
        });
      } catch (err) {
        // When the credit, not the caller's budget, is what no plan fits: 402.
        const creditBound = credit !== undefined &&
          (h["x-budget-gflops"] === undefined || credit < h["x-budget-gflops"]);
        if (err instanceof UnprocessableError && err.slug === "budget-too-small" && creditBound) {
          throw new PaymentRequiredError(
            `credit of ${credit} GFLOPs does not cover the cheapest plan for this image (${err.extra.min_gflops} GFLOPs)`,
            credit,
            { min_gflops: err.extra.min_gflops },
          );
        }
        throw err;
      }
      c.set("mode", result.plan.mode);
      c.set("computedGflops", result.cost.gflops);
      c.set("timings", result.timings);

      const e0 = performance.now();
      const png = wantsPng || maskFormat.data === "png"
        ? encodeMaskPng(result.mask, result.width, result.height)
        : null;
      const encodeMs = performance.now() - e0;
      const timings = { ...result.timings, encode: encodeMs, total: performance.now() - started };
      const headers: Record<string, string> = {
        "X-Cost-GFLOPs": String(result.cost.gflops),
        "X-Cost-GMACs": String(result.cost.gmacs),
        "Server-Timing": serverTiming(timings),
        "X-Backend": result.backend,
      };
      let body: Uint8Array;
      if (wantsPng) {
        headers["content-type"] = "image/png";
        body = png!;
      } else {
        headers["content-type"] = "application/json";
        const mask = png
          ? { format: "png", encoding: "base64", data: base64(png) }
          : { format: "rle", ...encodeMaskRle(result.mask, result.width, result.height) };
        body = new TextEncoder().encode(JSON.stringify({
          id: c.get("requestId"),
          task: result.task.name,
          width: result.width,
          height: result.height,
          classes: result.task.classes,
          mask,
          plan: planJson(result),
          cost: {
            gflops: result.cost.gflops,
            gmacs: result.cost.gmacs,
            flops: result.cost.flops,
            breakdown: result.cost.breakdown,
          },
          budget: { gflops: h["x-budget-gflops"] ?? null, min_gflops: result.plan.minFlops / 1e9 },
          backend: result.backend,
          timings_ms: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, round(v, 2)])),
        }));
      }
      // Nothing is served until it is billed: a failed write is a 503.
      const billed = await meter.commit({
        requestId: c.get("requestId"),
        keyId: caller.id,
        task,
        mode: result.plan.mode,
        flops: result.cost.flops,
        macs: result.cost.macs,
        status: 200,
        idempotency: idem === undefined ? undefined : {
          key: idem,
          fingerprint,
          response: { status: 200, headers: { ...headers, "X-Request-Id": c.get("requestId") }, body },
        },
      });
      c.set("billedGflops", result.cost.gflops);
      headers["X-Credit-Remaining-GFLOPs"] = creditHeader(billed.remaining);
      return new Response(body as Uint8Array<ArrayBuffer>, { status: 200, headers });
    } catch (err) {
      if (idem !== undefined) await meter.release(caller.id, idem).catch(() => {});
      throw err;
    }
  });
  return app;
}

function creditHeader(remaining: bigint | null): string {
  return remaining === null ? "unlimited" : String(flopsToGflops(remaining));
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}
