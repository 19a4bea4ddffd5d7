// Reading request bodies under a byte limit, streamed so a huge or endless
// upload is cut off at the limit instead of being buffered whole.

import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from "../lib/errors.ts";

/** Media types accepted as a raw image body. */
export const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/tiff"];

/** Reads at most `max` bytes of the body or throws 413. */
export async function readLimited(req: Request, max: number): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    throw new PayloadTooLargeError(`body of ${declared} bytes is over the ${max}-byte limit`, { max_bytes: max });
  }
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        await reader.cancel().catch(() => {});
        throw new PayloadTooLargeError(`body is over the ${max}-byte limit`, { max_bytes: max });
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof PayloadTooLargeError) throw err;
    throw new BadRequestError(`could not read the request body: ${(err as Error).message}`, "bad-body");
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** The uploaded image: bytes and the media type the client declared. */
export interface Upload {
  bytes: Uint8Array;
  /** The declared image type, or undefined when the client sent a generic one. */
  contentType?: string;
}

/** Extracts the image from a raw or multipart body (field `image`). */
export async function readUpload(req: Request, max: number): Promise<Upload> {
  const header = req.headers.get("content-type") ?? "";
  const type = header.split(";")[0].trim().toLowerCase();
  if (type === "multipart/form-data") {
    const raw = await readLimited(req, max);
    let form: FormData;
    try {
      form = await new Response(raw as Uint8Array<ArrayBuffer>, { headers: { "content-type": header } }).formData();
    } catch (err) {
      throw new BadRequestError(`malformed multipart body: ${(err as Error).message}`, "bad-multipart");
    }
    const file = form.get("image");
    if (!(file instanceof File)) {
      throw new BadRequestError("multipart body has no file in the field 'image'", "bad-multipart");
    }
    const partType = file.type.split(";")[0].trim().toLowerCase();
    // A generic part type says nothing: let the bytes decide.
    const declared = partType && partType !== "application/octet-stream" ? partType : undefined;
    return { bytes: new Uint8Array(await file.arrayBuffer()), contentType: declared };
  }
  if (!IMAGE_TYPES.includes(type) && type !== "application/octet-stream") {
    throw new UnsupportedMediaTypeError(
      `Content-Type '${type || "(none)"}' is not accepted; send the image as ${IMAGE_TYPES.join(", ")}, ` +
        "application/octet-stream, or multipart/form-data with the file in field 'image'",
      { supported: [...IMAGE_TYPES, "application/octet-stream", "multipart/form-data"] },
    );
  }
  const bytes = await readLimited(req, max);
  if (bytes.byteLength === 0) throw new BadRequestError("the request body is empty; send an image", "empty-body");
  return { bytes, contentType: type === "application/octet-stream" ? undefined : type };
}
