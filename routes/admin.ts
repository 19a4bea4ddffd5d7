// /v1/admin/keys — key management over HTTP, behind ADMIN_TOKEN.

import { Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import {
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
  UnavailableError,
  UnprocessableError,
} from "../lib/errors.ts";
import { flopsToGflops, type KeyStatus } from "../lib/metering.ts";
import type { AppEnv, Services } from "./app.ts";
import { bearer } from "./_auth.ts";
import { CreateKeyBody, TopUpBody } from "./schemas.ts";

/** A key as the admin API shows it (never the secret). */
export function keyJson(k: KeyStatus) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    credit_remaining_gflops: k.creditFlops === null ? null : flopsToGflops(k.creditFlops),
    debited_gflops: flopsToGflops(k.debitedFlops),
    rate_limit: { requests: k.rateLimit.requests, window_seconds: k.rateLimit.windowSeconds },
    created_at: k.createdAt,
    revoked_at: k.revokedAt,
  };
}

function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a), y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

function adminOnly(services: Services): MiddlewareHandler<AppEnv> {
  return async function admin(c, next) {
    const expected = services.config.ADMIN_TOKEN;
    if (!expected) throw new ForbiddenError("the admin API is disabled: set ADMIN_TOKEN", "admin-disabled");
    const token = bearer(c.req.header("authorization"));
    if (!token) throw new UnauthorizedError("send the admin token as 'Authorization: Bearer <token>'");
    if (!timingSafeEqual(token, expected)) throw new ForbiddenError("wrong admin token", "not-admin");
    if (!services.meter()) throw new UnavailableError("the metering store is opening", 1, "not-ready");
    await next();
  };
}

async function jsonBody<T extends z.ZodType>(req: Request, schema: T): Promise<z.infer<T>> {
  let raw: unknown;
  try {
    raw = await req.json();
  } catch {
    throw new UnprocessableError("the body must be JSON", "invalid-body");
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new UnprocessableError(`invalid field ${issue.path.join(".")}: ${issue.message}`, "invalid-body");
  }
  return r.data;
}

/** Builds the admin routes. */
export function adminRoutes(services: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use("/v1/admin/*", adminOnly(services));
  const meter = () => services.meter()!;
  app.post("/v1/admin/keys", async (c) => {
    const body = await jsonBody(c.req.raw, CreateKeyBody);
    const { key, secret } = await meter().createKey({
      name: body.name,
      creditGflops: body.credit_gflops,
      rateLimit: body.rate_limit
        ? { requests: body.rate_limit.requests, windowSeconds: body.rate_limit.window_seconds }
        : { requests: services.config.RATE_LIMIT_REQUESTS, windowSeconds: services.config.RATE_LIMIT_WINDOW_S },
    });
    return c.json({ ...keyJson((await meter().getKey(key.id))!), secret }, 201);
  });
  app.get("/v1/admin/keys", async (c) => c.json({ keys: (await meter().listKeys()).map(keyJson) }));
  const existing = async (id: string) => {
    if (!(await meter().getKey(id))) throw new NotFoundError(`no key ${id}`, "unknown-key");
    return id;
  };
  app.post("/v1/admin/keys/:id/revoke", async (c) => {
    return c.json(keyJson(await meter().revokeKey(await existing(c.req.param("id")))));
  });
  app.post("/v1/admin/keys/:id/topup", async (c) => {
    const id = await existing(c.req.param("id"));
    const body = await jsonBody(c.req.raw, TopUpBody);
    return c.json(keyJson(await meter().topUp(id, body.gflops)));
  });
  return app;
}
