// The image field of a multipart/form-data upload, read with Deno's own form parser (what `Request.formData()` runs).
// One function for both places it runs: a decode worker (workers/decode.ts; the server's path, since the parser holds
// its thread ~20 ms per MiB) and the calling thread (tests and tools without a DecodePool).

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
export async function imageField(body: Uint8Array, contentType: string): Promise<FormFile | null> {
  let form: FormData;
  try {
    form = await new Response(body as Uint8Array<ArrayBuffer>, { headers: { "content-type": contentType } }).formData();
  } catch (err) {
    throw new BadRequestError(`malformed multipart body: ${(err as Error)?.message ?? err}`, "bad-multipart");
  }
  const file = form.get("image");
  return file instanceof File ? { bytes: new Uint8Array(await file.arrayBuffer()), type: file.type } : null;
}
