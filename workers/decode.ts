// Decode worker: runs lib/image's decodeImage off the main thread, so a slow
// decode (a many-scan JPEG, a large deflate TIFF) never stalls /healthz. The
// RGBA buffer goes back transferred, not copied; errors go back as data and
// are rebuilt as the same typed errors on the main thread (decode_pool.ts).

/// <reference lib="deno.worker" />

import { decodeImage } from "../lib/image/decode.ts";
import { ProblemError } from "../lib/errors.ts";
import type { DecodeReply, DecodeRequest } from "../lib/image/decode_pool.ts";

self.onmessage = async (event: MessageEvent<DecodeRequest>) => {
  const { id, bytes, limits, contentType } = event.data;
  let reply: DecodeReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const image = await decodeImage(bytes, limits, contentType);
    let data = image.data instanceof Uint8Array ? image.data : new Uint8Array(image.data.buffer);
    // Transfer only a buffer that is exactly the image (not a view into a larger one).
    if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength || !(data.buffer instanceof ArrayBuffer)) {
      data = data.slice();
    }
    transfer.push(data.buffer as ArrayBuffer);
    reply = { id, ok: true, width: image.width, height: image.height, data };
  } catch (err) {
    reply = {
      id,
      ok: false,
      error: err instanceof ProblemError
        ? { problem: true, name: err.name, status: err.status, slug: err.slug, message: err.message, extra: err.extra }
        : { problem: false, name: (err as Error)?.name ?? "Error", message: (err as Error)?.message ?? String(err) },
    };
  }
  self.postMessage(reply, transfer);
};
