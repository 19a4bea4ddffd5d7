// GET /v1/usage and GET /v1/usage/events — the caller's own usage only.

import { Hono } from "hono";
import { validator } from "hono/validator";
import { z } from "zod";
import { BadRequestError, UnprocessableError } from "../lib/errors.ts";
import type { AppEnv } from "./env.ts";
import type { Services } from "./services.ts";
import { apiKey } from "./middleware/auth.ts";
import { storeReady } from "./middleware/ready.ts";
import { EventsQuery, UsageQuery } from "./schemas.ts";

/** A query validator: 422 naming the first bad parameter. */
function query<T extends z.ZodType>(schema: T) {
  return validator("query", (q): z.infer<T> => {
    const r = schema.safeParse(q);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new UnprocessableError(
        `invalid query parameter ${String(issue.path[0] ?? "")}: ${issue.message}`,
        "invalid-query",
      );
    }
    return r.data;
  });
}

/** Builds the usage routes. */
export function usageRoutes(services: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const caller = [storeReady(services), apiKey(services.config)] as const;
  app.get("/v1/usage", ...caller, query(UsageQuery), async (c) => {
    const q = c.req.valid("query");
    const to = q.to ?? new Date().toISOString().slice(0, 10);
    const from = q.from ?? new Date(Date.parse(to) - 30 * 86400_000).toISOString().slice(0, 10);
    if (from > to) throw new UnprocessableError("from is after to", "invalid-query");
    const { meter, caller } = c.var;
    const days = await meter.days(caller.id, from, to);
    const total = days.reduce(
      (t, d) => ({
        requests: t.requests + d.requests,
        gflops: t.gflops + d.gflops,
        amount: t.amount + d.billed.amount,
      }),
      { requests: 0, gflops: 0, amount: 0 },
    );
    return c.json({
      subject: caller.id,
      from,
      to,
      price: { per_gflop: meter.price.perGflop, currency: meter.price.currency },
      days,
      total: {
        requests: total.requests,
        gflops: total.gflops,
        billed: { amount: total.amount, currency: meter.price.currency },
      },
    });
  });
  app.get("/v1/usage/events", ...caller, query(EventsQuery), async (c) => {
    const q = c.req.valid("query");
    try {
      const page = await c.var.meter.events(c.var.caller.id, q.limit, q.cursor);
      return c.json({ events: page.events, next_cursor: page.nextCursor });
    } catch (err) {
      if (q.cursor) throw new BadRequestError("invalid cursor", "invalid-cursor");
      throw err;
    }
  });
  return app;
}
