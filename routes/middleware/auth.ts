// Who is calling. API keys are bearer tokens checked by hono/bearer-auth against the metering store
// (`verifyToken`); with AUTH=off every caller is the anonymous subject. The admin API takes the server's
// ADMIN_TOKEN the same way. Failures are problem+json: 401 without a known token, 403 for a revoked key or a wrong
// admin token.

import type { Context } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { createMiddleware } from "hono/factory";
import type { Config } from "../../lib/config.ts";
import { ForbiddenError, UnauthorizedError } from "../../lib/errors.ts";
import { ANONYMOUS, type KeyStatus, type MeterStore } from "../../lib/metering/mod.ts";
import { problem } from "../problem.ts";

/** The authenticated caller: a metering subject, and its key when keys are on. */
export interface Caller {
  id: string;
  key: KeyStatus | null;
}

/** Variables `apiKey` needs (`meter`, from the readiness middleware) and sets (`caller`). */
export type CallerEnv = { Variables: { meter: MeterStore; caller: Caller } };

const REALM = 'Bearer realm="thriftseg"';

function unauthorized(c: Context, detail: string): Response {
  return problem(401, "unauthorized", detail, {}, { "WWW-Authenticate": REALM }, c.get("requestId"));
}

/**
 * Resolves the caller from `Authorization: Bearer <key>` (AUTH=on) or as `anonymous` (AUTH=off).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { loadConfig } from "../../lib/config.ts";
 * import { Services } from "../services.ts";
 * import { storeReady } from "./ready.ts";
 * import { apiKey } from "./auth.ts";
 * const services = new Services(loadConfig({}));
 * new Hono().get("/me", storeReady(services), apiKey(services.config), (c) => c.text(c.var.caller.id));
 * ```
 */
export function apiKey(config: Pick<Config, "AUTH">) {
  const keyed = bearerAuth<CallerEnv>({
    realm: "thriftseg",
    verifyToken: async (token, c) => {
      try {
        const key = await c.var.meter.authenticate(token);
        c.set("caller", { id: key.id, key });
        return true;
      } catch (err) {
        // Unknown keys answer like a missing one; a revoked key (403) is thrown on.
        if (err instanceof UnauthorizedError) return false;
        throw err;
      }
    },
    noAuthenticationHeader: {
      message: (c) => unauthorized(c, "send your API key as 'Authorization: Bearer <key>'"),
    },
    invalidAuthenticationHeader: {
      message: (c) => unauthorized(c, "the Authorization header must be 'Bearer <key>'"),
    },
    invalidToken: { message: (c) => unauthorized(c, "unknown API key") },
  });
  return createMiddleware<CallerEnv>(async function apiKey(c, next) {
    if (config.AUTH === "off") {
      c.set("caller", { id: ANONYMOUS, key: null });
      return await next();
    }
    return await keyed(c, next);
  });
}

/**
 * The admin API's guard: the server's ADMIN_TOKEN as a bearer token (compared in constant time by
 * hono/bearer-auth); 403 when the admin API is off (no ADMIN_TOKEN) or the token is wrong.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { adminToken } from "./auth.ts";
 * new Hono().use("/v1/admin/*", adminToken({ ADMIN_TOKEN: "a-long-admin-token-0123" }));
 * ```
 */
export function adminToken(config: Pick<Config, "ADMIN_TOKEN">) {
  const token = config.ADMIN_TOKEN;
  const check = token === undefined ? null : bearerAuth({
    token,
    realm: "thriftseg-admin",
    noAuthenticationHeader: {
      message: (c) => unauthorized(c, "send the admin token as 'Authorization: Bearer <token>'"),
    },
    invalidAuthenticationHeader: {
      message: (c) => unauthorized(c, "the Authorization header must be 'Bearer <token>'"),
    },
    invalidToken: {
      message: (c) => problem(403, "not-admin", "wrong admin token", {}, {}, c.get("requestId")),
    },
  });
  return createMiddleware(async function adminToken(c, next) {
    if (!check) throw new ForbiddenError("the admin API is disabled: set ADMIN_TOKEN", "admin-disabled");
    return await check(c, next);
  });
}
