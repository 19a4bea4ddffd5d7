// The native peer of `deno task bench`: the smallest honest Node server for the same job as thriftseg's fixed mode on
// the text task. POST an image → sharp decodes it (alpha over white, like thriftseg's `background: 255`) → BGR,
// mean/std from models/manifest.json, zero-padded bottom/right to a multiple of 32 → onnxruntime-node (CPU EP, one
// session, intra-op threads = cores) → probability > threshold → 8-bit grey PNG mask (sharp) in a JSON answer.
// Server-Timing carries `model` (inside session.run) and `total`, as thriftseg's does.
//
//   PORT=8931 node bench/peer/server.mjs

import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import * as ort from "onnxruntime-node";
import sharp from "sharp";

const root = new URL("../../", import.meta.url);
const manifest = JSON.parse(readFileSync(new URL("models/manifest.json", root), "utf8"));
const spec = manifest.models.find((m) => m.id === "text-ppocrv4-det");
const modelPath = new URL(`node_modules/${spec.source.npm.replace(/@[^@]+$/, "")}/${spec.source.path}`, root);
const { mean, std, multiple } = spec.input;
const threshold = spec.output.threshold;
const threads = Number(process.env.THREADS || availableParallelism());

sharp.concurrency(1);
const session = await ort.InferenceSession.create(readFileSync(modelPath), {
  executionProviders: ["cpu"],
  graphOptimizationLevel: "all",
  intraOpNumThreads: threads,
});
const inputName = session.inputNames[0];

// 256-entry lookups: (v/255 - mean[k]) / std[k] for output channel k (B, G, R).
const luts = [2, 1, 0].map((_, k) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - mean[k]) / std[k]));

async function segment(body) {
  const t0 = performance.now();
  const { data, info } = await sharp(body, { limitInputPixels: 16_000_000 })
    .flatten({ background: "#ffffff" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  const W = Math.ceil(width / multiple) * multiple, H = Math.ceil(height / multiple) * multiple;
  const plane = W * H;
  const x = new Float32Array(3 * plane);
  const src = channels >= 3 ? [2, 1, 0] : [0, 0, 0]; // BGR
  for (let y = 0; y < height; y++) {
    let p = y * width * channels;
    const row = y * W;
    for (let i = 0; i < width; i++, p += channels) {
      x[row + i] = luts[0][data[p + src[0]]];
      x[plane + row + i] = luts[1][data[p + src[1]]];
      x[2 * plane + row + i] = luts[2][data[p + src[2]]];
    }
  }
  const t1 = performance.now();
  const out = await session.run({ [inputName]: new ort.Tensor("float32", x, [1, 3, H, W]) });
  const t2 = performance.now();
  const prob = out[session.outputNames[0]].data;
  const mask = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const o = y * W, m = y * width;
    for (let i = 0; i < width; i++) mask[m + i] = prob[o + i] > threshold ? 1 : 0;
  }
  const png = await sharp(mask, { raw: { width, height, channels: 1 } }).png().toBuffer();
  const t3 = performance.now();
  return { width, height, png, timings: { pre: t1 - t0, model: t2 - t1, post: t3 - t2, total: t3 - t0 } };
}

const server = createServer((req, res) => {
  if (req.method !== "POST") {
    res.writeHead(req.url === "/healthz" ? 200 : 405).end();
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    try {
      const r = await segment(Buffer.concat(chunks));
      const timing = Object.entries(r.timings).map(([k, v]) => `${k};dur=${v.toFixed(2)}`).join(", ");
      res.writeHead(200, { "Content-Type": "application/json", "Server-Timing": timing });
      res.end(JSON.stringify({
        width: r.width,
        height: r.height,
        backend: "onnxruntime-node",
        mask: { format: "png", encoding: "base64", data: r.png.toString("base64") },
      }));
    } catch (err) {
      res.writeHead(400, { "Content-Type": "application/problem+json" });
      res.end(JSON.stringify({ title: "bad image", status: 400, detail: String(err?.message ?? err) }));
    }
  });
});
server.listen(Number(process.env.PORT || 8931), "127.0.0.1", () => {
  console.log(`peer listening on ${server.address().port} (${threads} threads)`);
});
