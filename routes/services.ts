// What the routes serve with. The socket opens before models load, so the services start out loading; main.ts
// hands them over once, when each is ready, and the readiness middleware (routes/middleware/ready.ts) gives the
// handlers after it non-null services or answers 503.

import type { Config } from "../lib/config.ts";
import type { MeterStore } from "../lib/metering/mod.ts";
import type { ModelRegistry } from "../lib/models.ts";
import type { Segmenter } from "../lib/segment.ts";
import type { WorkerPool } from "../lib/exec/pool.ts";
import type { FormParser } from "./middleware/upload.ts";

/** Everything a segment request needs, all loaded. */
export interface Ready {
  registry: ModelRegistry;
  segmenter: Segmenter;
  pool: WorkerPool;
  meter: MeterStore;
  /** Reads a multipart upload's `image` field off the main thread (the server's DecodePool); else in place. */
  forms?: FormParser;
}

/** Where loading stands. */
export type ServiceState =
  | { status: "loading"; meter: MeterStore | null }
  | { status: "ready"; meter: MeterStore; ready: Ready }
  | { status: "failed"; meter: MeterStore | null; error: string };

/**
 * The server's services: configuration at once, the store and the models when they are loaded.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../lib/config.ts";
 * import { Services } from "./services.ts";
 * const services = new Services(loadConfig({}));
 * console.log(services.state.status); // "loading"
 * ```
 */
export class Services {
  #state: ServiceState = { status: "loading", meter: null };

  constructor(readonly config: Config) {}

  /** The current state; narrow on `status`. */
  get state(): ServiceState {
    return this.#state;
  }

  /** The metering store is open (keys, usage and admin routes can serve). */
  meterOpened(meter: MeterStore): void {
    if (this.#state.status === "loading") this.#state = { status: "loading", meter };
  }

  /** Models are loaded and workers warm: segment requests can run. */
  loaded(ready: Ready): void {
    this.#state = { status: "ready", meter: ready.meter, ready };
  }

  /** Loading failed; /readyz says why. */
  failed(error: string): void {
    this.#state = { status: "failed", meter: this.#state.meter, error };
  }
}
