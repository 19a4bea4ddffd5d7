// Zod schemas of every request and response shape (DESIGN.md §4). The routes parse their inputs with them,
// /openapi.json is generated from them, and the end-to-end tests check real responses against them.

import { z } from "zod";
import { KeyJson } from "../lib/keys.ts";

const decimal = (name: string) =>
  z.string().trim().regex(/^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/, `${name} must be a non-negative decimal number`)
    .transform(Number).refine(Number.isFinite, `${name} is out of range`);

/** Request headers of POST /v1/segment/:task (names lower-case, as Headers gives them). */
export const SegmentHeaders = z.object({
  "x-mode": z.enum(["adaptive", "glimpse", "fixed"]).default("adaptive")
    .describe("adaptive (default), glimpse, or fixed"),
  "x-model": z.string().min(1).max(200).optional().describe("model id for fixed mode (see /v1/models)"),
  "x-budget-gflops": decimal("X-Budget-GFLOPs").optional()
    .describe("hard cap on this request's model GFLOPs; 422 with min_gflops when no plan fits"),
  "x-confidence": decimal("X-Confidence").refine((v) => v > 0 && v <= 1, "X-Confidence must be in (0, 1]")
    .optional().describe("glimpse: stop once the image's confidence reaches this, in (0, 1]"),
  "x-deadline-ms": decimal("X-Deadline-Ms").refine((v) => v >= 1 && v <= 600_000, "X-Deadline-Ms must be 1..600000")
    .optional().describe("latency budget in ms; glimpse returns its best mask so far"),
});

/** `?mask=` of POST /v1/segment/:task. */
export const MaskFormat = z.enum(["png", "rle"]).default("png");

/** Idempotency-Key header. */
export const IdempotencyKey = z.string().regex(/^[\x21-\x7e]{1,255}$/, "1-255 visible ASCII characters");

const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "use YYYY-MM-DD").refine(
  (d) => !Number.isNaN(Date.parse(d + "T00:00:00Z")),
  "not a calendar day",
);

/** Query of GET /v1/usage. */
export const UsageQuery = z.object({
  from: Day.optional().describe("first day, UTC (default: 30 days before `to`)"),
  to: Day.optional().describe("last day, UTC (default: today)"),
});
/** Query of GET /v1/usage/events. */
export const EventsQuery = z.object({
  cursor: z.string().max(1024).optional().describe("next_cursor of the previous page"),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** Bodies of POST /v1/admin/keys and …/topup: shared with `deno task keys`, so they live in lib/. */
export { CreateKeyBody, TopUpBody } from "../lib/keys.ts";

// ---- responses ----

const Money = z.object({ amount: z.number(), currency: z.string() });

/** application/problem+json (RFC 9457) with thriftseg's extension fields. */
export const Problem = z.object({
  type: z.string().describe("https://thriftseg.dev/problems/<slug>"),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  instance: z.string().optional().describe("the request id"),
  min_gflops: z.number().optional().describe("422 budget-too-small / 402: the cheapest plan's GFLOPs"),
  credit_remaining_gflops: z.number().optional().describe("402: the key's remaining credit"),
}).loose();

const Tile = z.object({
  x: z.number().int(),
  y: z.number().int(),
  w: z.number().int(),
  h: z.number().int(),
  model: z.string().nullable().describe("null: the tile kept the global model's output (or was skipped)"),
  scale: z.number().describe("resolution factor the tile ran at (1 = full)"),
  scale_y: z.number().optional().describe("vertical resolution factor, when it differs from scale (a text glance)"),
  halo: z.number().int().describe(
    "real neighbour pixels fed around the core (a text window gets more on a side where text runs on into another's)",
  ),
  score: z.number().optional(),
});

const Glimpse = z.object({
  step: z.number().int(),
  tile: z.object({ x: z.number().int(), y: z.number().int(), w: z.number().int(), h: z.number().int() }).nullable(),
  model: z.string(),
  gflops: z.number().describe("cumulative GFLOPs after this step"),
  confidence: z.number().describe("the image's confidence after this step"),
});

/** 200 JSON body of POST /v1/segment/:task. */
export const SegmentResponse = z.object({
  id: z.string(),
  task: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  classes: z.array(z.string()),
  mask: z.union([
    z.object({ format: z.literal("png"), encoding: z.literal("base64"), data: z.string() }),
    z.object({
      format: z.literal("rle"),
      size: z.tuple([z.number().int(), z.number().int()]).describe("[height, width]; runs in row-major order"),
      values: z.array(z.number().int()),
      counts: z.array(z.number().int()),
    }),
  ]),
  plan: z.object({
    mode: z.enum(["adaptive", "glimpse", "fixed"]),
    tiles: z.array(Tile),
    executions: z.array(z.object({
      model: z.string(),
      shape: z.array(z.number().int()),
      tails: z.array(z.array(z.number().int())).optional().describe(
        "a window's tail regions [[H, W], ...] where not the whole window: the model's last layers run only there",
      ),
      gflops: z.number(),
    })),
    glimpses: z.array(Glimpse),
    stop: z.string().optional().describe(
      "glimpse: why it stopped (confidence, budget, never-dearer, deadline, exhausted)",
    ),
    coverage: z.object({ full_res_share: z.number(), unresolved_share: z.number() }).optional()
      .describe("share of the image run at full resolution, and left unsure and unfocused by a budget"),
  }).loose(),
  cost: z.object({
    gflops: z.number(),
    gmacs: z.number(),
    flops: z.number().int(),
    breakdown: z.array(z.object({ model: z.string(), runs: z.number().int(), gflops: z.number(), gmacs: z.number() })),
  }),
  budget: z.object({
    gflops: z.number().nullable().describe(
      "the budget the plan ran under: X-Budget-GFLOPs, or the credit where it capped it",
    ),
    min_gflops: z.number(),
  }),
  backend: z.string(),
  timings_ms: z.record(z.string(), z.number()),
});

/** GET /v1/models. */
export const ModelsResponse = z.object({
  tasks: z.array(z.object({
    name: z.string(),
    classes: z.array(z.string()),
    channels: z.number().int(),
    selector: z.string(),
    modes: z.array(z.string()),
    reference: z.object({ width: z.number().int(), height: z.number().int() }),
    models: z.array(z.object({
      id: z.string(),
      role: z.enum(["global", "local", "policy"]),
      description: z.string().nullable(),
      source: z.record(z.string(), z.string()),
      sha256: z.string(),
      input: z.object({ channels: z.number().int(), multiple: z.number().int() }),
      halo: z.number().int(),
      reference_shape: z.array(z.number().int()),
      gflops: z.number(),
      gmacs: z.number(),
      test_miou: z.number().nullable(),
    })),
  })),
});

/** GET /v1/usage. */
export const UsageResponse = z.object({
  subject: z.string(),
  from: z.string(),
  to: z.string(),
  price: z.object({ per_gflop: z.number(), currency: z.string() }),
  days: z.array(z.object({ day: z.string(), requests: z.number().int(), gflops: z.number(), billed: Money })),
  total: z.object({ requests: z.number().int(), gflops: z.number(), billed: Money }),
});

/** One usage event (CloudEvents 1.0, structured JSON). */
export const UsageEvent = z.object({
  specversion: z.literal("1.0"),
  id: z.string().describe("the request id"),
  source: z.string(),
  type: z.literal("thriftseg.segment"),
  subject: z.string().describe("the key id"),
  time: z.string(),
  datacontenttype: z.literal("application/json"),
  data: z.object({
    task: z.string(),
    mode: z.string(),
    flops: z.number().int(),
    gflops: z.number(),
    gmacs: z.number(),
    billed: Money,
    status: z.number().int(),
  }),
});

/** GET /v1/usage/events. */
export const EventsResponse = z.object({ events: z.array(UsageEvent), next_cursor: z.string().nullable() });

/** A key as the admin API shows it (never its secret, except once at creation). */
export const KeyResponse = KeyJson;
/** 201 body of POST /v1/admin/keys. */
export const CreatedKeyResponse = KeyResponse.extend({
  secret: z.string().describe("the API key; shown only in this response"),
});
/** GET /v1/admin/keys. */
export const KeyListResponse = z.object({ keys: z.array(KeyResponse) });

const WorkerStats = z.object({
  size: z.number().int(),
  ready: z.number().int(),
  busy: z.number().int(),
  queued: z.number().int(),
  restarts: z.number().int(),
  backend: z.string(),
});
/** GET /healthz. */
export const HealthResponse = z.object({ status: z.literal("ok") });
/** GET /readyz (200). */
export const ReadyResponse = z.object({
  status: z.literal("ready"),
  backend: z.string(),
  workers: WorkerStats,
  store: z.object({ ok: z.boolean(), latencyMs: z.number(), checkedAt: z.number() }).loose()
    .describe("the billing store's last health check"),
});
