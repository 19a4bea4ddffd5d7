// The edge middlewares one by one, through app.request() (no sockets, no workers), against a real Deno KV store.

import assert from "node:assert/strict";
import { Hono } from "hono";
import { loadConfig } from "../../lib/config.ts";
import { UnavailableError } from "../../lib/errors.ts";
import { MeterStore } from "../../lib/metering/mod.ts";
import { onError } from "../../routes/problem.ts";
import { type Ready, Services } from "../../routes/services.ts";
import { apiKey } from "../../routes/middleware/auth.ts";
import { uploadLimit } from "../../routes/middleware/body_limit.ts";
import { idempotency } from "../../routes/middleware/idempotency.ts";
import { rateLimit } from "../../routes/middleware/rate_limit.ts";
import { ready, storeReady } from "../../routes/middleware/ready.ts";
import { requestIds } from "../../routes/middleware/request_id.ts";
import { upload } from "../../routes/middleware/upload.ts";

const dir = await Deno.makeTempDir({ prefix: "thriftseg-mw-" });
const meter = await MeterStore.open({ path: `${dir}/meter.kv` });
const opts = { sanitizeResources: false, sanitizeOps: false };

function app() {
  const a = new Hono();
  a.onError(onError);
  return a;
}

async function problemOf(res: Response, status: number) {
  assert.equal(res.status, status, await res.clone().text());
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  return await res.json();
}

Deno.test({
  ...opts,
  name: "ready: 503 while loading, then the loaded services; storeReady needs only the store",
  async fn() {
    const services = new Services(loadConfig({}));
    const a = app();
    a.get("/models", ready(services), (c) => c.json({ meter: c.var.ready.meter === c.var.meter }));
    a.get("/keys", storeReady(services), async (c) => c.json((await c.var.meter.listKeys()).length));
    const loading = await problemOf(await a.request("/models"), 503);
    assert.match(loading.type, /not-ready/);
    await problemOf(await a.request("/keys"), 503);
    services.meterOpened(meter);
    assert.equal((await a.request("/keys")).status, 200);
    await problemOf(await a.request("/models"), 503);
    services.loaded({ meter } as unknown as Ready);
    assert.deepEqual(await (await a.request("/models")).json(), { meter: true });
    services.failed("no models");
    assert.match((await problemOf(await a.request("/models"), 503)).detail, /no models/);
  },
});

Deno.test({
  ...opts,
  name: "request ids: minted per request, on errors too, never the client's",
  async fn() {
    const a = app();
    a.use(requestIds());
    a.get("/ok", (c) => c.text(c.get("requestId")));
    a.get("/boom", () => {
      throw new Error("boom");
    });
    const ok = await a.request("/ok", { headers: { "x-request-id": "chosen-by-client" } });
    const id = ok.headers.get("x-request-id")!;
    assert.match(id, /^req_[0-9a-f]{24}$/);
    assert.equal(await ok.text(), id);
    const other = await a.request("/ok");
    assert.notEqual(other.headers.get("x-request-id"), id);
    const boom = await a.request("/boom");
    assert.equal(boom.status, 500);
    assert.match(boom.headers.get("x-request-id")!, /^req_/);
    assert.equal((await boom.json()).instance, boom.headers.get("x-request-id"));
  },
});

function keyedApp(AUTH: "on" | "off") {
  const services = new Services(loadConfig({ AUTH }));
  services.meterOpened(meter);
  const a = app();
  a.post("/work", storeReady(services), apiKey(services.config), rateLimit(), (c) => c.text(c.var.caller.id));
  a.post("/fail", storeReady(services), apiKey(services.config), rateLimit(), () => {
    throw new UnavailableError("fails after the rate limit");
  });
  return a;
}

Deno.test({
  ...opts,
  name: "apiKey: 401 without or with an unknown key, 403 revoked, the key's id otherwise; anonymous with AUTH=off",
  async fn() {
    const a = keyedApp("on");
    await problemOf(await a.request("/work", { method: "POST" }), 401);
    const unknown = await problemOf(
      await a.request("/work", { method: "POST", headers: { authorization: "Bearer tsk_unknown" } }),
      401,
    );
    assert.match(unknown.detail, /unknown API key/);
    await problemOf(await a.request("/work", { method: "POST", headers: { authorization: "Basic abc" } }), 401);
    const { key, secret } = await meter.createKey({ name: "mw", creditGflops: 1 });
    const ok = await a.request("/work", { method: "POST", headers: { authorization: `Bearer ${secret}` } });
    assert.equal(await ok.text(), key.id);
    await meter.revokeKey(key.id);
    await problemOf(await a.request("/work", { method: "POST", headers: { authorization: `Bearer ${secret}` } }), 403);
    assert.equal(await (await keyedApp("off").request("/work", { method: "POST" })).text(), "anonymous");
  },
});

Deno.test({
  ...opts,
  name: "rateLimit: RateLimit headers on successes and errors alike, 429 with Retry-After past the limit",
  async fn() {
    const a = keyedApp("on");
    const { secret } = await meter.createKey({
      name: "rl",
      creditGflops: null,
      rateLimit: { requests: 2, windowSeconds: 60 },
    });
    const init = { method: "POST", headers: { authorization: `Bearer ${secret}` } };
    const first = await a.request("/work", init);
    assert.equal(first.headers.get("ratelimit-policy"), '"default";q=2;w=60');
    assert.match(first.headers.get("ratelimit")!, /^"default";r=1;t=\d+$/);
    const failed = await a.request("/fail", init);
    assert.equal(failed.status, 503);
    assert.match(failed.headers.get("ratelimit")!, /^"default";r=0;t=\d+$/);
    const limited = await problemOf(await a.request("/work", init), 429);
    assert.ok(limited.retry_after_seconds >= 1);
    // Anonymous callers are not limited.
    const anon = await keyedApp("off").request("/work", { method: "POST" });
    assert.equal(anon.headers.get("ratelimit"), null);
  },
});

Deno.test({
  ...opts,
  name: "uploadLimit: 413 from Content-Length or from the stream; under the limit the body reaches the handler",
  async fn() {
    const a = app();
    a.post("/up", uploadLimit(1000), async (c) => c.text(String((await c.req.arrayBuffer()).byteLength)));
    const declared = await problemOf(await a.request("/up", { method: "POST", body: new Uint8Array(1001) }), 413);
    assert.equal(declared.max_bytes, 1000);
    const stream = new ReadableStream({
      pull(c) {
        c.enqueue(new Uint8Array(400));
      },
    });
    await problemOf(await a.request("/up", { method: "POST", body: stream }), 413);
    assert.equal(await (await a.request("/up", { method: "POST", body: new Uint8Array(1000) })).text(), "1000");
  },
});

Deno.test({
  ...opts,
  name: "upload: raw and multipart images; 415 for other types, 400 for empty bodies and forms without an image",
  async fn() {
    const a = app();
    a.post("/img", upload(), (c) => c.json({ n: c.var.upload.bytes.length, type: c.var.upload.contentType ?? null }));
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47]);
    const raw = await a.request("/img", { method: "POST", body: png, headers: { "content-type": "image/png" } });
    assert.deepEqual(await raw.json(), { n: 4, type: "image/png" });
    const sniffed = await a.request("/img", {
      method: "POST",
      body: png,
      headers: { "content-type": "application/octet-stream" },
    });
    assert.deepEqual(await sniffed.json(), { n: 4, type: null });
    const form = new FormData();
    form.append("image", new File([png], "a.png", { type: "image/png" }));
    assert.deepEqual(await (await a.request("/img", { method: "POST", body: form })).json(), {
      n: 4,
      type: "image/png",
    });
    await problemOf(
      await a.request("/img", { method: "POST", body: "hi", headers: { "content-type": "text/plain" } }),
      415,
    );
    const empty = await problemOf(
      await a.request("/img", { method: "POST", body: new Uint8Array(0), headers: { "content-type": "image/png" } }),
      400,
    );
    assert.match(empty.type, /empty-body/);
    const noImage = new FormData();
    noImage.append("picture", new File([png], "a.png"));
    assert.match(
      (await problemOf(await a.request("/img", { method: "POST", body: noImage }), 400)).type,
      /bad-multipart/,
    );
  },
});

Deno.test({
  ...opts,
  name: "idempotency: replays a stored success, 422 for another request under the key, a failed attempt frees it",
  async fn() {
    const services = new Services(loadConfig({ AUTH: "off" }));
    services.meterOpened(meter);
    let runs = 0, fail = false;
    const a = app();
    a.post(
      "/charge",
      storeReady(services),
      apiKey(services.config),
      idempotency({ fingerprint: (c) => c.req.text() }),
      async (c) => {
        runs++;
        if (fail) throw new UnavailableError("the attempt fails");
        const idem = c.var.idempotency;
        const body = new TextEncoder().encode(`run ${runs}`);
        await c.var.meter.commit({
          requestId: `req_mw_${runs}`,
          keyId: c.var.caller.id,
          task: "t",
          mode: "fixed",
          flops: 1,
          macs: 1,
          status: 200,
          idempotency: idem && { ...idem, response: { status: 200, headers: { "x-run": String(runs) }, body } },
        });
        return c.body(body);
      },
    );
    const post = (key: string, body: string) =>
      a.request("/charge", { method: "POST", body, headers: { "idempotency-key": key } });
    const key = `k-${crypto.randomUUID()}`;
    assert.equal(await (await post(key, "a")).text(), "run 1");
    const replay = await post(key, "a");
    assert.equal(await replay.text(), "run 1");
    assert.equal(replay.headers.get("idempotent-replayed"), "true");
    assert.equal(replay.headers.get("x-run"), "1");
    assert.equal(replay.headers.get("x-credit-remaining-gflops"), "unlimited");
    assert.equal(runs, 1);
    assert.match((await problemOf(await post(key, "b"), 422)).type, /idempotency-key-reused/);
    await problemOf(await post("bad key with spaces", "a"), 422);

    const retried = `r-${crypto.randomUUID()}`;
    fail = true;
    assert.equal((await post(retried, "x")).status, 503);
    fail = false;
    assert.equal(await (await post(retried, "x")).text(), `run ${runs}`, "a failed attempt must free the key");
  },
});

Deno.test({ ...opts, name: "close the store", fn: () => meter.close() });
