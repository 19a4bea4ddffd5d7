// The image field of a multipart/form-data upload, read with @remix-run/multipart-parser. One function for both places
// it runs: a decode worker (workers/decode.ts; the server's path) and the calling thread (tests and tools without a
// DecodePool).
//
// Not Deno's own form parser (`Response.formData()`), which this used before: it puts every file part in the
// process-wide blob store, freed only by a finalizer after the File is collected — a busy thread collects rarely, and a
// worker terminated first never frees them. Measured (.scratch): 1,400 forms of 4 MiB through the decode pool (its
// worker replaced every 200) left the process 55 → 244 MB after gc and malloc_trim, rising by ~25 MB per worker; 500
// parsed on one thread grew it 4 MB per form until the loop let go. This parser slices the body in JavaScript only.

import { getMultipartBoundary, parseMultipart } from "@remix-run/multipart-parser";
import { BadRequestError } from "../errors.ts";

/** The `image` field of a multipart form: its bytes and the part's declared type ("" when none). */
export interface FormFile {
  bytes: Uint8Array;
  type: string;
}

/**
 * The `image` file of a multipart/form-data `body` sent with `contentType` (its boundary), or null when the form has
 * no file in that field; 400 `bad-multipart` when the body is not a well-formed form.
 *
 * @example
 * ```ts
 * import { imageField } from "./form.ts";
 * const fd = new FormData();
 * fd.append("image", new File([new Uint8Array([1, 2, 3])], "a.png", { type: "image/png" }));
 * const req = new Request("http://x/", { method: "POST", body: fd });
 * const file = await imageField(new Uint8Array(await req.arrayBuffer()), req.headers.get("content-type")!);
 * console.log(file?.type, file?.bytes.length); // image/png 3
 * ```
 */
export function imageField(body: Uint8Array, contentType: string): Promise<FormFile | null> {
  const boundary = getMultipartBoundary(contentType);
  if (!boundary) return Promise.reject(malformed("the Content-Type has no boundary"));
  try {
    // The body is already within the upload limit: no part can be larger. The first part named "image" decides, as
    // FormData.get("image") did: a file there is the upload, a plain field is not.
    const size = Math.max(1, body.byteLength);
    for (const part of parseMultipart(body, { boundary, maxFileSize: size, maxTotalSize: size, maxParts: MAX_PARTS })) {
      if (part.name !== "image") continue;
      return Promise.resolve(part.isFile ? { bytes: part.bytes, type: part.headers["content-type"] ?? "" } : null);
    }
    return Promise.resolve(null);
  } catch (err) {
    return Promise.reject(malformed((err as Error)?.message ?? String(err)));
  }
}

/** Most parts a form may have (the parser's own default): past it, 400. */
const MAX_PARTS = 1000;

const malformed = (why: string) => new BadRequestError(`malformed multipart body: ${why}`, "bad-multipart");
