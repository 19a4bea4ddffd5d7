// Metrics registry: counters, gauges and histograms held in memory, rendered as Prometheus text format 0.0.4.

/** Label values of one series, keyed by label name. */
export type Labels = Record<string, string>;

/** Thrown on a bad metric or label name, a label set that does not match the declared names, or a bad value. */
export class MetricsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MetricsError";
  }
}

/**
 * Default histogram buckets, in seconds: request latency from 5 ms (a cached tile) to a minute (a large image
 * on a cold worker). `+Inf` is always added on top.
 *
 * @example
 * ```ts
 * const latency = new MetricsRegistry().histogram("x_seconds", "X.", [], DEFAULT_LATENCY_BUCKETS);
 * ```
 */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
]);

/**
 * A monotonically increasing count.
 *
 * @example
 * ```ts
 * const requests = new MetricsRegistry().counter("requests_total", "Requests served.", ["status"]);
 * requests.inc({ status: "200" });
 * requests.get({ status: "200" }); // 1
 * ```
 */
export interface Counter {
  /** Adds `value` (default 1) to the series; a negative or NaN value throws. */
  inc(labels?: Labels, value?: number): void;
  /** Current value of the series; 0 when it has never been touched. */
  get(labels?: Labels): number;
}

/**
 * A value that goes up and down.
 *
 * @example
 * ```ts
 * const busy = new MetricsRegistry().gauge("workers_busy", "Workers running a model.");
 * busy.inc();
 * busy.dec();
 * busy.set(undefined, 3);
 * ```
 */
export interface Gauge {
  /** Replaces the series' value. */
  set(labels: Labels | undefined, value: number): void;
  /** Adds `value` (default 1). */
  inc(labels?: Labels, value?: number): void;
  /** Subtracts `value` (default 1). */
  dec(labels?: Labels, value?: number): void;
  /** Current value of the series; 0 when it has never been touched. */
  get(labels?: Labels): number;
}

/**
 * A distribution of observations counted into cumulative buckets.
 *
 * @example
 * ```ts
 * const latency = new MetricsRegistry().histogram("request_seconds", "Request latency.", ["route"]);
 * latency.observe({ route: "/v1/segment" }, 0.042);
 * ```
 */
export interface Histogram {
  /** Records one observation; NaN throws (it would turn `_sum` into NaN for good). */
  observe(labels: Labels | undefined, value: number): void;
}

type Kind = "counter" | "gauge" | "histogram";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Prometheus spelling of a sample value or bucket bound. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatLabels(names: readonly string[], values: readonly string[], extra = ""): string {
  const pairs = names.map((n, i) => `${n}="${escapeLabelValue(values[i])}"`);
  if (extra) pairs.push(extra);
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

function compareValues(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    // Code-unit order, not localeCompare: the output must not depend on the host's locale.
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Shared bookkeeping of one metric family: its declared labels and the series seen so far. */
abstract class Family<S> {
  readonly #series = new Map<string, { values: string[]; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: Kind,
    readonly labelNames: readonly string[],
  ) {}

  protected abstract fresh(): S;
  abstract writeSamples(lines: string[]): void;

  #values(labels: Labels | undefined): string[] {
    const given = labels ?? {};
    for (const key of Object.keys(given)) {
      if (!this.labelNames.includes(key)) {
        throw new MetricsError(`${this.name}: unexpected label "${key}" (declared: ${this.#declared()})`);
      }
    }
    return this.labelNames.map((n) => {
      const v = given[n];
      if (v === undefined) throw new MetricsError(`${this.name}: missing label "${n}" (declared: ${this.#declared()})`);
      if (typeof v !== "string") throw new MetricsError(`${this.name}: label "${n}" must be a string, got ${typeof v}`);
      return v;
    });
  }

  #declared(): string {
    return this.labelNames.length ? this.labelNames.join(", ") : "none";
  }

  protected series(labels: Labels | undefined): S {
    const values = this.#values(labels);
    const key = JSON.stringify(values);
    let entry = this.#series.get(key);
    if (!entry) {
      entry = { values, state: this.fresh() };
      this.#series.set(key, entry);
    }
    return entry.state;
  }

  protected peek(labels: Labels | undefined): S | undefined {
    return this.#series.get(JSON.stringify(this.#values(labels)))?.state;
  }

  /** Series in label-value order; an unlabeled metric always has its one series, so it renders 0 from the start. */
  protected sorted(): { values: string[]; state: S }[] {
    if (this.labelNames.length === 0) this.series(undefined);
    return [...this.#series.values()].sort((a, b) => compareValues(a.values, b.values));
  }
}

class CounterFamily extends Family<{ value: number }> implements Counter {
  protected fresh() {
    return { value: 0 };
  }

  inc(labels?: Labels, value = 1): void {
    if (Number.isNaN(value) || value < 0) {
      throw new MetricsError(`${this.name}: a counter only goes up, cannot inc by ${value}`);
    }
    this.series(labels).value += value;
  }

  get(labels?: Labels): number {
    return this.peek(labels)?.value ?? 0;
  }

  writeSamples(lines: string[]): void {
    for (const s of this.sorted()) {
      lines.push(`${this.name}${formatLabels(this.labelNames, s.values)} ${formatValue(s.state.value)}`);
    }
  }
}

class GaugeFamily extends Family<{ value: number }> implements Gauge {
  protected fresh() {
    return { value: 0 };
  }

  set(labels: Labels | undefined, value: number): void {
    this.series(labels).value = value;
  }

  inc(labels?: Labels, value = 1): void {
    this.series(labels).value += value;
  }

  dec(labels?: Labels, value = 1): void {
    this.series(labels).value -= value;
  }

  get(labels?: Labels): number {
    return this.peek(labels)?.value ?? 0;
  }

  writeSamples(lines: string[]): void {
    for (const s of this.sorted()) {
      lines.push(`${this.name}${formatLabels(this.labelNames, s.values)} ${formatValue(s.state.value)}`);
    }
  }
}

interface HistogramState {
  /** Per-bucket (not cumulative) counts; the last slot is the +Inf overflow. */
  counts: number[];
  sum: number;
  count: number;
}

class HistogramFamily extends Family<HistogramState> implements Histogram {
  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[]) {
    super(name, help, "histogram", labelNames);
  }

  protected fresh(): HistogramState {
    return { counts: new Array(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  observe(labels: Labels | undefined, value: number): void {
    if (Number.isNaN(value)) throw new MetricsError(`${this.name}: cannot observe NaN`);
    const s = this.series(labels);
    let i = 0;
    while (i < this.buckets.length && value > this.buckets[i]) i++;
    s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  writeSamples(lines: string[]): void {
    const bounds = [...this.buckets, Infinity];
    for (const s of this.sorted()) {
      let cumulative = 0;
      bounds.forEach((le, i) => {
        cumulative += s.state.counts[i];
        const labels = formatLabels(this.labelNames, s.values, `le="${formatValue(le)}"`);
        lines.push(`${this.name}_bucket${labels} ${cumulative}`);
      });
      const labels = formatLabels(this.labelNames, s.values);
      lines.push(`${this.name}_sum${labels} ${formatValue(s.state.sum)}`);
      lines.push(`${this.name}_count${labels} ${s.state.count}`);
    }
  }
}

type AnyFamily = Family<unknown>;

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

function validateLabelNames(metric: string, labelNames: readonly string[]): void {
  const seen = new Set<string>();
  for (const n of labelNames) {
    if (!LABEL_NAME.test(n)) {
      throw new MetricsError(`${metric}: invalid label name "${n}": must match ${LABEL_NAME.source}`);
    }
    if (n.startsWith("__")) throw new MetricsError(`${metric}: label name "${n}" is reserved (starts with "__")`);
    if (seen.has(n)) throw new MetricsError(`${metric}: label name "${n}" is declared twice`);
    seen.add(n);
  }
}

function normalizeBuckets(metric: string, buckets: readonly number[]): readonly number[] {
  const bounds = [...buckets];
  if (bounds[bounds.length - 1] === Infinity) bounds.pop();
  bounds.forEach((b, i) => {
    if (typeof b !== "number" || !Number.isFinite(b)) {
      throw new MetricsError(`${metric}: bucket bound ${b} must be a finite number (+Inf is added for you)`);
    }
    if (i > 0 && b <= bounds[i - 1]) {
      throw new MetricsError(`${metric}: buckets must be strictly increasing, got ${bounds[i - 1]} then ${b}`);
    }
  });
  return Object.freeze(bounds);
}
