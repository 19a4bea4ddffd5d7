// Metrics registry: counters, gauges and histograms held in memory, rendered as Prometheus text format 0.0.4.

import {
  type AnyFamily,
  type Counter,
  CounterFamily,
  DEFAULT_LATENCY_BUCKETS,
  escapeHelp,
  type Gauge,
  GaugeFamily,
  type Histogram,
  HistogramFamily,
  type Kind,
  METRIC_NAME,
  MetricsError,
  normalizeBuckets,
  sameList,
  validateLabelNames,
} from "./_families.ts";
export {
  type Counter,
  DEFAULT_LATENCY_BUCKETS,
  type Gauge,
  type Histogram,
  type Labels,
  MetricsError,
} from "./_families.ts";

/**
 * Holds every metric of one process and renders them for a Prometheus scrape. Nothing is global: create one
 * registry at startup and hand it to whoever records metrics.
 *
 * @example
 * ```ts
 * const metrics = new MetricsRegistry();
 * const requests = metrics.counter("thriftseg_requests_total", "Requests served.", ["route", "status"]);
 * requests.inc({ route: "/v1/segment", status: "200" });
 * const queue = metrics.gauge("thriftseg_queue_depth", "Jobs waiting for a worker.");
 * metrics.collect(() => queue.set(undefined, 0));
 * new Response(metrics.render(), { headers: { "content-type": metrics.contentType } });
 * ```
 */
export class MetricsRegistry {
  /** Content-Type of {@link MetricsRegistry.render}'s output. */
  readonly contentType = "text/plain; version=0.0.4; charset=utf-8";

  /** Families by name; a Map keeps registration order, which is render order. */
  readonly #families = new Map<string, AnyFamily>();
  /** Every sample name a family writes (a histogram writes three), so `x_sum` cannot be both a gauge and part of `x`. */
  readonly #claimed = new Map<string, string>();
  readonly #collectors: (() => void)[] = [];

  /**
   * Registers a counter, or returns the one already registered under `name` (throws if its type or labels differ).
   *
   * @example
   * ```ts
   * const errors = new MetricsRegistry().counter("errors_total", "Errors by kind.", ["kind"]);
   * errors.inc({ kind: "timeout" });
   * ```
   */
  counter(name: string, help: string, labelNames: string[] = []): Counter {
    return this.#register(name, "counter", labelNames, [], () => new CounterFamily(name, help, "counter", labelNames));
  }

  /**
   * Registers a gauge, or returns the one already registered under `name` (throws if its type or labels differ).
   *
   * @example
   * ```ts
   * const loaded = new MetricsRegistry().gauge("models_loaded", "Models in memory.");
   * loaded.set(undefined, 4);
   * ```
   */
  gauge(name: string, help: string, labelNames: string[] = []): Gauge {
    return this.#register(name, "gauge", labelNames, [], () => new GaugeFamily(name, help, "gauge", labelNames));
  }

  /**
   * Registers a histogram, or returns the one already registered under `name` (throws if its type, labels or
   * buckets differ). `buckets` must be strictly increasing; `+Inf` is added if absent.
   *
   * @example
   * ```ts
   * const latency = new MetricsRegistry().histogram("infer_seconds", "Model run time.", ["model"], [0.01, 0.1, 1]);
   * latency.observe({ model: "unet" }, 0.2);
   * ```
   */
  histogram(
    name: string,
    help: string,
    labelNames: string[] = [],
    buckets: readonly number[] = DEFAULT_LATENCY_BUCKETS,
  ): Histogram {
    const bounds = normalizeBuckets(name, buckets);
    if (labelNames.includes("le")) throw new MetricsError(`${name}: label name "le" is reserved in a histogram`);
    return this.#register(
      name,
      "histogram",
      labelNames,
      bounds,
      () => new HistogramFamily(name, help, labelNames, bounds),
    );
  }

  /**
   * Registers a callback run at the start of every {@link MetricsRegistry.render}, in registration order, to
   * read live values (queue depth, pool size) into gauges. An exception in it propagates out of render.
   *
   * @example
   * ```ts
   * const metrics = new MetricsRegistry();
   * const depth = metrics.gauge("queue_depth", "Jobs waiting.");
   * const queue: unknown[] = [];
   * metrics.collect(() => depth.set(undefined, queue.length));
   * ```
   */
  collect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  /**
   * Runs the collect callbacks, then renders every metric in registration order as Prometheus text format 0.0.4:
   * `# HELP`, `# TYPE`, then the samples, series sorted by label values. Ends with a newline ("" when empty).
   *
   * @example
   * ```ts
   * const metrics = new MetricsRegistry();
   * metrics.counter("hits_total", "Hits.").inc();
   * metrics.render(); // "# HELP hits_total Hits.\n# TYPE hits_total counter\nhits_total 1\n"
   * ```
   */
  render(): string {
    for (const fn of this.#collectors) fn();
    const lines: string[] = [];
    for (const f of this.#families.values()) {
      lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.kind}`);
      f.writeSamples(lines);
    }
    return lines.length ? lines.join("\n") + "\n" : "";
  }

  #register<F extends AnyFamily>(
    name: string,
    kind: Kind,
    labelNames: readonly string[],
    buckets: readonly number[],
    create: () => F,
  ): F {
    if (!METRIC_NAME.test(name)) {
      throw new MetricsError(`invalid metric name "${name}": must match ${METRIC_NAME.source}`);
    }
    validateLabelNames(name, labelNames);

    const existing = this.#families.get(name);
    if (existing) {
      const existingBuckets = existing instanceof HistogramFamily ? existing.buckets : [];
      if (existing.kind !== kind) {
        throw new MetricsError(`${name}: already registered as a ${existing.kind}, not a ${kind}`);
      }
      if (!sameList(existing.labelNames, labelNames)) {
        throw new MetricsError(
          `${name}: already registered with labels [${existing.labelNames.join(", ")}], not [${labelNames.join(", ")}]`,
        );
      }
      if (!sameList(existingBuckets, buckets)) {
        throw new MetricsError(`${name}: already registered with buckets [${existingBuckets.join(", ")}]`);
      }
      return existing as F;
    }

    const sampleNames = kind === "histogram" ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
    for (const s of sampleNames) {
      const owner = this.#claimed.get(s);
      if (owner !== undefined) throw new MetricsError(`${name}: sample name "${s}" is already written by "${owner}"`);
    }
    const family = create();
    for (const s of sampleNames) this.#claimed.set(s, name);
    this.#families.set(name, family);
    return family;
  }
}
