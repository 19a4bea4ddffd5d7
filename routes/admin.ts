// /v1/admin/keys — key management over HTTP, behind ADMIN_TOKEN.

import { Hono } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
import { NotFoundError, UnprocessableError } from "../lib/errors.ts";
import { CreateKeyBody, keyJson, TopUpBody } from "../lib/keys.ts";
import type { MeterStore } from "../lib/metering/mod.ts";
import type { AppEnv } from "./env.ts";
import type { Services } from "./services.ts";
import { adminToken } from "./middleware/auth.ts";
import { storeReady } from "./middleware/ready.ts";

/** A JSON body validator: 422 naming the first bad field. */
function jsonBody<T extends z.ZodType>(schema: T) {
  return validator("json", (raw): z.infer<T> => {
    const r = schema.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new UnprocessableError(`invalid field ${issue.path.join(".")}: ${issue.message}`, "invalid-body");
    }
    return r.data;
  });
}

async function existing(meter: MeterStore, id: string): Promise<string> {
  if (!(await meter.getKey(id))) throw new NotFoundError(`no key ${id}`, "unknown-key");
  return id;
}

/** Builds the admin routes. */
export function adminRoutes(services: Services): Hono<AppEnv> {
  const { config } = services;
  const app = new Hono<AppEnv>();
  app.use("/v1/admin/*", adminToken(config));
  app.post("/v1/admin/keys", storeReady(services), jsonBody(CreateKeyBody), async (c) => {
    const body = c.req.valid("json");
    const rate = body.rate_limit ??
      { requests: config.RATE_LIMIT_REQUESTS, window_seconds: config.RATE_LIMIT_WINDOW_S };
    const { key, secret } = await c.var.meter.createKey({
      name: body.name,
      creditGflops: body.credit_gflops,
      rateLimit: { requests: rate.requests, windowSeconds: rate.window_seconds },
    });
    const created = await c.var.meter.getKey(key.id);
    if (!created) throw new NotFoundError(`key ${key.id} vanished after creation`, "unknown-key");
    return c.json({ ...keyJson(created), secret }, 201);
  });
  app.get("/v1/admin/keys", storeReady(services), async (c) => {
    return c.json({ keys: (await c.var.meter.listKeys()).map(keyJson) });
  });
  app.post("/v1/admin/keys/:id/revoke", storeReady(services), async (c) => {
    const { meter } = c.var;
    return c.json(keyJson(await meter.revokeKey(await existing(meter, c.req.param("id")))));
  });
  app.post("/v1/admin/keys/:id/topup", storeReady(services), jsonBody(TopUpBody), async (c) => {
    const { meter } = c.var;
    const id = await existing(meter, c.req.param("id"));
    return c.json(keyJson(await meter.topUp(id, c.req.valid("json").gflops)));
  });
  return app;
}
