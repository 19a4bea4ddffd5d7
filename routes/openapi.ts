// GET /openapi.json: the OpenAPI 3.1 document, generated from the zod schemas in schemas.ts (zod 4's JSON Schema
// output is draft 2020-12, which is OpenAPI 3.1's schema dialect).

import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "./app.ts";
import * as S from "./schemas.ts";

type Json = Record<string, unknown>;

function schemaOf(schema: z.ZodType, io: "input" | "output" = "output"): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Json;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ "application/json": { schema: ref(name) } });

const ERROR_TEXT: Record<number, string> = {
  400: "not a decodable image, malformed headers or multipart, bad cursor",
  401: "missing or unknown API key (or admin token)",
  402: "credit exhausted or below the cheapest plan (`credit_remaining_gflops`, `min_gflops`); nothing is billed",
  403: "revoked key, or wrong admin token",
  404: "unknown task, model, key or route",
  405: "the path exists under another method: see Allow",
  409: "a request with this Idempotency-Key is still running",
  413: "body over MAX_UPLOAD_BYTES, or image over MAX_PIXELS (checked from the header before decoding)",
  415: "unsupported media type (e.g. WebP)",
  422: "budget below the cheapest plan (`min_gflops`), bad header or query values, Idempotency-Key reused " +
    "with another body, mode unavailable for the task, or an image whose first model runs would be over " +
    "MAX_EXEC_PIXELS (`execution-too-large`, checked from the header before decoding)",
  429: "rate limited: see Retry-After, RateLimit and RateLimit-Policy",
  503: "queue full, not ready, worker crashed, or the billing write failed (safe to retry): see Retry-After",
  504: "deadline or server timeout exceeded",
};

const header = (description: string, schema: Json = { type: "string" }) => ({ description, schema });

const RATE_HEADERS = {
  "RateLimit-Policy": header('IETF draft: `"default";q=<requests>;w=<window seconds>`'),
  RateLimit: header('IETF draft: `"default";r=<remaining>;t=<seconds to reset>`'),
};

function errors(...statuses: number[]) {
  const out: Json = {};
  for (const s of statuses) {
    const headers: Json = { "X-Request-Id": header("request id") };
    if (s === 429 || s === 503) headers["Retry-After"] = header("seconds", { type: "integer" });
    if (s === 405) headers.Allow = header("the methods the path serves");
    if (s === 429) Object.assign(headers, RATE_HEADERS);
    out[String(s)] = {
      description: ERROR_TEXT[s],
      headers,
      content: { "application/problem+json": { schema: ref("Problem") } },
    };
  }
  return out;
}

function segmentOperation(): Json {
  const headerParams = Object.entries(S.SegmentHeaders.shape).map(([name, schema]) => ({
    name: name.replace(/(^|-)([a-z])/g, (_m, d, ch) => d + ch.toUpperCase()).replace("Gflops", "GFLOPs"),
    in: "header",
    required: false,
    description: (schema as z.ZodType).description,
    schema: schemaOf(schema as z.ZodType, "input"),
  }));
  const binary = { schema: { type: "string", format: "binary" } };
  return {
    operationId: "segment",
    summary: "Segment an image within a compute budget; the response carries its exact FLOP cost",
    security: [{ apiKey: [] }, {}],
    parameters: [
      { name: "task", in: "path", required: true, schema: { type: "string" }, description: "see /v1/models" },
      {
        name: "mask",
        in: "query",
        required: false,
        schema: schemaOf(S.MaskFormat, "input"),
        description: "mask encoding in the JSON body",
      },
      ...headerParams,
      {
        name: "Idempotency-Key",
        in: "header",
        required: false,
        schema: schemaOf(S.IdempotencyKey, "input"),
        description: "a retry with the same key (per API key, 24 h) replays the first response and is not billed again",
      },
      {
        name: "Accept",
        in: "header",
        required: false,
        schema: { type: "string", enum: ["application/json", "image/png"] },
        description: "image/png: the body is the mask PNG, the cost is in the headers",
      },
    ],
    requestBody: {
      required: true,
      content: {
        "image/png": binary,
        "image/jpeg": binary,
        "image/gif": binary,
        "image/tiff": binary,
        "application/octet-stream": binary,
        "multipart/form-data": {
          schema: {
            type: "object",
            properties: { image: { type: "string", format: "binary" } },
            required: ["image"],
          },
        },
      },
    },
    responses: {
      "200": {
        description: "the mask, its plan and its cost",
        headers: {
          "X-Request-Id": header("request id"),
          "X-Cost-GFLOPs": header("exact GFLOPs of the model executions run", { type: "number" }),
          "X-Cost-GMACs": header("exact GMACs", { type: "number" }),
          "X-Credit-Remaining-GFLOPs": header("the key's remaining credit after this request, or `unlimited`"),
          "X-Backend": header("wasm-simd, webgpu, …"),
          "Server-Timing": header("read, decode, plan, queue, infer, model, stitch, encode, bill, total (ms)"),
          "Idempotent-Replayed": header("`true` when this is a replay of an earlier response"),
          ...RATE_HEADERS,
        },
        content: {
          ...json("SegmentResponse"),
          "image/png": { schema: { type: "string", format: "binary" } },
        },
      },
      ...errors(400, 401, 402, 403, 404, 405, 409, 413, 415, 422, 429, 503, 504),
    },
  };
}

/** Builds the OpenAPI document. */
export function openApiDocument(): Json {
  const schemas: Json = {
    Problem: schemaOf(S.Problem),
    SegmentResponse: schemaOf(S.SegmentResponse),
    ModelsResponse: schemaOf(S.ModelsResponse),
    UsageResponse: schemaOf(S.UsageResponse),
    UsageEvent: schemaOf(S.UsageEvent),
    EventsResponse: schemaOf(S.EventsResponse),
    KeyResponse: schemaOf(S.KeyResponse),
    CreatedKeyResponse: schemaOf(S.CreatedKeyResponse),
    KeyListResponse: schemaOf(S.KeyListResponse),
    CreateKeyBody: schemaOf(S.CreateKeyBody, "input"),
    TopUpBody: schemaOf(S.TopUpBody, "input"),
    HealthResponse: schemaOf(S.HealthResponse),
    ReadyResponse: schemaOf(S.ReadyResponse),
  };
  const query = (schema: z.ZodObject) =>
    Object.entries(schema.shape).map(([name, s]) => ({
      name,
      in: "query",
      required: false,
      description: (s as z.ZodType).description,
      schema: schemaOf(s as z.ZodType, "input"),
    }));
  const keyId = { name: "id", in: "path", required: true, schema: { type: "string" } };
  const ok = (description: string, name: string, extra: Json = {}) => ({
    description,
    ...extra,
    content: json(name),
  });
  return {
    openapi: "3.1.0",
    info: {
      title: "thriftseg",
      version: "0.1.0",
      description: "Image segmentation that spends compute only where an image needs it, reports the exact FLOP " +
        "cost of every request, and meters it for billing.",
    },
    servers: [{ url: "/" }],
    components: {
      schemas,
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "an API key (when AUTH=on)" },
        adminToken: { type: "http", scheme: "bearer", description: "the server's ADMIN_TOKEN" },
      },
    },
    paths: {
      "/v1/segment/{task}": { post: segmentOperation() },
      "/v1/models": {
        get: {
          operationId: "models",
          security: [],
          summary: "Tasks, classes and models with their FLOPs at the reference size and test mIoU",
          responses: { "200": ok("the model zoo", "ModelsResponse"), ...errors(405, 503) },
        },
      },
      "/v1/usage": {
        get: {
          operationId: "usage",
          summary: "The caller's per-day totals: requests, GFLOPs, billed amount",
          security: [{ apiKey: [] }],
          parameters: query(S.UsageQuery),
          responses: { "200": ok("per-day totals", "UsageResponse"), ...errors(401, 403, 422) },
        },
      },
      "/v1/usage/events": {
        get: {
          operationId: "usageEvents",
          summary: "The caller's usage events (CloudEvents), oldest first, with a resumable cursor",
          security: [{ apiKey: [] }],
          parameters: query(S.EventsQuery),
          responses: { "200": ok("one page of events", "EventsResponse"), ...errors(400, 401, 403, 422) },
        },
      },
      "/v1/admin/keys": {
        get: {
          operationId: "listKeys",
          summary: "All API keys with their credit",
          security: [{ adminToken: [] }],
          responses: { "200": ok("the keys", "KeyListResponse"), ...errors(401, 403) },
        },
        post: {
          operationId: "createKey",
          summary: "Create an API key; its secret is shown only in this response",
          security: [{ adminToken: [] }],
          requestBody: { required: true, content: json("CreateKeyBody") },
          responses: { "201": ok("the new key with its secret", "CreatedKeyResponse"), ...errors(401, 403, 422) },
        },
      },
      "/v1/admin/keys/{id}/revoke": {
        post: {
          operationId: "revokeKey",
          summary: "Revoke a key: its requests get 403 from now on",
          security: [{ adminToken: [] }],
          parameters: [keyId],
          responses: { "200": ok("the revoked key", "KeyResponse"), ...errors(401, 403, 404) },
        },
      },
      "/v1/admin/keys/{id}/topup": {
        post: {
          operationId: "topUpKey",
          summary: "Add GFLOPs of credit to a key",
          security: [{ adminToken: [] }],
          parameters: [keyId],
          requestBody: { required: true, content: json("TopUpBody") },
          responses: { "200": ok("the key after the top-up", "KeyResponse"), ...errors(401, 403, 404, 422) },
        },
      },
      "/healthz": {
        get: {
          operationId: "health",
          security: [],
          summary: "The process answers",
          responses: { "200": ok("up", "HealthResponse"), ...errors(405) },
        },
      },
      "/readyz": {
        get: {
          operationId: "ready",
          security: [],
          summary: "Models loaded and workers warm",
          responses: { "200": ok("ready", "ReadyResponse"), ...errors(405, 503) },
        },
      },
      "/metrics": {
        get: {
          operationId: "metrics",
          security: [],
          summary: "Prometheus text format 0.0.4",
          responses: {
            "200": { description: "metrics", content: { "text/plain": { schema: { type: "string" } } } },
            ...errors(405),
          },
        },
      },
      "/openapi.json": {
        get: {
          operationId: "openapi",
          security: [],
          summary: "This document",
          responses: {
            "200": { description: "OpenAPI 3.1", content: { "application/json": { schema: {} } } },
            ...errors(405),
          },
        },
      },
      "/docs": {
        get: {
          operationId: "docs",
          security: [],
          summary: "Interactive API reference (Swagger UI) rendered from /openapi.json",
          responses: {
            "200": { description: "HTML", content: { "text/html": { schema: { type: "string" } } } },
            ...errors(405),
          },
        },
      },
      "/docs/assets/swagger-ui-dist/{file}": {
        get: {
          operationId: "docsAsset",
          security: [],
          summary: "The script and stylesheet of /docs, served from the npm package swagger-ui-dist",
          parameters: [{
            name: "file",
            in: "path",
            required: true,
            schema: { type: "string", enum: ["swagger-ui.css", "swagger-ui-bundle.js"] },
          }],
          responses: {
            "200": {
              description: "the asset",
              content: {
                "text/css": { schema: { type: "string" } },
                "text/javascript": { schema: { type: "string" } },
              },
            },
            ...errors(404),
          },
        },
      },
      "/": {
        get: {
          operationId: "demo",
          security: [],
          summary: "The demo page",
          responses: {
            "200": { description: "HTML", content: { "text/html": { schema: { type: "string" } } } },
            ...errors(405),
          },
        },
      },
    },
  };
}

/** Builds GET /openapi.json (the document is generated once). */
export function openApiRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  let doc: Json | null = null;
  app.get("/openapi.json", (c) => c.json(doc ??= openApiDocument()));
  return app;
}
