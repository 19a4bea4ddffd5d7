// GET /metrics over real HTTP: what the counters say must match what the responses said.

import assert from "node:assert/strict";
import { samplePage, testServer } from "../_util.ts";
import { type Family, parseExposition } from "../_prom.ts";

const server = await testServer({ WORKERS: "1" });
const { image } = await samplePage(160, 96);
const png = new Uint8Array(await image.encode());

function segment(mode: string, body: BodyInit = png, contentType = "image/png") {
  return fetch(`${server.url}/v1/segment/text`, {
    method: "POST",
    body,
    headers: { "content-type": contentType, "x-mode": mode },
  });
}

function value(f: Family | undefined, name: string, labels: Record<string, string> = {}): number {
  assert.ok(f, `family for ${name} missing`);
  const hits = f.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.reduce((sum, s) => sum + s.value, 0);
}

async function scrape() {
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

Deno.test({
  name: "/metrics counts requests, GFLOPs computed and billed, latencies and pool state as the responses report them",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    try {
      await server.ready;
      const before = await scrape();
      let served = 0;
      for (const mode of ["fixed", "adaptive", "fixed"]) {
        const res = await segment(mode);
        assert.equal(res.status, 200, await res.clone().text());
        served += Number(res.headers.get("x-cost-gflops"));
        await res.body?.cancel();
      }
      const bad = await segment("fixed", "not an image", "text/plain");
      assert.equal(bad.status, 415);
      await bad.body?.cancel();
      // A billing write that fails: the compute ran, nothing was billed, the client got 503.
      (await server.ready).meter.faults.failCommits = 1;
      const failed = await segment("fixed");
      assert.equal(failed.status, 503);
      const failedCost = (await segment("fixed")).headers.get("x-cost-gflops"); // retry succeeds
      served += Number(failedCost);
      await (await fetch(`${server.url}/no/such/path/${crypto.randomUUID()}`)).body?.cancel();

      const after = await scrape();
      const delta = (name: string, labels: Record<string, string> = {}) => {
        const family = name.replace(/_(bucket|sum|count)$/, "");
        return value(after.get(family), name, labels) -
          (before.get(family) ? value(before.get(family), name, labels) : 0);
      };
      const route = "/v1/segment/:task";
      assert.equal(delta("thriftseg_http_requests_total", { route, status: "200", mode: "fixed" }), 3);
      assert.equal(delta("thriftseg_http_requests_total", { route, status: "200", mode: "adaptive" }), 1);
      assert.equal(delta("thriftseg_http_requests_total", { route, status: "415" }), 1);
      assert.equal(delta("thriftseg_http_requests_total", { route, status: "503", mode: "fixed" }), 1);
      assert.equal(delta("thriftseg_http_requests_total", { route: "unmatched", status: "404" }), 1);
      // Billed = what the 200s reported; computed = that plus the run whose billing failed.
      const billed = delta("thriftseg_gflops_billed_total", { task: "text" });
      assert.ok(Math.abs(billed - served) < 1e-9 * served, `billed ${billed} vs served ${served}`);
      const computed = delta("thriftseg_gflops_computed_total", { task: "text" });
      assert.ok(Math.abs(computed - billed - Number(failedCost)) < 1e-9 * computed, `computed ${computed}`);
      // Latency histograms: one observation per request, +Inf bucket equal to the count.
      assert.equal(delta("thriftseg_http_request_duration_seconds_count", { route }), 6);
      assert.equal(delta("thriftseg_http_request_duration_seconds_bucket", { route, le: "+Inf" }), 6);
      assert.equal(delta("thriftseg_inference_seconds_count", { task: "text" }), 5);
      assert.equal(delta("thriftseg_queue_wait_seconds_count", { task: "text" }), 5);
      assert.ok(delta("thriftseg_inference_seconds_sum", { task: "text" }) > 0);
      // Pool state.
      assert.equal(value(after.get("thriftseg_workers"), "thriftseg_workers"), 1);
      const backend = (await server.ready).pool.backend;
      assert.equal(value(after.get("thriftseg_backend_info"), "thriftseg_backend_info", { backend }), 1);
      assert.equal(value(after.get("thriftseg_queue_depth"), "thriftseg_queue_depth"), 0);
      assert.equal(value(after.get("thriftseg_worker_restarts_total"), "thriftseg_worker_restarts_total"), 0);
    } finally {
      await server.close();
    }
  },
});
