// /openapi.json is a valid OpenAPI 3.1 document, names every route the app serves, and the real responses of a
// running server parse under the schemas it was generated from.

import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import type { z } from "zod";
import { samplePage, testServer } from "../_util.ts";
import { createApp, Services } from "../../routes/app.ts";
import { loadConfig } from "../../lib/config.ts";
import * as S from "../../routes/schemas.ts";

const ADMIN = "admin-token-openapi-0123456789";
const server = await testServer({ AUTH: "on", ADMIN_TOKEN: ADMIN, WORKERS: "1" });
const { image } = await samplePage(128, 96);
const png = new Uint8Array(await image.encode());

const opts = { sanitizeResources: false, sanitizeOps: false };

async function fetchOpenApi() {
  const res = await fetch(`${server.url}/openapi.json`);
  assert.equal(res.status, 200);
  return await res.json();
}

function parses(schema: z.ZodType, body: unknown, what: string) {
  const r = schema.safeParse(body);
  assert.ok(r.success, `${what}: ${r.success ? "" : JSON.stringify(r.error.issues.slice(0, 3))}`);
}

Deno.test({
  ...opts,
  name: "/openapi.json validates as OpenAPI 3.1",
  async fn() {
    const doc = await fetchOpenApi();
    assert.equal(doc.openapi, "3.1.0");
    const result = await new Validator().validate(doc);
    assert.ok(result.valid, JSON.stringify(result.errors, null, 1)?.slice(0, 2000));
  },
});

Deno.test({
  ...opts,
  name: "the validator rejects a broken document (the check can fail)",
  async fn() {
    const doc = await fetchOpenApi();
    doc.paths["/v1/models"].get.responses = "nope";
    const result = await new Validator().validate(doc);
    assert.equal(result.valid, false);
  },
});

Deno.test({
  ...opts,
  name: "every route the app serves is in the document, with its errors and headers",
  async fn() {
    const doc = await fetchOpenApi();
    const routes = createApp(new Services(loadConfig({}))).routes.filter((r) => r.method !== "ALL");
    assert.ok(routes.length >= 12);
    for (const r of routes) {
      const path = r.path.replace(/:([A-Za-z_]+)/g, "{$1}");
      assert.ok(doc.paths[path]?.[r.method.toLowerCase()], `${r.method} ${path} missing from /openapi.json`);
    }
    // Security per operation (redocly's security-defined): public routes say `security: []`, the rest name a scheme.
    const publicOps = ["models", "health", "ready", "metrics", "openapi", "docs", "docsAsset", "demo"];
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, Record<string, unknown>>>)) {
      for (const [method, op] of Object.entries(ops)) {
        const security = op.security as unknown[] | undefined;
        assert.ok(Array.isArray(security), `${method} ${path} declares no security`);
        if (publicOps.includes(op.operationId as string)) assert.deepEqual(security, [], `${path} is public`);
        else assert.ok(security.length > 0, `${method} ${path} needs a security scheme`);
      }
    }
    const seg = doc.paths["/v1/segment/{task}"].post;
    const statuses = Object.keys(seg.responses);
    for (const s of ["200", "400", "401", "402", "403", "404", "409", "413", "415", "422", "429", "503", "504"]) {
      assert.ok(statuses.includes(s), `segment lacks ${s}`);
    }
    const headers = seg.parameters.filter((p: { in: string }) => p.in === "header").map((p: { name: string }) =>
      p.name
    );
    for (const h of ["X-Mode", "X-Model", "X-Budget-GFLOPs", "X-Confidence", "X-Deadline-Ms", "Idempotency-Key"]) {
      assert.ok(headers.includes(h), `segment lacks header ${h}`);
    }
    for (const h of ["X-Cost-GFLOPs", "X-Request-Id", "Server-Timing", "X-Credit-Remaining-GFLOPs"]) {
      assert.ok(seg.responses["200"].headers[h], `200 lacks header ${h}`);
    }
  },
});

Deno.test({
  ...opts,
  name: "real responses parse under the documented schemas",
  async fn() {
    try {
      await server.ready;
      const adminHeaders = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
      const created = await fetch(`${server.url}/v1/admin/keys`, {
        method: "POST",
        headers: adminHeaders,
        body: JSON.stringify({ name: "schema", credit_gflops: 1000 }),
      });
      assert.equal(created.status, 201);
      const key = await created.json();
      parses(S.CreatedKeyResponse, key, "POST /v1/admin/keys");
      const auth = { authorization: `Bearer ${key.secret}` };

      for (const [mode, query] of [["fixed", ""], ["adaptive", "?mask=rle"]]) {
        const res = await fetch(`${server.url}/v1/segment/text${query}`, {
          method: "POST",
          body: png,
          headers: { ...auth, "content-type": "image/png", "x-mode": mode },
        });
        assert.equal(res.status, 200);
        parses(S.SegmentResponse, await res.json(), `segment ${mode}${query}`);
      }
      const checks: [string, z.ZodType, RequestInit?][] = [
        ["/v1/models", S.ModelsResponse],
        ["/v1/usage", S.UsageResponse, { headers: auth }],
        ["/v1/usage/events?limit=1", S.EventsResponse, { headers: auth }],
        ["/v1/admin/keys", S.KeyListResponse, { headers: adminHeaders }],
        [`/v1/admin/keys/${key.id}/topup`, S.KeyResponse, {
          method: "POST",
          headers: adminHeaders,
          body: JSON.stringify({ gflops: 5 }),
        }],
        [`/v1/admin/keys/${key.id}/revoke`, S.KeyResponse, { method: "POST", headers: adminHeaders }],
        ["/healthz", S.HealthResponse],
        ["/readyz", S.ReadyResponse],
      ];
      for (const [path, schema, init] of checks) {
        const res = await fetch(`${server.url}${path}`, init);
        assert.equal(res.status, 200, path);
        parses(schema, await res.json(), path);
      }
      // Errors: problem+json under the Problem schema.
      const errors: [string, RequestInit, number][] = [
        ["/v1/segment/text", { method: "POST", body: png, headers: { "content-type": "image/png" } }, 401],
        ["/v1/segment/text", { method: "POST", body: png, headers: { ...auth, "content-type": "image/png" } }, 403],
        ["/v1/usage", { headers: { authorization: "Bearer unknown-key" } }, 401],
        ["/v1/admin/keys", { method: "POST", headers: adminHeaders, body: '{"name":""}' }, 422],
        ["/nowhere", {}, 404],
      ];
      for (const [path, init, status] of errors) {
        const res = await fetch(`${server.url}${path}`, init);
        assert.equal(res.status, status, path);
        assert.equal(res.headers.get("content-type"), "application/problem+json");
        parses(S.Problem, await res.json(), `${status} ${path}`);
      }
    } finally {
      await server.close();
    }
  },
});
