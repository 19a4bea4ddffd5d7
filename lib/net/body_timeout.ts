// A request body that stops arriving (a client that declared more bytes than
// it sends, or a slow-loris upload) must end in a 400, not hold a handler and
// a socket forever: Deno.serve has no body timeout, so the body stream is
// wrapped in one that fails when no bytes come for `idleMs`.
//
// The same wrapper hands the event loop back every `YIELD_EVERY_BYTES`: Deno's
// request body arrives in 64 KiB reads that, once the bytes are buffered,
// resolve one after another without letting a timer or another request run.
// Measured (.scratch, a 13.2 MB upload from curl, a 1 ms interval timer on the
// server): the loop stalled up to 42–75 ms per upload reading it plainly, 3–11
// ms with a macrotask turn every 1 MiB (every 256 KiB: 3–8 ms, but the read
// took twice as long); in the soak, 13 MB GIF uploads held /healthz 55–122 ms.

import { BadRequestError } from "../errors.ts";

/** Bytes read between two turns of the event loop (see the comment at the top). */
export const YIELD_EVERY_BYTES = 1 << 20;

const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** 400: no body bytes arrived for the idle timeout. */
export class BodyTimeoutError extends BadRequestError {
  constructor(received: number, declared: number | null, idleMs: number) {
    const of = declared === null ? "" : ` of the ${declared} declared`;
    super(
      `the request body stalled: ${received}${of} bytes received, then nothing for ${idleMs} ms`,
      "body-timeout",
      { received_bytes: received, ...(declared === null ? {} : { declared_bytes: declared }), body_timeout_ms: idleMs },
    );
  }
}

/**
 * Wraps a body stream so a read that waits longer than `idleMs` for the next
 * chunk errors with {@link BodyTimeoutError} (and cancels the source).
 *
 * @example
 * ```ts
 * import { timedBody } from "./body_timeout.ts";
 * const req = new Request("http://localhost/", { method: "POST", body: "abc" });
 * const body = timedBody(req.body!, 10_000, Number(req.headers.get("content-length")));
 * const bytes = await new Response(body).arrayBuffer();
 * ```
 */
export function timedBody(
  source: ReadableStream<Uint8Array>,
  idleMs: number,
  declared: number | null = null,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let received = 0, sinceTurn = 0;
  // One watchdog timer per idle period, not one timer (and a Promise.race) per chunk: a CPU profile of the soak's
  // uploads found this wrapper's per-chunk work among the main thread's longest tasks. The timer runs only while a
  // read is pending, so a handler that reads the body late is not timed out for the client's sake.
  let pending = false, pullStart = 0, failed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let ctrl: ReadableStreamDefaultController<Uint8Array>;
  const watch = () => {
    timer = undefined;
    if (!pending || failed) return; // disarmed; the next read arms it again
    const idle = performance.now() - pullStart;
    if (idle < idleMs) {
      timer = setTimeout(watch, idleMs - idle);
      return;
    }
    failed = true;
    ctrl.error(new BodyTimeoutError(received, declared, idleMs));
    reader.cancel().catch(() => {});
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      ctrl = controller;
    },
    async pull(controller) {
      pending = true;
      pullStart = performance.now();
      timer ??= setTimeout(watch, idleMs);
      try {
        const { done, value } = await reader.read();
        pending = false;
        if (failed) return;
        if (done) {
          clearTimeout(timer);
          controller.close();
        } else {
          received += value.byteLength;
          sinceTurn += value.byteLength;
          controller.enqueue(value);
          if (sinceTurn >= YIELD_EVERY_BYTES) {
            sinceTurn = 0;
            await nextTurn();
          }
        }
      } catch (err) {
        pending = false;
        clearTimeout(timer);
        if (!failed) controller.error(err);
      }
    },
    cancel(reason) {
      clearTimeout(timer);
      return reader.cancel(reason);
    },
  });
}
