// Who is calling: a bearer API key (AUTH=on) or the anonymous subject
// (AUTH=off). Sets `caller` for the handlers.

import type { MiddlewareHandler } from "hono";
import { UnauthorizedError, UnavailableError } from "../lib/errors.ts";
import { ANONYMOUS, type KeyStatus } from "../lib/metering.ts";
import type { AppEnv, Services } from "./app.ts";

/** The authenticated caller. */
export interface Caller {
  id: string;
  key: KeyStatus | null;
}

/** Extracts the token of an `Authorization: Bearer …` header, or null. */
export function bearer(header: string | undefined): string | null {
  const m = /^Bearer\s+([A-Za-z0-9._~+/=-]{1,512})\s*$/i.exec(header ?? "");
  return m ? m[1] : null;
}

/** Middleware: resolves the caller or answers 401/403. */
export function authenticate(services: Services): MiddlewareHandler<AppEnv> {
  return async function auth(c, next) {
    if (services.config.AUTH === "off") {
      c.set("caller", { id: ANONYMOUS, key: null });
      return await next();
    }
    const meter = services.meter();
    if (!meter) throw new UnavailableError("the metering store is opening", 1, "not-ready");
    const token = bearer(c.req.header("authorization"));
    if (!token) throw new UnauthorizedError("send your API key as 'Authorization: Bearer <key>'");
    const key = await meter.authenticate(token);
    c.set("caller", { id: key.id, key });
    await next();
  };
}
