// The HTTP edge over real sockets: CORS for browser apps, the API reference page, 405 with Allow, request ids and
// Server-Timing, and credit as a ceiling — a keyed caller with plenty of credit gets exactly the anonymous plan
// (same cost, same mask); a short credit caps the budget; a credit under the cheapest plan is 402.

import assert from "node:assert/strict";
import { testServer } from "../_util.ts";

const ADMIN = "admin-token-edge-0123456789";
const keyed = await testServer({ AUTH: "on", ADMIN_TOKEN: ADMIN, WORKERS: "1", CORS_ORIGINS: "https://app.example" });
const anonymous = await testServer({ AUTH: "off", WORKERS: "1" });
const digits = await Deno.readFile(new URL("../fixtures/digits-test-0.png", import.meta.url));

async function createKey(creditGflops: number | null): Promise<string> {
  const res = await fetch(`${keyed.url}/v1/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "edge", credit_gflops: creditGflops }),
  });
  assert.equal(res.status, 201);
  return (await res.json()).secret;
}

function segment(url: string, headers: Record<string, string> = {}) {
  return fetch(`${url}/v1/segment/digits`, {
    method: "POST",
    body: digits,
    headers: { "content-type": "image/png", ...headers },
  });
}

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...opts,
  name: "CORS: a preflight from an allowed origin is answered with the allowed and exposed headers",
  async fn() {
    const res = await fetch(`${keyed.url}/v1/segment/digits`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, x-budget-gflops, idempotency-key",
      },
    });
    await res.body?.cancel();
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example");
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(",");
    for (
      const h of ["authorization", "content-type", "idempotency-key", "x-budget-gflops", "x-mode", "x-deadline-ms"]
    ) {
      assert.ok(allowed.includes(h), `preflight does not allow ${h}: ${allowed}`);
    }
    assert.match(res.headers.get("access-control-allow-methods") ?? "", /POST/);

    // An origin not on CORS_ORIGINS gets no grant; a real request from an allowed one sees the cost headers.
    const other = await fetch(`${keyed.url}/healthz`, { headers: { origin: "https://evil.example" } });
    await other.body?.cancel();
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    const secret = await createKey(100);
    const real = await segment(keyed.url, { origin: "https://app.example", authorization: `Bearer ${secret}` });
    await real.body?.cancel();
    assert.equal(real.status, 200);
    assert.equal(real.headers.get("access-control-allow-origin"), "https://app.example");
    const exposed = (real.headers.get("access-control-expose-headers") ?? "").split(",");
    for (const h of ["X-Cost-GFLOPs", "X-Credit-Remaining-GFLOPs", "X-Request-Id", "Server-Timing", "RateLimit"]) {
      assert.ok(exposed.includes(h), `${h} not exposed: ${exposed}`);
    }
    assert.equal(real.headers.get("timing-allow-origin"), "https://app.example");
  },
});

Deno.test({
  ...opts,
  name: "CORS: any origin by default",
  async fn() {
    const res = await fetch(`${anonymous.url}/v1/models`, { headers: { origin: "https://anywhere.example" } });
    await res.body?.cancel();
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  },
});

Deno.test({
  ...opts,
  name: "/docs renders the API reference from /openapi.json, with its assets served locally",
  async fn() {
    const res = await fetch(`${anonymous.url}/docs`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    const html = await res.text();
    assert.match(html, /\/openapi\.json/);
    const assets = [...html.matchAll(/(?:href|src)="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(assets.length, 2, `assets: ${assets}`);
    for (const path of assets) {
      assert.ok(path.startsWith("/docs/assets/"), `${path} is not served by this server`);
      const asset = await fetch(`${anonymous.url}${path}`);
      assert.equal(asset.status, 200, path);
      assert.ok((await asset.arrayBuffer()).byteLength > 10_000, `${path} is too small to be Swagger UI`);
    }
    const missing = await fetch(`${anonymous.url}/docs/assets/swagger-ui-dist/package.json`);
    await missing.body?.cancel();
    assert.equal(missing.status, 404);
  },
});

Deno.test({
  ...opts,
  name: "a wrong method on a known route is 405 with Allow; an unknown route stays 404",
  async fn() {
    const get = await fetch(`${anonymous.url}/v1/segment/text`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
    assert.equal(get.headers.get("content-type"), "application/problem+json");
    assert.match(get.headers.get("x-request-id") ?? "", /^req_[0-9a-f]{24}$/);
    const problem = await get.json();
    assert.equal(problem.status, 405);
    assert.deepEqual(problem.allow, ["POST"]);

    const post = await fetch(`${anonymous.url}/healthz`, { method: "POST" });
    await post.body?.cancel();
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");

    const nowhere = await fetch(`${anonymous.url}/v1/nowhere`, { method: "DELETE" });
    await nowhere.body?.cancel();
    assert.equal(nowhere.status, 404);
  },
});

Deno.test({
  ...opts,
  name:
    "request ids are minted by the server (a client's X-Request-Id is not taken over); Server-Timing has every phase",
  async fn() {
    const res = await segment(anonymous.url, { "x-request-id": "my-own-id" });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.match(res.headers.get("x-request-id")!, /^req_[0-9a-f]{24}$/);
    assert.equal(body.id, res.headers.get("x-request-id"));
    const timing = res.headers.get("server-timing")!;
    for (const name of ["read", "decode", "plan", "queue", "infer", "model", "stitch", "encode", "bill", "total"]) {
      assert.match(timing, new RegExp(`(^|,\\s*)${name};dur=[\\d.]+`), `${name} missing from ${timing}`);
      // timings_ms holds the segmentation's phases; receiving the body and billing it (after the body is rendered) are
      // in Server-Timing only.
      if (name !== "read" && name !== "bill") {
        assert.equal(typeof body.timings_ms[name], "number", `timings_ms.${name}`);
      }
    }
  },
});

Deno.test({
  ...opts,
  name: "credit is a ceiling: with plenty of credit a keyed caller gets the anonymous plan, cost and mask",
  async fn() {
    const secret = await createKey(1000);
    for (const headers of [{}, { "x-mode": "glimpse" }, { "x-budget-gflops": "0.8" }] as Record<string, string>[]) {
      const anon = await segment(anonymous.url, headers);
      const withKey = await segment(keyed.url, { ...headers, authorization: `Bearer ${secret}` });
      assert.equal(anon.status, 200);
      assert.equal(withKey.status, 200, await withKey.clone().text());
      const a = await anon.json(), k = await withKey.json();
      const what = JSON.stringify(headers);
      assert.equal(withKey.headers.get("x-cost-gflops"), anon.headers.get("x-cost-gflops"), what);
      assert.equal(k.cost.flops, a.cost.flops, what);
      assert.deepEqual(k.plan.tiles, a.plan.tiles, what);
      assert.equal(k.mask.data, a.mask.data, `${what}: masks differ`);
      assert.equal(k.budget.gflops, a.budget.gflops, what);
    }
  },
});

Deno.test({
  ...opts,
  name: "credit is a ceiling: a short credit caps the budget, and under the cheapest plan it is 402",
  async fn() {
    const anon = await (await segment(anonymous.url)).json();
    const cheapest = anon.budget.min_gflops as number;
    assert.ok(anon.cost.gflops > cheapest, "the anonymous plan should cost more than the cheapest one");

    const short = (cheapest + anon.cost.gflops) / 2;
    const secret = await createKey(short);
    const capped = await segment(keyed.url, { authorization: `Bearer ${secret}` });
    assert.equal(capped.status, 200, await capped.clone().text());
    const body = await capped.json();
    assert.ok(body.cost.gflops <= short, `spent ${body.cost.gflops} of a credit of ${short}`);
    assert.ok(Math.abs(body.budget.gflops - short) < 1e-9, `budget ${body.budget.gflops}`);
    const left = Number(capped.headers.get("x-credit-remaining-gflops"));
    assert.ok(Math.abs(left - (short - body.cost.gflops)) < 1e-9, `credit left ${left}`);

    const broke = await createKey(cheapest / 2);
    const refused = await segment(keyed.url, { authorization: `Bearer ${broke}` });
    assert.equal(refused.status, 402);
    const problem = await refused.json();
    assert.equal(problem.credit_remaining_gflops, cheapest / 2);
    assert.ok(problem.min_gflops >= cheapest, `min_gflops ${problem.min_gflops} < ${cheapest}`);
  },
});

Deno.test({
  ...opts,
  name: "edge servers close",
  async fn() {
    await keyed.close();
    await anonymous.close();
  },
});
