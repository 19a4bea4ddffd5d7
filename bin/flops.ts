// flops: prints what one execution of an ONNX model costs (DESIGN.md §3), per
// op type and in total, at the model's declared input shape or a given one.
//
//   deno run -A bin/flops.ts <model.onnx> [--shape 1x3x224x224] [--input name=1x3x224x224 ...] [--json]
//
// Exit codes: 0 counted, 1 usage/decode/shape error, 2 graph has ops without a
// cost rule (they are listed; the totals printed are a lower bound).

import { toGflops } from "../lib/units.ts";
import { CostCounter, type CostReport, decodeModel, OnnxDecodeError, OnnxShapeError } from "../lib/onnx/mod.ts";

const USAGE =
  `usage: deno run -A bin/flops.ts <model.onnx> [--shape 1x3x224x224] [--input name=1x3x224x224 ...] [--json]

  --shape DIMS        shape of the first (or only) graph input
  --input NAME=DIMS   shape of a named input; repeat for several inputs
  --json              print the report as JSON instead of a table
Without --shape/--input the model's declared input dims are used; symbolic dims
(e.g. batch "N") must then be given.`;

class UsageError extends Error {}

interface Args {
  model: string;
  shape?: number[];
  inputs: Record<string, number[]>;
  json: boolean;
}

function parseDims(text: string): number[] {
  const dims = text.split(/[x,]/).map((s) => Number(s.trim()));
  if (dims.length === 0 || dims.some((d) => !Number.isSafeInteger(d) || d < 1)) {
    throw new UsageError(`bad shape "${text}": expected positive integers like 1x3x224x224`);
  }
  return dims;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { model: "", inputs: {}, json: false };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value: string | undefined;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    if (eq > 0) [arg, value] = [arg.slice(0, eq), arg.slice(eq + 1)];
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === "--shape") {
      args.shape = parseDims(next());
    } else if (arg === "--input") {
      const spec = next();
      const at = spec.lastIndexOf("=");
      if (at <= 0) throw new UsageError(`bad --input "${spec}": expected name=1x3x224x224`);
      args.inputs[spec.slice(0, at)] = parseDims(spec.slice(at + 1));
    } else if (arg === "--json") {
      args.json = true;
    } else if (arg === "-h" || arg === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    } else if (arg.startsWith("-")) {
      throw new UsageError(`unknown option ${arg}`);
    } else if (!args.model) {
      args.model = arg;
    } else {
      throw new UsageError(`unexpected argument ${arg}`);
    }
  }
  if (!args.model) throw new UsageError("no model file given");
  return args;
}

const num = (n: number, width: number) => n.toFixed(6).padStart(width);

function printTable(
  path: string,
  counter: CostCounter,
  opset: number,
  nodes: number,
  report: CostReport,
  shapes: Record<string, number[]>,
): void {
  const lines = [`model   ${path}  (opset ${opset}, ${nodes} nodes)`];
  for (const [name, shape] of Object.entries(shapes)) lines.push(`input   ${name}  ${shape.join("x")}`);
  const opWidth = Math.max(18, ...report.byOpType.map((r) => r.op.length + 2));
  lines.push("", `${"op".padEnd(opWidth)}${"count".padStart(7)}${"GMACs".padStart(14)}${"GFLOPs".padStart(14)}`);
  for (const r of report.byOpType) {
    lines.push(
      `${r.op.padEnd(opWidth)}${String(r.count).padStart(7)}${num(toGflops(r.macs), 14)}${num(toGflops(r.flops), 14)}`,
    );
  }
  lines.push(
    `${"total".padEnd(opWidth)}${String(nodes).padStart(7)}${num(report.gmacs, 14)}${num(report.gflops, 14)}`,
    "",
  );
  for (const { name } of counter.outputs) {
    const s = report.outputShapes[name];
    lines.push(`output  ${name}  ${s ? s.join("x") : "unknown (after an unsupported op)"}`);
  }
  if (report.unknownOps.length) {
    lines.push("", `unsupported ops (no cost rule): ${report.unknownOps.join(", ")}`);
    lines.push("the totals above leave them out and are a lower bound");
  }
  console.log(lines.join("\n"));
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const model = decodeModel(await Deno.readFile(args.model));
  const counter = new CostCounter(model);
  const given: Record<string, number[]> = { ...args.inputs };
  if (args.shape) {
    if (counter.inputs.length === 0) throw new UsageError("--shape given but the model has no inputs");
    given[counter.inputs[0].name] = args.shape;
  }
  for (const input of counter.inputs) {
    if (!given[input.name] && input.dims.some((d) => typeof d !== "number")) {
      const flag = input === counter.inputs[0] ? "--shape" : `--input ${input.name}=...`;
      throw new UsageError(
        `input "${input.name}" has symbolic dims [${input.dims.join(", ")}]; give its shape with ${flag}`,
      );
    }
  }
  const report = counter.report(given);
  const shapes: Record<string, number[]> = {};
  for (const input of counter.inputs) {
    shapes[input.name] = given[input.name] ?? (input.dims as number[]);
  }
  const opset = model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 1;
  if (args.json) {
    console.log(JSON.stringify({ model: args.model, opset, inputShapes: shapes, ...report }, null, 2));
  } else {
    printTable(args.model, counter, opset, model.graph.nodes.length, report, shapes);
  }
  return report.unknownOps.length ? 2 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
    } else if (e instanceof OnnxDecodeError || e instanceof OnnxShapeError || e instanceof Deno.errors.NotFound) {
      console.error(`error: ${e.message}`);
    } else {
      throw e;
    }
    Deno.exit(1);
  }
}
