// Planner preflight: an image whose mandatory executions (the glance, the routing policy, the fixed model) could never
// run within the execution-size limit is refused from its header, before any decoder sees it.

import assert from "node:assert/strict";
import { ExecutionTooLargeError } from "../../lib/errors.ts";
import { ModelRegistry } from "../../lib/models.ts";
import type { Mode } from "../../lib/plan/mod.ts";
import { Segmenter } from "../../lib/segment.ts";
import { RecordingPool } from "../_pool.ts";
import { pngHeaderOnly } from "../../dev/image_fixtures.ts";

const registry = await ModelRegistry.load();

Deno.test("an image no plan could serve is refused (422) from its header, before it is decoded", async () => {
  let decodes = 0;
  const seg = new Segmenter(registry, new RecordingPool(), undefined, () => {
    decodes++;
    return Promise.reject(new Error("the decoder was called"));
  });
  const refused: [string, Mode, number, number, string][] = [
    ["micrograph", "adaptive", 1, 16_000_000, "micrograph-f0"], // f0 on the whole (padded) image
    ["digits", "adaptive", 16_000_000, 1, "digits-f0"],
    ["micrograph", "adaptive", 4000, 4000, "micrograph-f0"],
    ["digits", "adaptive", 1, 100_000, "digits-policy"], // f0 fits; the policy's tile-rounded input does not
    ["digits", "glimpse", 4000, 4000, "digits-f0"],
    ["text", "fixed", 5000, 1000, "text-ppocrv4-det"],
  ];
  for (const [task, mode, width, height, model] of refused) {
    const t0 = performance.now();
    await assert.rejects(
      seg.segment({ task, mode, bytes: pngHeaderOnly(width, height), contentType: "image/png" }),
      (e: unknown) => {
        assert.ok(e instanceof ExecutionTooLargeError, `${task} ${mode} ${width}×${height}: ${e}`);
        assert.equal(e.status, 422);
        assert.equal(e.extra.max_exec_pixels, seg.limits.planner.maxExecPixels);
        assert.match(e.message, new RegExp(model));
        return true;
      },
    );
    assert.ok(performance.now() - t0 < 1000, "refused from the header, not after work");
  }
  assert.equal(decodes, 0);

  // Sizes a plan can serve go on to the decoder: a 1-pixel-tall strip of text (glanced at ¼), digits in glimpse mode
  // (no policy), a fixed run just under the limit.
  const served: [string, Mode, number, number][] = [
    ["text", "adaptive", 100_000, 1],
    ["digits", "glimpse", 1, 100_000],
    ["text", "fixed", 2048, 2048],
  ];
  for (const [task, mode, width, height] of served) {
    await assert.rejects(
      seg.segment({ task, mode, bytes: pngHeaderOnly(width, height), contentType: "image/png" }),
      /the decoder was called/,
    );
  }
  assert.equal(decodes, served.length);
});
