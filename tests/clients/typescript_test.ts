// The typed client (clients/typescript) against a live server with keys on:
// segment with budget, mode, idempotency and Accept: image/png, models, usage
// and its events; errors as ThriftsegError with the problem. And the drift
// check: the committed schema.d.ts equals what openapi-typescript makes of the
// live /openapi.json (`deno task client:gen` regenerates it).

import assert from "node:assert/strict";
import { createThriftseg, parseServerTiming, ThriftsegError } from "../../clients/typescript/mod.ts";
import { generateSchema, SCHEMA_FILE } from "../../clients/typescript/gen.ts";
import { testServer } from "../_util.ts";

const ADMIN = "client-test-admin-token-0123456789";
const examples = new URL("../../docs/examples/", import.meta.url);

Deno.test("client: Server-Timing parsing", () => {
  assert.deepEqual(parseServerTiming("decode;dur=1.5, infer;dur=40, total;dur=42.25"), {
    decode: 1.5,
    infer: 40,
    total: 42.25,
  });
  assert.deepEqual(parseServerTiming(null), {});
});

Deno.test({
  name: "client: segment (budget, glimpse, idempotency, mask PNG), models, usage and errors against a live server",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await testServer({ AUTH: "on", ADMIN_TOKEN: ADMIN });
    try {
      const created = await fetch(`${server.url}/v1/admin/keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "client", credit_gflops: 100 }),
      });
      assert.equal(created.status, 201);
      const { secret } = await created.json();
      const api = createThriftseg({ baseUrl: server.url + "/", apiKey: secret });
      const digits = await Deno.readFile(new URL("digits-0.png", examples));

      const models = await api.models();
      assert.deepEqual(models.tasks.map((t) => t.name).sort(), ["digits", "micrograph", "text"]);

      // A budget: the cost stays under it, and the headers agree with the body.
      const { result, meta } = await api.segment("digits", digits, { budgetGflops: 0.8, contentType: "image/png" });
      assert.equal(result.task, "digits");
      assert.ok(result.cost.gflops <= 0.8);
      assert.equal(meta.costGflops, result.cost.gflops);
      assert.equal(meta.requestId, result.id);
      assert.equal(meta.replayed, false);
      assert.ok(typeof meta.creditRemainingGflops === "number");
      assert.ok(Math.abs(meta.creditRemainingGflops - (100 - result.cost.gflops)) < 1e-6);
      assert.ok(meta.timingsMs.total > 0 && "infer" in meta.timingsMs);

      // Glimpse, a Blob with its own type.
      const glimpse = await api.segment(
        "micrograph",
        new Blob([await Deno.readFile(new URL("micrograph-1.png", examples))], {
          type: "image/png",
        }),
        { mode: "glimpse", confidence: 0.95, mask: "rle" },
      );
      assert.equal(glimpse.result.plan.mode, "glimpse");
      assert.ok(glimpse.result.plan.glimpses.length > 1);
      assert.equal(glimpse.result.mask.format, "rle");

      // Idempotency: the retry is the same answer, replayed, and not billed again.
      const first = await api.segment("digits", digits, { idempotencyKey: "client-test-1" });
      const again = await api.segment("digits", digits, { idempotencyKey: "client-test-1" });
      assert.equal(again.result.id, first.result.id);
      assert.equal(again.meta.replayed, true);
      assert.equal(again.meta.creditRemainingGflops, first.meta.creditRemainingGflops);

      // The mask alone: a PNG of the image's size; the cost in the headers.
      const { png, meta: pngMeta } = await api.segmentMask("digits", digits, { mode: "fixed", model: "digits-f1" });
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
      const view = new DataView(png.buffer, png.byteOffset);
      assert.deepEqual([view.getUint32(16), view.getUint32(20)], [256, 256]);
      assert.ok(pngMeta.costGflops > 0);

      // Usage: four billed requests (the replay is not one), summing to the debited GFLOPs.
      const usage = await api.usage();
      const events = await api.usageEvents({ limit: 3 });
      assert.equal(events.events.length, 3);
      assert.ok(events.next_cursor);
      const rest = await api.usageEvents({ cursor: events.next_cursor!, limit: 10 });
      const all = [...events.events, ...rest.events];
      assert.equal(all.length, 4);
      assert.equal(rest.next_cursor, null);
      const billed = result.cost.gflops + glimpse.result.cost.gflops + first.result.cost.gflops + pngMeta.costGflops;
      const eventGflops = all.reduce((s, e) => s + e.data.gflops, 0);
      assert.ok(Math.abs(eventGflops - billed) < 1e-6, `${eventGflops} vs ${billed}`);
      assert.ok(JSON.stringify(usage).includes('"requests"'), JSON.stringify(usage));

      // Errors: the problem comes back typed.
      await assert.rejects(
        () => api.segment("digits", new TextEncoder().encode("not an image"), { contentType: "text/plain" }),
        (err) => err instanceof ThriftsegError && err.status === 415 && err.problem?.status === 415,
      );
      await assert.rejects(
        () => api.segment("digits", digits, { budgetGflops: 0.001 }),
        (err) =>
          err instanceof ThriftsegError && err.status === 422 &&
          typeof (err.problem as Record<string, unknown>)?.min_gflops === "number",
      );
      await assert.rejects(
        () => api.segment("text", digits, { mode: "glimpse" }),
        (err) => err instanceof ThriftsegError && err.status === 422,
      );
      const anonymous = createThriftseg({ baseUrl: server.url });
      await assert.rejects(
        () => anonymous.segment("digits", digits),
        (err) => err instanceof ThriftsegError && err.status === 401 && err.message.startsWith("401 "),
      );
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "client: the committed schema.d.ts matches the live /openapi.json (run `deno task client:gen` if not)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await testServer();
    try {
      const doc = await (await fetch(`${server.url}/openapi.json`)).json();
      const generated = await generateSchema(doc);
      const committed = await Deno.readTextFile(SCHEMA_FILE);
      if (generated !== committed) {
        const a = generated.split("\n"), b = committed.split("\n");
        const line = a.findIndex((l, i) => l !== b[i]);
        assert.fail(
          `clients/typescript/schema.d.ts is stale: run \`deno task client:gen\`. First difference at line ${
            line + 1
          }:\n  live:      ${a[line]}\n  committed: ${b[line]}`,
        );
      }
    } finally {
      await server.close();
    }
  },
});
