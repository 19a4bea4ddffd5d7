// A request body that stops arriving (a client that declared more bytes than
// it sends, or a slow-loris upload) must end in a 400, not hold a handler and
// a socket forever: Deno.serve has no body timeout, so the body stream is
// wrapped in one that fails when no bytes come for `idleMs`.

import { BadRequestError } from "../errors.ts";

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
  let received = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BodyTimeoutError(received, declared, idleMs)), idleMs);
      });
      try {
        const { done, value } = await Promise.race([reader.read(), stalled]);
        if (done) controller.close();
        else {
          received += value.byteLength;
          controller.enqueue(value);
        }
      } catch (err) {
        reader.cancel().catch(() => {});
        controller.error(err);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
