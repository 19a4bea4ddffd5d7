// GET /docs — the interactive API reference (Swagger UI via @hono/swagger-ui) rendered from /openapi.json. The
// page's script and stylesheet are served from the npm package swagger-ui-dist on this server, so the page needs
// no network beyond it.

import { Hono } from "hono";
import { swaggerUI } from "@hono/swagger-ui";
import { NotFoundError } from "../lib/errors.ts";
import type { AppEnv } from "./env.ts";

const ASSET_BASE = "/docs/assets";
/** The files of swagger-ui-dist the page loads, by content type. */
const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};
const PACKAGE = new URL("../node_modules/swagger-ui-dist/", import.meta.url);

/**
 * Builds GET /docs and its assets.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { docsRoutes } from "./docs.ts";
 * const app = new Hono().route("/", docsRoutes());
 * ```
 */
export function docsRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const cache = new Map<string, Uint8Array<ArrayBuffer>>();
  app.get(
    "/docs",
    swaggerUI({ url: "/openapi.json", baseUrl: ASSET_BASE, title: "thriftseg API", persistAuthorization: true }),
  );
  app.get(`${ASSET_BASE}/swagger-ui-dist/:file`, async (c) => {
    const file = c.req.param("file");
    const type = ASSETS[file];
    if (!type) throw new NotFoundError(`no asset ${file}`);
    let bytes = cache.get(file);
    if (!bytes) cache.set(file, bytes = await Deno.readFile(new URL(file, PACKAGE)));
    return c.body(bytes, 200, { "content-type": type, "cache-control": "public, max-age=86400" });
  });
  return app;
}
