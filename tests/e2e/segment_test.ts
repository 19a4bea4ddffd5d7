// End to end over a real socket: the real server, the real PP-OCRv4 model
// in the workers (onnxruntime-node, as `deno task start` runs it), real PNG/JPEG images with rendered text.

import assert from "node:assert/strict";
import { Image } from "imagescript";
import { samplePage, testServer } from "../_util.ts";
import { ModelRegistry } from "../../lib/models.ts";
import { pageGraph, pageShapes, tailValues } from "../../lib/onnx/page.ts";
import { DEFAULT_FOCUS_OPTIONS } from "../../lib/plan/focus.ts";
import { CostCounter } from "../../lib/onnx/mod.ts";
import { decodeMaskRle } from "../../lib/image/mod.ts";

const registry = await ModelRegistry.load();
const textModel = registry.model("text-ppocrv4-det");
const counter = textModel.counter;
const server = await testServer();
const { image, boxes } = await samplePage();
const png = new Uint8Array(await image.encode());

function post(body: BodyInit, headers: Record<string, string> = {}, path = "/v1/segment/text") {
  return fetch(`${server.url}${path}`, {
    method: "POST",
    body,
    headers: { "content-type": "image/png", ...headers },
  });
}

async function maskOf(body: { mask: { data: string } }): Promise<{ w: number; h: number; values: Uint8Array }> {
  const bytes = Uint8Array.from(atob(body.mask.data), (c) => c.charCodeAt(0));
  const img = await Image.decode(bytes);
  const values = new Uint8Array(img.width * img.height);
  for (let i = 0; i < values.length; i++) values[i] = img.bitmap[i * 4];
  return { w: img.width, h: img.height, values };
}

/** The mask marks the text lines and nothing else. */
function assertCoversText(values: Uint8Array, w: number, h: number) {
  const inBox = (x: number, y: number) =>
    boxes.some((b) => x >= b.x - 4 && x < b.x + b.w + 4 && y >= b.y - 4 && y < b.y + b.h + 4);
  let on = 0, onInside = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!values[y * w + x]) continue;
      on++;
      if (inBox(x, y)) onInside++;
    }
  }
  assert.ok(on > 0, "mask is empty");
  assert.ok(onInside / on >= 0.98, `only ${(100 * onInside / on).toFixed(1)}% of mask pixels are on text`);
  for (const b of boxes) {
    let minX = Infinity, maxX = -Infinity;
    for (let y = b.y; y < b.y + b.h; y++) {
      for (let x = b.x; x < b.x + b.w; x++) {
        if (values[y * w + x]) {
          minX = Math.min(minX, x);
          maxX = Math.max(maxX, x);
        }
      }
    }
    assert.ok(maxX - minX >= 0.8 * b.w, `text line at y=${b.y} is not covered across its width`);
  }
  // The lower third of the page is empty paper.
  assert.ok(values.subarray(450 * w).every((v) => v === 0), "background marked as text");
}

Deno.test({
  name: "e2e",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await t.step("healthz, readyz and /v1/models", async () => {
      assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { status: "ok" });
      const ready = await fetch(`${server.url}/readyz`);
      assert.equal(ready.status, 200);
      // BACKEND=auto under `deno task test` (which grants --allow-ffi): onnxruntime-node.
      assert.equal((await ready.json()).backend, "native");
      const models = await (await fetch(`${server.url}/v1/models`)).json();
      const text = models.tasks.find((t: { name: string }) => t.name === "text");
      assert.deepEqual(text.classes, ["background", "text"]);
      assert.equal(text.models[0].id, "text-ppocrv4-det");
      assert.equal(text.models[0].gflops, counter.count([1, 3, 640, 640]).gflops);
    });

    await t.step("fixed mode: mask covers the text, cost is the counter's FLOPs for 1x3x640x640", async () => {
      const res = await post(png, { "x-mode": "fixed" });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.width, 640);
      assert.equal(body.height, 640);
      assert.match(body.id, /^req_/);
      assert.equal(res.headers.get("x-request-id"), body.id);
      const expected = counter.count([1, 3, 640, 640]);
      assert.equal(body.cost.flops, expected.flops);
      assert.equal(body.cost.gflops, expected.gflops);
      assert.equal(Number(res.headers.get("x-cost-gflops")), expected.gflops);
      assert.match(res.headers.get("server-timing")!, /infer;dur=[\d.]+/);
      assert.equal(body.backend, "native");
      assert.equal(res.headers.get("x-backend"), "native");
      const { w, h, values } = await maskOf(body);
      assert.equal(w, 640);
      assert.equal(h, 640);
      assertCoversText(values, w, h);
    });

    await t.step("adaptive mode: tiles with halo, cost = sum over the executions actually run", async () => {
      const res = await post(png);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.plan.mode, "adaptive");
      // The windows' runs at their shapes and the blank part on its colours: one run of the page graph of that many
      // windows, counted whole here.
      type Run = { model: string; shape: number[]; tails?: number[][] };
      const blanks = body.plan.executions.filter((e: Run) => e.model.endsWith(":blank"));
      const windows: Run[] = body.plan.executions.filter((e: Run) => !e.model.endsWith(":blank"));
      const runs = windows.map((e) => e.shape);
      // Each window's tail (the model's last layers) runs on regions around its ink, reported where not the window.
      const tails = windows.map((e) => e.tails ?? [e.shape.slice(2)]);
      assert.ok(windows.some((e) => e.tails), "the tail runs on less than a window");
      const g = textModel.levels!.graphs;
      // A page graph has a blank part unless one window covers the whole page (then no blank run is reported).
      const colours = blanks.length ? blanks[0].shape[0] : 0;
      const recount = CostCounter.fromBytes(pageGraph(g, runs.length, [], colours > 0))
        .count(pageShapes(g, runs, colours, 3), tailValues(g, tails)).flops;
      assert.ok(blanks.length <= 1);
      assert.equal(body.cost.flops, recount);
      assert.equal(Number(res.headers.get("x-cost-gflops")), body.cost.gflops);
      assert.ok(body.plan.tiles.length >= 1);
      type Tile = { model: string | null; halo: number; scale: number };
      const ran = body.plan.tiles.filter((t: Tile) => t.model !== null);
      const halo = DEFAULT_FOCUS_OPTIONS.pageHalo;
      assert.ok(ran.length >= 1 && ran.every((t: Tile) => t.halo === halo && t.scale === 1));
      assert.ok(body.plan.coverage.full_res_share < 1 && body.plan.coverage.unresolved_share === 0);
      assert.ok(body.cost.flops < counter.count([1, 3, 640, 640]).flops, "adaptive should save FLOPs on this page");
      const { w, h, values } = await maskOf(body);
      assertCoversText(values, w, h);
    });

    // An adaptive request with a budget of `share` of the full-resolution price: answered 200 within it.
    const underShare = async (share: number) => {
      const budget = (counter.count([1, 3, 640, 640]).flops * share) / 1e9;
      const res = await post(png, { "x-budget-gflops": budget.toFixed(3) });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.ok(body.cost.gflops <= budget);
      return body;
    };

    await t.step(
      "adaptive at a third of the full price: the ink cover at a narrower halo, at full resolution",
      async () => {
        const body = await underShare(1 / 3);
        type Tile = { scale: number; halo: number; model: string | null };
        const ran = body.plan.tiles.filter((t: Tile) => t.model !== null);
        const { budgetHalos } = DEFAULT_FOCUS_OPTIONS;
        assert.ok(ran.length >= 1 && budgetHalos.includes(ran[0].halo), JSON.stringify(ran));
        assert.ok(ran.every((t: Tile) => t.scale === 1 && t.halo === ran[0].halo), JSON.stringify(ran));
        assert.ok(body.plan.coverage.full_res_share > 0 && body.plan.coverage.unresolved_share === 0);
        const { w, h, values } = await maskOf(body);
        assertCoversText(values, w, h);
      },
    );

    await t.step(
      "adaptive at a fifth of the full price (no narrower cover fits): a glance, narrower than it is short",
      async () => {
        const body = await underShare(1 / 5);
        // The glance: the first execution, on the whole image or on windows over the ink, all at one pair of scales.
        type Tile = { w: number; h: number; scale: number; scale_y?: number; model: string | null };
        const glance: Tile[] = body.plan.tiles.filter((t: Tile) => t.model !== null && t.scale < 1);
        assert.ok(glance.length >= 1, JSON.stringify(body.plan.tiles));
        const { scale, scale_y } = glance[0];
        assert.ok(scale_y !== undefined && scale < scale_y && scale_y <= 1, JSON.stringify(glance[0]));
        assert.ok(glance.every((t) => t.scale === scale && t.scale_y === scale_y));
        // Its model input is a multiple of 32 at those scales: each window is 32/q across and down.
        const [, , inH, inW] = body.plan.executions[0].shape;
        assert.deepEqual([inH % 32, inW % 32], [0, 0]);
        assert.ok(inW / scale >= glance[0].w && inH / scale_y >= glance[0].h, "the window covers its core");
        assert.ok(body.plan.coverage.full_res_share < 0.1);
        const { w, h, values } = await maskOf(body);
        assertCoversText(values, w, h);
      },
    );

    await t.step("Accept: image/png returns the mask alone, cost in headers", async () => {
      const res = await post(png, { accept: "image/png", "x-mode": "fixed" });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "image/png");
      assert.ok(Number(res.headers.get("x-cost-gflops")) > 0);
      const mask = await Image.decode(new Uint8Array(await res.arrayBuffer()));
      assert.equal(mask.width, 640);
    });

    await t.step("multipart upload, JPEG, and RLE masks", async () => {
      const form = new FormData();
      form.append("image", new File([new Uint8Array(await image.encodeJPEG(90))], "page.jpg", { type: "image/jpeg" }));
      const res = await fetch(`${server.url}/v1/segment/text?mask=rle`, {
        method: "POST",
        body: form,
        headers: { "x-mode": "fixed" },
      });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.mask.format, "rle");
      const values = decodeMaskRle(body.mask);
      assert.equal(values.length, 640 * 640);
      assertCoversText(values, 640, 640);
    });

    await t.step("application/octet-stream bodies and parts are sniffed", async () => {
      const raw = await post(png, { "content-type": "application/octet-stream", "x-mode": "fixed" });
      assert.equal(raw.status, 200);
      assertCoversText(...(await maskOf(await raw.json()).then((m) => [m.values, m.w, m.h] as const)));
      const form = new FormData();
      form.append("image", new File([png], "page", { type: "application/octet-stream" }));
      const part = await fetch(`${server.url}/v1/segment/text`, { method: "POST", body: form });
      assert.equal(part.status, 200);
      await part.body?.cancel();
    });

    await t.step("a budget below the cheapest plan is 422 with min_gflops; at min_gflops it runs", async () => {
      const res = await post(png, { "x-budget-gflops": "0.01" });
      assert.equal(res.status, 422);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      const problem = await res.json();
      assert.ok(problem.min_gflops > 0.01);
      const ok = await post(png, { "x-budget-gflops": String(problem.min_gflops) });
      assert.equal(ok.status, 200);
      const body = await ok.json();
      assert.ok(body.cost.gflops <= problem.min_gflops);
      assert.equal(body.budget.gflops, problem.min_gflops);
    });

    await server.close();
  },
});
