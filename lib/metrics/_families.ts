// The metric families behind the registry: counters, gauges and histograms, their series and their Prometheus text.

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
 * import { MetricsRegistry } from "./mod.ts";
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
 * import { MetricsRegistry } from "./mod.ts";
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
 * import { MetricsRegistry } from "./mod.ts";
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
 * import { MetricsRegistry } from "./mod.ts";
 * const latency = new MetricsRegistry().histogram("request_seconds", "Request latency.", ["route"]);
 * latency.observe({ route: "/v1/segment" }, 0.042);
 * ```
 */
export interface Histogram {
  /** Records one observation; NaN throws (it would turn `_sum` into NaN for good). */
  observe(labels: Labels | undefined, value: number): void;
}

export type Kind = "counter" | "gauge" | "histogram";

export const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Prometheus spelling of a sample value or bucket bound. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function formatLabels(names: readonly string[], values: readonly string[], extra = ""): string {
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

export function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Shared bookkeeping of one metric family: its declared labels and the series seen so far. */
export abstract class Family<S> {
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

export class CounterFamily extends Family<{ value: number }> implements Counter {
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

export class GaugeFamily extends Family<{ value: number }> implements Gauge {
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

export class HistogramFamily extends Family<HistogramState> implements Histogram {
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

export type AnyFamily = Family<unknown>;

export function validateLabelNames(metric: string, labelNames: readonly string[]): void {
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

export function normalizeBuckets(metric: string, buckets: readonly number[]): readonly number[] {
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
