// GET /v1/usage and GET /v1/usage/events — the caller's own usage only.

import { Hono } from "hono";
import { z } from "zod";
import { BadRequestError, UnprocessableError } from "../lib/errors.ts";
import type { AppEnv, Services } from "./app.ts";
import { authenticate } from "./_auth.ts";
import { EventsQuery, UsageQuery } from "./schemas.ts";

function parseQuery<T extends z.ZodType>(schema: T, query: Record<string, string>): z.infer<T> {
  const r = schema.safeParse(query);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new UnprocessableError(
      `invalid query parameter ${String(issue.path[0] ?? "")}: ${issue.message}`,
      "invalid-query",
    );
  }
  return r.data;
}

/** Builds the usage routes. */
export function usageRoutes(services: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use("/v1/usage", authenticate(services));
  app.use("/v1/usage/*", authenticate(services));
  app.get("/v1/usage", async (c) => {
    const q = parseQuery(UsageQuery, c.req.query());
    const to = q.to ?? new Date().toISOString().slice(0, 10);
    const from = q.from ?? new Date(Date.parse(to) - 30 * 86400_000).toISOString().slice(0, 10);
    if (from > to) throw new UnprocessableError("from is after to", "invalid-query");
    const meter = services.meter()!;
    const days = await meter.days(c.get("caller").id, from, to);
    const total = days.reduce(
      (t, d) => ({
        requests: t.requests + d.requests,
        gflops: t.gflops + d.gflops,
        amount: t.amount + d.billed.amount,
      }),
      { requests: 0, gflops: 0, amount: 0 },
    );
    return c.json({
      subject: c.get("caller").id,
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
  app.get("/v1/usage/events", async (c) => {
    const q = parseQuery(EventsQuery, c.req.query());
    try {
      const page = await services.meter()!.events(c.get("caller").id, q.limit, q.cursor);
      return c.json({ events: page.events, next_cursor: page.nextCursor });
    } catch (err) {
      if (q.cursor) throw new BadRequestError("invalid cursor", "invalid-cursor");
      throw err;
    }
  });
  return app;
}
