// GET /v1/models — tasks, their classes and models with costs at the
// task's reference size (computed by the CostCounter, not typed in).

import { Hono } from "hono";
import { type ModelRegistry, referenceShape } from "../lib/models.ts";
import type { AppEnv } from "./env.ts";
import type { Services } from "./services.ts";
import { ready } from "./middleware/ready.ts";

/** The /v1/models document for a registry. */
export function describeModels(registry: ModelRegistry) {
  return {
    tasks: [...registry.tasks.values()].map((t) => ({
      name: t.name,
      classes: t.classes,
      channels: t.channels,
      selector: t.selector,
      modes: t.selector === "policy" ? ["adaptive", "glimpse", "fixed"] : ["adaptive", "fixed"],
      reference: t.reference,
      models: registry.modelsOf(t.name).map((m) => {
        const shape = referenceShape(m.spec, t);
        const cost = m.counter.count(shape);
        return {
          id: m.spec.id,
          role: m.spec.role,
          description: m.spec.description ?? null,
          source: m.spec.source ?? { file: m.spec.file },
          sha256: m.spec.sha256,
          input: { channels: m.spec.input.channels, multiple: m.spec.input.multiple },
          halo: m.spec.tile?.halo ?? 0,
          reference_shape: shape,
          gflops: cost.gflops,
          gmacs: cost.gmacs,
          test_miou: m.spec.test_miou ?? null,
        };
      }),
    })),
  };
}

/** Builds the models route. */
export function modelRoutes(services: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/v1/models", ready(services), (c) => c.json(describeModels(c.var.ready.registry)));
  return app;
}
