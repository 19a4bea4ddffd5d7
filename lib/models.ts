// The model registry: reads models/manifest.json, finds each model's file,
// checks its sha256 and attaches a CostCounter so every execution can be
// priced before it runs.

import { z } from "zod";
import { CostCounter } from "./onnx/mod.ts";
import { LevelGraphError, type LevelGraphs, levelGraphs } from "./onnx/levels.ts";
import { foldElementwise } from "./onnx/fuse.ts";
import { PageCost } from "./onnx/page_cost.ts";
import type { WorkerModel } from "../workers/protocol.ts";
import { NotFoundError } from "./errors.ts";

// How many windows a page graph may have and be ready in every worker (lib/onnx/page_inputs.ts): for the planners,
// which import no lib/onnx/ module.
export { PRELOADED_WINDOWS } from "./onnx/page_inputs.ts";

const InputSpec = z.object({
  channels: z.number().int().min(1),
  multiple: z.number().int().min(1).default(1),
  channel_order: z.enum(["rgb", "bgr", "grey"]).default("rgb"),
  mean: z.array(z.number()).optional(),
  std: z.array(z.number()).optional(),
  /** Grey level (0–255) transparent pixels are composited over. */
  background: z.number().int().min(0).max(255).default(0),
});

const ModelEntry = z.object({
  id: z.string(),
  task: z.string(),
  role: z.enum(["global", "local", "policy"]),
  description: z.string().optional(),
  file: z.string().optional(),
  source: z.object({ npm: z.string(), path: z.string(), license: z.string().optional() }).optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  input: InputSpec,
  output: z.object({
    kind: z.enum(["probability", "logits"]),
    threshold: z.number().optional(),
  }),
  tile: z.object({ size: z.number().int().optional(), halo: z.number().int().min(0) }).optional(),
  test_miou: z.number().nullable().optional(),
  /** Routing policies: which model each action index runs (the first is "keep the global model"). */
  policy: z.object({ actions: z.array(z.object({ action: z.string(), model: z.string() })).min(2) }).loose()
    .optional(),
  /** Shape the model is priced at in /v1/models and at load (default: the task's reference size). */
  reference_shape: z.array(z.number().int().min(1)).length(4).optional(),
});

const TaskEntry = z.object({
  classes: z.array(z.string()).min(2),
  channels: z.union([z.literal(1), z.literal(3)]),
  reference: z.object({ width: z.number().int(), height: z.number().int() }),
  selector: z.enum(["complexity", "policy"]),
});

const Manifest = z.object({
  version: z.literal(1),
  tasks: z.record(z.string(), TaskEntry),
  models: z.array(ModelEntry),
});

/** A model as described by the manifest. */
export type ModelSpec = z.infer<typeof ModelEntry>;
/** A task as described by the manifest. */
export type TaskSpec = z.infer<typeof TaskEntry> & { name: string };

/** A loaded model: its spec, its bytes and its cost counter. */
export interface LoadedModel {
  spec: ModelSpec;
  bytes: Uint8Array;
  counter: CostCounter;
  /**
   * The model cut for level-by-level pooling (lib/onnx/levels.ts), when it has global average pools the cut supports,
   * and what its page graphs cost (lib/onnx/page.ts).
   */
  levels?: { graphs: LevelGraphs; cost: PageCost };
}

const ROOT = new URL("../", import.meta.url);

/**
 * The input shape a model is priced at when no request is involved: its own
 * `reference_shape`, else its tile (or the task's reference size) rounded up
 * to the input multiple.
 */
export function referenceShape(
  spec: ModelSpec,
  task: { reference: { width: number; height: number } } | undefined,
): number[] {
  if (spec.reference_shape) return spec.reference_shape;
  const m = spec.input.multiple;
  const h = spec.tile?.size ?? task?.reference.height ?? 256;
  const w = spec.tile?.size ?? task?.reference.width ?? 256;
  return [1, spec.input.channels, Math.ceil(h / m) * m, Math.ceil(w / m) * m];
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return new Uint8Array(digest).toHex();
}

function modelPath(spec: ModelSpec): URL {
  if (spec.file) return new URL(`models/${spec.file}`, ROOT);
  if (spec.source) {
    const name = spec.source.npm.replace(/@[^@/]+$/, "");
    return new URL(`node_modules/${name}/${spec.source.path}`, ROOT);
  }
  throw new Error(`model ${spec.id} names neither a file nor an npm source`);
}

/** A model's level cut, when it has global average pools (a model whose pools cannot be cut runs without). */
function cutLevels(id: string, bytes: Uint8Array): LevelGraphs | null {
  try {
    return levelGraphs(bytes);
  } catch (err) {
    if (!(err instanceof LevelGraphError)) throw err;
    console.warn(`model ${id}: pools over its windows only (${err.message})`);
    return null;
  }
}

/** A model's level cut and what its page graphs cost (none without one). */
function withLevels(id: string, bytes: Uint8Array): Pick<LoadedModel, "levels"> {
  const graphs = cutLevels(id, bytes);
  return graphs ? { levels: { graphs, cost: new PageCost(graphs) } } : {};
}

/**
 * All tasks and models the server can run.
 *
 * @example
 * ```ts
 * const registry = await ModelRegistry.load();
 * const text = registry.task("text");
 * ```
 */
export class ModelRegistry {
  readonly tasks: Map<string, TaskSpec>;
  readonly models: Map<string, LoadedModel>;
  #workerModels?: WorkerModel[];

  private constructor(tasks: Map<string, TaskSpec>, models: Map<string, LoadedModel>) {
    this.tasks = tasks;
    this.models = models;
  }

  /** Reads the manifest and every model file it names, verifying sha256. */
  static async load(manifestUrl = new URL("models/manifest.json", ROOT)): Promise<ModelRegistry> {
    const manifest = Manifest.parse(JSON.parse(await Deno.readTextFile(manifestUrl)));
    const models = new Map<string, LoadedModel>();
    for (const spec of manifest.models) {
      const path = modelPath(spec);
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(path);
      } catch (err) {
        throw new Error(
          `model ${spec.id}: cannot read ${path.pathname} (${(err as Error).message}); run \`deno install\` first`,
        );
      }
      const digest = await sha256Hex(bytes);
      if (digest !== spec.sha256) {
        throw new Error(`model ${spec.id}: sha256 ${digest} does not match the manifest's ${spec.sha256}`);
      }
      const counter = CostCounter.fromBytes(bytes);
      // Price the model once now: a graph with ops the counter has no rule
      // for must fail at startup, not on a client's request.
      try {
        counter.count(referenceShape(spec, manifest.tasks[spec.task]));
      } catch (err) {
        throw new Error(`model ${spec.id}: cannot be priced: ${(err as Error).message}`);
      }
      models.set(spec.id, { spec, bytes, counter, ...withLevels(spec.id, bytes) });
    }
    const tasks = new Map<string, TaskSpec>();
    for (const [name, t] of Object.entries(manifest.tasks)) {
      if ([...models.values()].some((m) => m.spec.task === name)) tasks.set(name, { ...t, name });
    }
    return new ModelRegistry(tasks, models);
  }

  /** A task by name, or 404. */
  task(name: string): TaskSpec {
    const t = this.tasks.get(name);
    if (!t) {
      throw new NotFoundError(
        `unknown task '${name}'; available: ${[...this.tasks.keys()].join(", ")}`,
        "unknown-task",
      );
    }
    return t;
  }

  /** A model by id, or 404. */
  model(id: string): LoadedModel {
    const m = this.models.get(id);
    if (!m) {
      throw new NotFoundError(
        `unknown model '${id}'; available: ${[...this.models.keys()].join(", ")}`,
        "unknown-model",
      );
    }
    return m;
  }

  /**
   * What the inference workers load: every model's graph with its elementwise runs folded (lib/onnx/fuse.ts: the same
   * function in fewer passes), its level cut made from that graph, and its input format. Costs stay counted on the
   * model's own graph (`counter`, `levels.cost`). Made once, the first time it is asked for.
   */
  workerModels(): WorkerModel[] {
    return this.#workerModels ??= [...this.models.values()].map((m) => {
      const bytes = foldElementwise(m.bytes);
      if (!m.levels) return { id: m.spec.id, bytes, input: m.spec.input };
      // The cut only: the folded graph's page graphs are never priced. Plans are made with the model's own cut, so
      // the folded one serves only where its tail has the same halo (where it runs on the same regions).
      const folded = bytes === m.bytes ? null : cutLevels(m.spec.id, bytes);
      const cut = folded?.tail.halo === m.levels.graphs.tail.halo ? folded : m.levels.graphs;
      const { input, output, pools, page, tail } = cut;
      return { id: m.spec.id, bytes, input: m.spec.input, levels: { input, output, pools, page, tail } };
    });
  }

  /** Models of one task, in manifest order. */
  modelsOf(task: string): LoadedModel[] {
    return [...this.models.values()].filter((m) => m.spec.task === task);
  }
}
