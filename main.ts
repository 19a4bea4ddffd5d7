// thriftseg server entry point: `deno task start`. The socket opens at once
// (/healthz answers); models load and workers warm in the background, and
// /readyz turns 200 when they are done.

import { type Config, loadConfig, poolLayout } from "./lib/config.ts";
import { openMeter } from "./lib/metering/mod.ts";
import { ModelRegistry } from "./lib/models.ts";
import { DEFAULT_PLANNER_OPTIONS } from "./lib/plan/mod.ts";
import { Segmenter } from "./lib/segment.ts";
import { createApp, type Ready, Services } from "./routes/app.ts";
import { detectBackend, WorkerPool } from "./lib/exec/mod.ts";
import { DecodePool } from "./lib/image/decode_pool.ts";
import { idleRelease, tuneMalloc } from "./lib/libc.ts";
import { guardConnections, type ResilientServer, serveResilient } from "./lib/net/mod.ts";

/** Quiet time after which the main thread collects garbage and returns free heap pages (see `startServer`). */
const MAIN_IDLE_RELEASE_MS = 30_000;

/** A running server. */
export interface RunningServer {
  url: string;
  port: number;
  /** Resolves with the loaded services when models are loaded and workers are warm. */
  ready: Promise<Ready>;
  services: Services;
  close(): Promise<void>;
}

/** Opens the store, loads the models and warms the workers, handing each to `services` as it is ready. */
async function load(config: Config, services: Services, decoder: DecodePool): Promise<Ready> {
  const meter = await openMeter(config);
  services.meterOpened(meter);
  let pool: WorkerPool | undefined;
  try {
    const registry = await ModelRegistry.load();
    const backend = await detectBackend(config.BACKEND);
    // With the native backend, uploads are decoded natively too (sharp; same limits, checked before decoding).
    await decoder.decodeNatively(backend === "native");
    pool = new WorkerPool({
      ...poolLayout(config, backend),
      queueLimit: config.QUEUE_LIMIT,
      backend,
      models: registry.workerModels(),
      hangMs: config.REQUEST_TIMEOUT_MS,
    });
    await pool.start();
    const segmenter = new Segmenter(
      registry,
      pool,
      {
        maxPixels: config.MAX_PIXELS,
        timeoutMs: config.REQUEST_TIMEOUT_MS,
        maxQueueDelayMs: config.MAX_QUEUE_DELAY_MS,
        planner: { ...DEFAULT_PLANNER_OPTIONS, maxExecPixels: config.MAX_EXEC_PIXELS, zooHalo: config.ZOO_HALO },
      },
      // The upload is not read again once decoded: the decode worker takes it as is (transferred, not copied).
      (bytes, limits, contentType) => decoder.decode(bytes, limits, contentType, { transfer: true }),
      (image) => decoder.release(image),
    );
    const ready = { registry, segmenter, pool, meter, forms: decoder.parseForm.bind(decoder) };
    services.loaded(ready);
    return ready;
  } catch (err) {
    pool?.close();
    throw err;
  }
}

/**
 * Starts thriftseg on `config.PORT` (0 = a free port).
 *
 * @example
 * ```ts
 * import { loadConfig } from "./lib/config.ts";
 * import { startServer } from "./main.ts";
 * const server = startServer(loadConfig({ PORT: "0" }));
 * await server.ready;
 * await fetch(`${server.url}/readyz`);
 * await server.close();
 * ```
 */
export function startServer(config: Config): RunningServer {
  // Reused heap memory for request-sized buffers instead of fresh mappings (no-op without --allow-ffi): lib/libc.ts.
  tuneMalloc();
  const services = new Services(config);
  // Deno.serve has no body timeout or connection cap, and dies on EMFILE: lib/net fills in.
  let server: ResilientServer | null = null;
  const guard = guardConnections(createApp(services).fetch, {
    bodyTimeoutMs: config.BODY_TIMEOUT_MS,
    maxInflightUploads: config.MAX_INFLIGHT_UPLOADS,
    underPressure: () => server?.underPressure() ?? false,
  });
  // Memory large uploads leave behind is given back once the server has been quiet for 30 s (lib/libc.ts). Not sooner:
  // returning the heap's free pages cools every thread's memory, and the next request pays for fresh pages; after 5 s,
  // a 1920×1080 JPEG 6 s after the last one took 384 vs 334 ms (decode 27 vs 13 ms; native, c=1). Not as late as the
  // workers' own release (ARENA_LIMITS.idleMs): they recreate their sessions when the process is still large then, and
  // at 60 s both together left the soak's server at 475 MB after its inputs (312 at the start; 309 → 383 MB at 30 s).
  const release = idleRelease(MAIN_IDLE_RELEASE_MS);
  server = serveResilient(
    { port: config.PORT, hostname: config.HOSTNAME, reusePort: config.REUSE_PORT },
    (req, info) => {
      release.touch();
      return guard.fetch(req, info);
    },
  );
  const addr = server.addr;
  const host = addr.hostname === "0.0.0.0" ? "localhost" : addr.hostname;
  // Uploads are decoded in workers of this server's own (so /healthz never waits on a decoder).
  const decoder = new DecodePool({ size: config.DECODE_WORKERS, timeoutMs: config.DECODE_TIMEOUT_MS });
  const ready = load(config, services, decoder).catch((err) => {
    services.failed((err as Error).message);
    throw err;
  });

  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    ready,
    services,
    async close() {
      await ready.then((r) => r.pool.close(), () => {});
      await server.shutdown();
      release.close();
      decoder.close();
      services.state.meter?.close();
    },
  };
}

if (import.meta.main) {
  const config = loadConfig();
  const server = startServer(config);
  console.log(`thriftseg listening on ${server.url} (loading models…)`);
  server.ready.then(
    ({ pool }) => {
      const stats = pool.stats();
      console.log(`thriftseg ready: ${stats.size} workers on ${stats.backend}`);
    },
    (err) => console.error(`thriftseg failed to load models: ${err.message}`),
  );
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      server.close().finally(() => Deno.exit(0));
    });
  }
}
