// Planner preflight: an image whose mandatory executions (the glance, the routing policy, the fixed model) could never
// run within the execution-size limit is refused from its header, before any decoder sees it.

import assert from "node:assert/strict";
import { ExecutionTooLargeError } from "../../lib/errors.ts";
import { ModelRegistry } from "../../lib/models.ts";
import type { Mode } from "../../lib/plan/mod.ts";
import { Segmenter } from "../../lib/segment.ts";
import { RecordingPool } from "../_pool.ts";

const registry = await ModelRegistry.load();

/** The first 33 bytes of an 8-bit grey PNG of width×height: signature and IHDR, all a header check reads. */
function pngHeader(width: number, height: number): Uint8Array {
  const ihdr = new Uint8Array(25);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, 13);
  ihdr.set([0x49, 0x48, 0x44, 0x52], 4); // "IHDR"
  view.setUint32(8, width);
  view.setUint32(12, height);
  ihdr.set([8, 0, 0, 0, 0], 16); // depth 8, grey, deflate, no filter, no interlace
  view.setUint32(21, crc32(ihdr.subarray(4, 21)));
  return Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...ihdr]);
}

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}

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
      seg.segment({ task, mode, bytes: pngHeader(width, height), contentType: "image/png" }),
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
      seg.segment({ task, mode, bytes: pngHeader(width, height), contentType: "image/png" }),
      /the decoder was called/,
    );
  }
  assert.equal(decodes, served.length);
});
