// thriftseg server entry point: `deno task start`. The socket opens at once
// (/healthz answers); models load and workers warm in the background, and
// /readyz turns 200 when they are done.

import { type Config, loadConfig, workerCount } from "./lib/config.ts";
import { ModelRegistry } from "./lib/models.ts";
import { DEFAULT_PLANNER_OPTIONS } from "./lib/plan/mod.ts";
import { Segmenter } from "./lib/segment.ts";
import { MeterStore } from "./lib/metering.ts";
import { createApp, type Services } from "./routes/app.ts";
import { detectBackend, WorkerPool } from "./workers/pool.ts";

/** Opens the metering store named by the configuration. */
export function openMeter(config: Config): Promise<MeterStore> {
  return MeterStore.open({
    path: `${config.DATA_DIR}/meter.kv`,
    url: config.KV_URL,
    price: { perGflop: config.PRICE_PER_GFLOP, currency: config.CURRENCY },
    source: `thriftseg/${Deno.hostname?.() ?? "local"}`,
  });
}

/** A running server. */
export interface RunningServer {
  url: string;
  port: number;
  /** Resolves when models are loaded and workers are warm. */
  ready: Promise<void>;
  services: Services;
  close(): Promise<void>;
}

/**
 * Starts thriftseg on `config.PORT` (0 = a free port).
 *
 * @example
 * ```ts
 * const server = await startServer(loadConfig({ PORT: "0" }));
 * await server.ready;
 * await fetch(`${server.url}/readyz`);
 * await server.close();
 * ```
 */
export function startServer(config: Config): RunningServer {
  let registry: ModelRegistry | null = null;
  let segmenter: Segmenter | null = null;
  let pool: WorkerPool | null = null;
  let meter: MeterStore | null = null;
  let loadError: string | null = null;
  const services: Services = {
    config,
    registry: () => registry,
    segmenter: () => segmenter,
    pool: () => pool,
    meter: () => meter,
    loadError: () => loadError,
  };
  const app = createApp(services);
  const server = Deno.serve({
    port: config.PORT,
    hostname: config.HOSTNAME,
    onListen: () => {},
  }, app.fetch);
  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname === "0.0.0.0" ? "localhost" : addr.hostname;

  const ready = (async () => {
    try {
      meter = await openMeter(config);
      registry = await ModelRegistry.load();
      const backend = await detectBackend(config.BACKEND);
      pool = new WorkerPool({
        size: workerCount(config),
        queueLimit: config.QUEUE_LIMIT,
        backend,
        wasmThreads: config.WASM_THREADS,
        models: registry.workerModels(),
      });
      await pool.start();
      segmenter = new Segmenter(registry, pool, {
        maxPixels: config.MAX_PIXELS,
        timeoutMs: config.REQUEST_TIMEOUT_MS,
        planner: { ...DEFAULT_PLANNER_OPTIONS, maxExecPixels: config.MAX_EXEC_PIXELS, zooHalo: config.ZOO_HALO },
      });
    } catch (err) {
      loadError = (err as Error).message;
      throw err;
    }
  })();

  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    ready,
    services,
    async close() {
      await ready.catch(() => {});
      pool?.close();
      await server.shutdown();
      meter?.close();
    },
  };
}

if (import.meta.main) {
  const config = loadConfig();
  const server = startServer(config);
  console.log(`thriftseg listening on ${server.url} (loading models…)`);
  server.ready.then(
    () => {
      const stats = server.services.pool()!.stats();
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
