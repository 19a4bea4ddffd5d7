// serveResilient: Deno.serve that outlives running out of file descriptors.
// An accept() that fails with EMFILE ("Too many open files") ends
// Deno.serve's loop and rejects `finished`; unhandled, that ends the process.
// Here it frees the spare descriptors (FdReserve), shuts the failed server
// down gracefully — which closes its idle keep-alive and half-sent-header
// sockets (Deno.serve has no header or idle timeout of its own) while
// requests in flight finish — and listens again at once. For a while after,
// `underPressure()` is true so the guard closes connections after each
// response and sheds uploads.

import { FdReserve } from "./fd_reserve.ts";

/** Options of {@link serveResilient}. */
export interface ResilientServeOptions {
  port: number;
  hostname?: string;
  /** SO_REUSEPORT, so several processes share the port (needs `--unstable-net`). */
  reusePort?: boolean;
  /** Spare descriptors kept for recovery (default 16; 0 = none). */
  reserve?: number;
  /** How long after a failure the server counts as under pressure, ms (default 10 s). */
  pressureMs?: number;
  /** Pause between attempts to listen again when the first fails, ms (default 250). */
  relistenDelayMs?: number;
  /** Called with a line for the log on every failure and relisten. */
  onEvent?: (event: string) => void;
}

/** A server that survives listener failures. */
export interface ResilientServer {
  readonly addr: Deno.NetAddr;
  /** True for a while after the listener failed (descriptors ran out). */
  underPressure(): boolean;
  /** Listener failures survived so far. */
  stats(): { relistens: number; reserveHeld: number };
  /** Stops listening and waits for requests in flight. */
  shutdown(): Promise<void>;
}

type Handler = (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response | Promise<Response>;

/**
 * Serves `handler` like Deno.serve, listening again after a fatal accept
 * error instead of letting the process die.
 *
 * @example
 * ```ts
 * const server = serveResilient({ port: 8000 }, (_req) => new Response("ok"));
 * await server.shutdown();
 * ```
 */
export function serveResilient(options: ResilientServeOptions, handler: Handler): ResilientServer {
  const pressureMs = options.pressureMs ?? 10_000;
  const relistenDelay = options.relistenDelayMs ?? 250;
  const log = options.onEvent ?? ((e: string) => console.error(e));
  const reserve = new FdReserve(options.reserve ?? 16);
  let port = options.port;
  let current: Deno.HttpServer<Deno.NetAddr> | null = null;
  const draining = new Set<Promise<void>>();
  let closed = false;
  let relistens = 0;
  let pressureUntil = 0;
  let refillTimer: ReturnType<typeof setTimeout> | undefined;

  function listen(): Deno.HttpServer<Deno.NetAddr> {
    const server = Deno.serve({
      port,
      hostname: options.hostname,
      ...(options.reusePort ? { reusePort: true } : {}),
      onListen: () => {},
    }, handler);
    port = server.addr.port; // keep the port a PORT=0 server got
    server.finished.catch((err: Error) => recover(server, err));
    return server;
  }

  function recover(failed: Deno.HttpServer<Deno.NetAddr>, err: Error): void {
    if (closed || failed !== current) return;
    relistens++;
    current = null;
    pressureUntil = Date.now() + pressureMs;
    reserve.release();
    log(`listener failed (${err.message}); shedding idle connections and listening again`);
    const done = failed.shutdown().catch(() => {});
    draining.add(done);
    done.finally(() => draining.delete(done));
    const retry = () => {
      if (closed) return;
      try {
        current = listen();
        clearTimeout(refillTimer);
        refillTimer = setTimeout(() => reserve.refill(), pressureMs);
      } catch (e) {
        log(`listening again failed (${(e as Error).message}); retrying in ${relistenDelay} ms`);
        setTimeout(retry, relistenDelay);
      }
    };
    retry();
  }

  current = listen();
  const addr = current.addr;
  return {
    addr,
    underPressure: () => Date.now() < pressureUntil,
    stats: () => ({ relistens, reserveHeld: reserve.held }),
    async shutdown() {
      closed = true;
      clearTimeout(refillTimer);
      await Promise.all([current?.shutdown(), ...draining]);
      reserve.release();
    },
  };
}
