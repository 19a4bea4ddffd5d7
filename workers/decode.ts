// Decode worker: runs lib/image's decodeImage off the main thread, so a slow
// decode (a many-scan JPEG, a large deflate TIFF) never stalls /healthz. The
// RGBA lands in a SharedArrayBuffer, shared with the main thread; errors go back as data and
// are rebuilt as the same typed errors on the main thread (decode_pool.ts).

/// <reference lib="deno.worker" />

import { decodeImage, wasmGrowth } from "../lib/image/decode.ts";
import { ProblemError } from "../lib/errors.ts";
import { imageField } from "../lib/image/form.ts";
import { idleRelease, niceThisThread } from "../lib/libc.ts";
import { ARENA_LIMITS, WORKER_NICE } from "./protocol.ts";
import {
  type DecodeRelease,
  type DecodeReply,
  type DecodeRequest,
  REUSE_MAX_BUFFERS,
  type SerialisedError,
} from "../lib/image/decode_pool.ts";

niceThisThread(WORKER_NICE);

// Buffers the main thread gave back (DecodePool.release), oldest first, reused for later images (the smallest that
// fits, if it is not more than 4× too large).
const free: SharedArrayBuffer[] = [];
// Idle as long as the inference workers wait before giving memory back (ARENA_LIMITS.idleMs): these buffers, the
// isolate's garbage and libvips' freed heap go back too (lib/libc.ts idleRelease).
const idle = idleRelease(ARENA_LIMITS.idleMs, () => free.length = 0);

function pixels(length: number): Uint8Array {
  let best = -1;
  free.forEach((b, i) => {
    if (b.byteLength >= length && b.byteLength <= 4 * length && (best < 0 || b.byteLength < free[best].byteLength)) {
      best = i;
    }
  });
  if (best < 0) return new Uint8Array(new SharedArrayBuffer(length));
  return new Uint8Array(free.splice(best, 1)[0], 0, length);
}

function keep(buffer: SharedArrayBuffer) {
  free.push(buffer);
  if (free.length > REUSE_MAX_BUFFERS) free.shift();
}

self.onmessage = async (event: MessageEvent<DecodeRequest | DecodeRelease>) => {
  if ("release" in event.data) {
    keep(event.data.release);
    return;
  }
  idle.touch();
  const { id, bytes, limits, contentType, native, form } = event.data;
  if (form !== undefined) {
    self.postMessage(...(await formReply(id, bytes, form)));
    return;
  }
  const growth = wasmGrowth();
  // The pixels go into a SharedArrayBuffer, off the main thread: posting it shares it without a copy, and the executor
  // hands the same buffer to the inference workers (it would otherwise copy it there, per request). The WebAssembly
  // decoders write straight into it (a reused one, most of the time); the others' output is copied in.
  let given: Uint8Array | undefined;
  let reply: DecodeReply;
  try {
    const image = await decodeImage(bytes, limits, contentType, { native, into: (n) => (given = pixels(n)) });
    const data = image.data === given ? given : pixels(image.data.byteLength);
    if (data !== image.data) data.set(image.data);
    reply = { id, grows: wasmGrowth() > growth, ok: true, width: image.width, height: image.height, data };
  } catch (err) {
    if (given) keep(given.buffer as SharedArrayBuffer);
    reply = { id, grows: wasmGrowth() > growth, ok: false, error: serialise(err) };
  }
  self.postMessage(reply);
};

// A multipart/form-data body's `image` field (lib/image/form.ts), parsed here instead of on the main thread; the file's
// bytes go back transferred.
async function formReply(id: number, body: Uint8Array, contentType: string): Promise<[DecodeReply, Transferable[]]> {
  try {
    const file = await imageField(body, contentType);
    return [{ id, grows: false, ok: true, file }, file ? [file.bytes.buffer as ArrayBuffer] : []];
  } catch (err) {
    return [{ id, grows: false, ok: false, error: serialise(err) }, []];
  }
}

function serialise(err: unknown): SerialisedError {
  return err instanceof ProblemError
    ? { problem: true, name: err.name, status: err.status, slug: err.slug, message: err.message, extra: err.extra }
    : { problem: false, name: (err as Error)?.name ?? "Error", message: (err as Error)?.message ?? String(err) };
}
