// The uploaded image: a raw image body or the field `image` of a multipart form, with the media type the client
// declared. Hono has no body parser for raw images, hence this one; the size limit is body_limit.ts's, in front.

import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { setMetric } from "hono/timing";
import { BadRequestError, UnsupportedMediaTypeError } from "../../lib/errors.ts";
import { type FormFile, imageField } from "../../lib/image/form.ts";

/** Media types accepted as a raw image body. */
export const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/tiff"];

/** The uploaded image: bytes and the media type the client declared. */
export interface Upload {
  bytes: Uint8Array;
  /** The declared image type, or undefined when the client sent a generic one. */
  contentType?: string;
}

/** Variables `upload` sets. */
export type UploadEnv = { Variables: { upload: Upload } };

/** Reads a multipart/form-data body's `image` file (null when it has none): `imageField`, here or in a worker. */
export type FormParser = (body: Uint8Array, contentType: string) => Promise<FormFile | null>;

async function read<T>(body: () => Promise<T>, slug: string, what: string): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw new BadRequestError(`${what}: ${(err as Error).message}`, slug);
  }
}

/**
 * Reads the image into `c.var.upload`: 415 for a media type that is not an image, 400 for an empty body or a
 * multipart form without a file in `image`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { upload } from "./upload.ts";
 * new Hono().post("/size", upload(), (c) => c.json(c.var.upload.bytes.length));
 * ```
 */
export function upload(forms?: (c: Context) => FormParser | undefined) {
  return createMiddleware<UploadEnv>(async function upload(c, next) {
    const started = performance.now();
    // Server-Timing `read`: receiving the body (and parsing a form), where the app times requests.
    const timed = () => c.get("metric") && setMetric(c, "read", performance.now() - started, undefined, 2);
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type === "multipart/form-data") {
      // The body as it came, then the form parsed by the server's decode pool (off the main thread) or, without one,
      // here (400 bad-multipart when malformed).
      const body = new Uint8Array(await read(() => c.req.arrayBuffer(), "bad-body", "could not read the request body"));
      const file = await (forms?.(c) ?? imageField)(body, c.req.header("content-type")!);
      if (!file) throw new BadRequestError("multipart body has no file in the field 'image'", "bad-multipart");
      const partType = file.type.split(";")[0].trim().toLowerCase();
      // A generic part type says nothing: let the bytes decide.
      const declared = partType && partType !== "application/octet-stream" ? partType : undefined;
      c.set("upload", { bytes: file.bytes, contentType: declared });
      timed();
      return await next();
    }
    if (!IMAGE_TYPES.includes(type) && type !== "application/octet-stream") {
      throw new UnsupportedMediaTypeError(
        `Content-Type '${type || "(none)"}' is not accepted; send the image as ${IMAGE_TYPES.join(", ")}, ` +
          "application/octet-stream, or multipart/form-data with the file in field 'image'",
        { supported: [...IMAGE_TYPES, "application/octet-stream", "multipart/form-data"] },
      );
    }
    const bytes = new Uint8Array(await read(() => c.req.arrayBuffer(), "bad-body", "could not read the request body"));
    if (bytes.byteLength === 0) throw new BadRequestError("the request body is empty; send an image", "empty-body");
    c.set("upload", { bytes, contentType: type === "application/octet-stream" ? undefined : type });
    timed();
    await next();
  });
}
