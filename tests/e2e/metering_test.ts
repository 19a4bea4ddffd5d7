// Metering over real HTTP against a real Deno KV file: keys, credits,
// atomic debits under concurrency, idempotency, rate limits, isolation,
// injected billing faults, and a restart on the same data directory.

import assert from "node:assert/strict";
import { samplePage, testServer } from "../_util.ts";
import type { RunningServer } from "../../main.ts";

const ADMIN = "admin-token-for-tests-0123456789";
const dataDir = await Deno.makeTempDir({ prefix: "thriftseg-meter-" });
const env = { AUTH: "on", ADMIN_TOKEN: ADMIN, DATA_DIR: dataDir, WORKERS: "2", PRICE_PER_GFLOP: "0.5" };
const { image } = await samplePage(128, 128);
const png = new Uint8Array(await image.encode());

interface KeyJson {
  id: string;
  secret: string;
  credit_remaining_gflops: number | null;
  debited_gflops: number;
}

function admin(server: RunningServer, path: string, body?: unknown, token = ADMIN) {
  return fetch(`${server.url}/v1/admin${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function createKey(server: RunningServer, body: Record<string, unknown>): Promise<KeyJson> {
  const res = await admin(server, "/keys", { name: "test", ...body });
  assert.equal(res.status, 201);
  return await res.json();
}

async function getKey(server: RunningServer, id: string): Promise<KeyJson> {
  const { keys } = await (await admin(server, "/keys")).json();
  return keys.find((k: KeyJson) => k.id === id);
}

function segment(server: RunningServer, secret: string | null, headers: Record<string, string> = {}, body = png) {
  return fetch(`${server.url}/v1/segment/text`, {
    method: "POST",
    body,
    headers: {
      "content-type": "image/png",
      "x-mode": "fixed",
      ...(secret ? { authorization: `Bearer ${secret}` } : {}),
      ...headers,
    },
  });
}

async function events(server: RunningServer, secret: string) {
  const all = [];
  let cursor = "";
  for (;;) {
    const res = await fetch(`${server.url}/v1/usage/events?limit=2&cursor=${encodeURIComponent(cursor)}`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(res.status, 200);
    const page = await res.json();
    all.push(...page.events);
    if (!page.next_cursor) return all;
    cursor = page.next_cursor;
  }
}

Deno.test({
  name: "metering",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    let server = await testServer(env);
    // The cost of one request (fixed mode, 128×128 → one 1×3×128×128 call).
    const probe = await createKey(server, { credit_gflops: null });
    const first = await segment(server, probe.secret);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-credit-remaining-gflops"), "unlimited");
    const cost = (await first.json()).cost.flops as number;
    assert.ok(cost > 0);

    await t.step("admin API needs the admin token", async () => {
      const none = await fetch(`${server.url}/v1/admin/keys`);
      assert.equal(none.status, 401);
      await none.body?.cancel();
      const wrong = await admin(server, "/keys", undefined, "not-the-admin-token");
      assert.equal(wrong.status, 403);
      await wrong.body?.cancel();
      const bad = await admin(server, "/keys", { name: "", credit_gflops: -1 });
      assert.equal(bad.status, 422);
      await bad.body?.cancel();
    });

    await t.step("no key 401, unknown key 401, revoked key 403", async () => {
      for (const secret of [null, "tsk_not_a_real_key"]) {
        const res = await segment(server, secret);
        assert.equal(res.status, 401);
        assert.equal(res.headers.get("content-type"), "application/problem+json");
        await res.body?.cancel();
      }
      const k = await createKey(server, { credit_gflops: 100 });
      assert.equal((await admin(server, `/keys/${k.id}/revoke`, {})).status, 200);
      const res = await segment(server, k.secret);
      assert.equal(res.status, 403);
      assert.match((await res.json()).type, /key-revoked/);
    });

    await t.step("30 parallel requests on credit for exactly 7: 7 succeed, the rest 402, debits exact", async () => {
      const n = 7;
      const k = await createKey(server, { credit_gflops: (n * cost + cost / 2) / 1e9 });
      // 30, not more: each upload waits for the decode worker first, and past 32 waiting uploads the server sheds with
      // 503 by design. 50 at once got three 503s in one CI run (their cause was not recorded; 2,000 such requests here
      // since, some on a loaded machine, got none).
      const parallel = 30;
      const responses = await Promise.all(Array.from({ length: parallel }, () => segment(server, k.secret)));
      const ok = responses.filter((r) => r.status === 200);
      const refused = responses.filter((r) => r.status === 402);
      // Anything else says why in the message.
      const other = await Promise.all(
        responses.filter((r) => r.status !== 200 && r.status !== 402).map(async (r) => `${r.status} ${await r.text()}`),
      );
      assert.equal(
        ok.length + refused.length,
        parallel,
        `statuses ${responses.map((r) => r.status)}; ${other.join("; ")}`,
      );
      assert.ok(ok.length <= n);
      assert.equal(ok.length, n, "credit for n requests should serve n of them");
      const served = ok.reduce((s, r) => s + Number(r.headers.get("x-cost-gflops")), 0);
      for (const r of refused) {
        const p = await r.json();
        assert.ok(p.credit_remaining_gflops < cost / 1e9);
      }
      for (const r of ok) await r.body?.cancel();
      const after = await getKey(server, k.id);
      assert.equal(after.debited_gflops, (n * cost) / 1e9);
      assert.ok(Math.abs(after.debited_gflops - served) < 1e-9);
      const granted = Math.round(((n * cost + cost / 2) / 1e9) * 1e9); // credit is kept in integer FLOPs
      assert.equal(after.credit_remaining_gflops, (granted - n * cost) / 1e9);
      assert.equal((await events(server, k.secret)).length, n);
    });

    await t.step("credit below the cheapest plan: 402 up front, nothing billed", async () => {
      const k = await createKey(server, { credit_gflops: cost / 2 / 1e9 });
      const res = await segment(server, k.secret);
      assert.equal(res.status, 402);
      const p = await res.json();
      assert.equal(p.credit_remaining_gflops, cost / 2 / 1e9);
      assert.ok(p.min_gflops >= cost / 1e9);
      assert.equal((await getKey(server, k.id)).debited_gflops, 0);
    });

    await t.step("Idempotency-Key: a retry replays the first answer and is not billed again", async () => {
      const k = await createKey(server, { credit_gflops: 100 });
      const a = await segment(server, k.secret, { "idempotency-key": "order-42" });
      assert.equal(a.status, 200);
      const bodyA = await a.text();
      const b = await segment(server, k.secret, { "idempotency-key": "order-42" });
      assert.equal(b.status, 200);
      assert.equal(b.headers.get("idempotent-replayed"), "true");
      assert.equal(await b.text(), bodyA);
      assert.equal(b.headers.get("x-cost-gflops"), a.headers.get("x-cost-gflops"));
      assert.equal((await getKey(server, k.id)).debited_gflops, cost / 1e9);
      assert.equal((await events(server, k.secret)).length, 1);
      const other = new Uint8Array(await (await samplePage(96, 96)).image.encode());
      const c = await segment(server, k.secret, { "idempotency-key": "order-42" }, other);
      assert.equal(c.status, 422);
      assert.match((await c.json()).type, /idempotency-key-reused/);
    });

    await t.step("a failed billing write is a 503: credit unchanged, no event; the retry succeeds", async () => {
      const k = await createKey(server, { credit_gflops: 100 });
      (await server.ready).meter.faults.failCommits = 1;
      const res = await segment(server, k.secret, { "idempotency-key": "retry-me" });
      assert.equal(res.status, 503);
      assert.match((await res.json()).type, /billing-failed/);
      const key = await getKey(server, k.id);
      assert.equal(key.credit_remaining_gflops, 100);
      assert.equal(key.debited_gflops, 0);
      assert.equal((await events(server, k.secret)).length, 0);
      const retry = await segment(server, k.secret, { "idempotency-key": "retry-me" });
      assert.equal(retry.status, 200);
      assert.equal(retry.headers.get("idempotent-replayed"), null);
      await retry.body?.cancel();
      assert.equal((await getKey(server, k.id)).debited_gflops, cost / 1e9);
    });

    await t.step("rate limit: 429 with Retry-After and RateLimit headers, then the window resets", async () => {
      const k = await createKey(server, { credit_gflops: null, rate_limit: { requests: 3, window_seconds: 2 } });
      // Start at the beginning of a window so all three fit in it.
      await new Promise((r) => setTimeout(r, 2000 - (Date.now() % 2000) + 20));
      for (let i = 0; i < 3; i++) {
        const ok = await fetch(`${server.url}/v1/segment/text`, {
          method: "POST",
          body: png,
          headers: { "content-type": "image/png", authorization: `Bearer ${k.secret}`, "x-mode": "fixed" },
        });
        assert.equal(ok.status, 200);
        assert.equal(ok.headers.get("ratelimit-policy"), '"default";q=3;w=2');
        assert.match(ok.headers.get("ratelimit")!, new RegExp(`^"default";r=${2 - i};t=\\d+$`));
        await ok.body?.cancel();
      }
      const limited = await segment(server, k.secret);
      assert.equal(limited.status, 429);
      const retryAfter = Number(limited.headers.get("retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 2);
      assert.match(limited.headers.get("ratelimit")!, /^"default";r=0;t=\d+$/);
      await limited.body?.cancel();
      await new Promise((r) => setTimeout(r, retryAfter * 1000 + 50));
      const again = await segment(server, k.secret);
      assert.equal(again.status, 200);
      await again.body?.cancel();
    });

    let tenantA: KeyJson, tenantB: KeyJson;
    await t.step("tenant isolation and usage totals", async () => {
      tenantA = await createKey(server, { credit_gflops: 100 });
      tenantB = await createKey(server, { credit_gflops: 100 });
      for (let i = 0; i < 3; i++) await (await segment(server, tenantA.secret)).body?.cancel();
      await (await segment(server, tenantB.secret)).body?.cancel();
      const evA = await events(server, tenantA.secret), evB = await events(server, tenantB.secret);
      assert.equal(evA.length, 3);
      assert.equal(evB.length, 1);
      assert.ok(evA.every((e) => e.subject === tenantA.id && e.type === "thriftseg.segment"));
      assert.ok(evB.every((e) => e.subject === tenantB.id));
      assert.equal(new Set(evA.map((e) => e.id)).size, 3, "pages must not repeat events");
      const usage = await (await fetch(`${server.url}/v1/usage`, {
        headers: { authorization: `Bearer ${tenantA.secret}` },
      })).json();
      assert.equal(usage.subject, tenantA.id);
      assert.equal(usage.total.requests, 3);
      assert.equal(usage.total.gflops, (3 * cost) / 1e9);
      assert.ok(Math.abs(usage.total.billed.amount - 0.5 * (3 * cost) / 1e9) < 1e-9);
      const bad = await fetch(`${server.url}/v1/usage?from=yesterday`, {
        headers: { authorization: `Bearer ${tenantA.secret}` },
      });
      assert.equal(bad.status, 422);
      await bad.body?.cancel();
    });

    await t.step("usage and credits survive a restart on the same DATA_DIR", async () => {
      const before = await getKey(server, tenantA.id);
      await server.close();
      server = await testServer(env);
      const after = await getKey(server, tenantA.id);
      assert.deepEqual(after, { ...before });
      assert.equal((await events(server, tenantA.secret)).length, 3);
      const res = await segment(server, tenantA.secret);
      assert.equal(res.status, 200);
      await res.body?.cancel();
    });
    await server.close();
  },
});
