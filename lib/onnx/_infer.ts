// Walks a decoded graph once per input shape: topological order, initial
// tensor table from initializers, then each node's rule. Everything that does
// not depend on the input shape is prepared once in `planGraph`.

import type { OnnxModel, OnnxNode } from "./proto.ts";
import { OnnxShapeError } from "./errors.ts";
import { fromTensor, NodeContext, OP_RULES, type OpResult, type OpRule, type TensorInfo } from "./ops.ts";

/** Shape-independent view of a graph, built once per model. */
export interface GraphPlan {
  opset: number;
  nodes: { node: OnnxNode; op: string; rule?: OpRule; preset?: OpResult }[];
  initial: Map<string, TensorInfo>;
  unknownOps: string[];
}

/** Accumulated cost of one op type. */
export interface OpTotals {
  count: number;
  macs: number;
  other: number;
}

/** Result of one walk: every tensor reached and the cost per op type. */
export interface GraphRun {
  tensors: Map<string, TensorInfo>;
  byOp: Map<string, OpTotals>;
}

/** Op names outside the default domain keep their domain so they cannot alias an ONNX op. */
export function opKey(node: OnnxNode): string {
  return node.domain === "" || node.domain === "ai.onnx" ? node.opType : `${node.domain}:${node.opType}`;
}

/** Prepares a model for repeated shape walks. */
export function planGraph(model: OnnxModel): GraphPlan {
  const g = model.graph;
  const opset = model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 1;
  const initial = new Map<string, TensorInfo>();
  for (const t of g.initializers) initial.set(t.name, fromTensor(t));
  const nodes = topoSort(g.nodes).map((node) => {
    const op = opKey(node);
    const rule = OP_RULES.get(op);
    // Constants do not depend on the input shape: decode them once, not per shape.
    const preset = rule && node.inputs.length === 0 ? tryRule(rule, node, opset) : undefined;
    return { node, op, rule, preset };
  });
  const unknownOps = [...new Set(nodes.filter((n) => !n.rule).map((n) => n.op))].sort();
  return { opset, nodes, initial, unknownOps };
}

// ONNX requires topologically sorted nodes, but some exporters emit them out of
// order; a stable DFS keeps file order whenever it is already valid.
function topoSort(nodes: OnnxNode[]): OnnxNode[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((o) => o && producer.set(o, i)));
  const state = new Uint8Array(nodes.length); // 0 new, 1 visiting, 2 done
  const order: OnnxNode[] = [];
  const visit = (root: number) => {
    const stack: [number, number][] = [[root, 0]];
    state[root] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [i, k] = top;
      const inputs = nodes[i].inputs;
      if (k < inputs.length) {
        top[1]++;
        const p = producer.get(inputs[k]);
        if (p === undefined || state[p] === 2) continue;
        if (state[p] === 1) throw new OnnxShapeError(`graph has a cycle through "${inputs[k]}"`);
        state[p] = 1;
        stack.push([p, 0]);
      } else {
        state[i] = 2;
        order.push(nodes[i]);
        stack.pop();
      }
    }
  };
  for (let i = 0; i < nodes.length; i++) if (state[i] === 0) visit(i);
  return order;
}

/**
 * Runs shape inference and costing. With `strict`, a node that cannot be
 * evaluated is an error; otherwise (reports with unknown ops) it is skipped and
 * its outputs stay unknown.
 */
export function runGraph(plan: GraphPlan, inputs: Map<string, TensorInfo>, strict: boolean): GraphRun {
  const tensors = new Map(plan.initial);
  for (const [k, v] of inputs) tensors.set(k, v);
  const byOp = new Map<string, OpTotals>();
  for (const { node, op, rule, preset } of plan.nodes) {
    let totals = byOp.get(op);
    if (!totals) byOp.set(op, totals = { count: 0, macs: 0, other: 0 });
    totals.count++;
    if (!rule) continue;
    const ins: (TensorInfo | undefined)[] = [];
    let missing = "";
    for (const name of node.inputs) {
      const t = name === "" ? undefined : tensors.get(name);
      if (name !== "" && !t) missing ||= name;
      ins.push(t);
    }
    if (missing) {
      if (strict) throw nodeError(node, `input "${missing}" is not produced by any node or graph input`);
      continue;
    }
    let result = preset;
    try {
      result ??= rule(new NodeContext(node, plan.opset, ins));
    } catch (e) {
      if (e instanceof OnnxShapeError) throw nodeError(node, e.message);
      throw e;
    }
    node.outputs.forEach((name, i) => {
      const t = result.outputs[i];
      if (name !== "" && t) tensors.set(name, t);
    });
    totals.macs += result.macs ?? 0;
    totals.other += result.other ?? 0;
  }
  return { tensors, byOp };
}

function tryRule(rule: OpRule, node: OnnxNode, opset: number): OpResult | undefined {
  try {
    return rule(new NodeContext(node, opset, []));
  } catch {
    return undefined; // reported with node context when the graph is walked
  }
}

function nodeError(node: OnnxNode, message: string): OnnxShapeError {
  const name = node.name ? ` "${node.name}"` : "";
  return new OnnxShapeError(`${node.opType} node${name}: ${message}`);
}
