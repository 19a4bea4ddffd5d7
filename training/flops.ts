// Prices ONNX models with thriftseg's own counter (lib/onnx), for the export
// script: every FLOP number in models/manifest.json and docs/MODELS.md, and
// the cost term of the routing policy's reward, comes from here.
//
//   deno run --allow-read training/flops.ts <model.onnx>=1x1x96x96 [<model.onnx>=NxCxHxW ...]
//
// Prints one JSON object: { "<model.onnx>=<shape>": { macs, flops, gmacs, gflops }, ... }.

import { CostCounter } from "../lib/onnx/mod.ts";

const out: Record<string, unknown> = {};
for (const arg of Deno.args) {
  const at = arg.lastIndexOf("=");
  if (at <= 0) throw new Error(`expected <model.onnx>=NxCxHxW, got "${arg}"`);
  const shape = arg.slice(at + 1).split("x").map(Number);
  const counter = CostCounter.fromBytes(await Deno.readFile(arg.slice(0, at)));
  out[arg] = counter.count(shape);
}
console.log(JSON.stringify(out));
