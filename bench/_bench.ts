// Helpers of `deno task bench` (bench/run.ts): statistics, mask agreement, the clock estimate, the test pages and the
// probe processes.

import type { TextLine } from "../dev/fixtures.ts";

/** One request as the client saw it: its latency and the server's own timings (Server-Timing). */
export interface Lat {
  ms: number;
  model: number;
  total: number;
}

/**
 * The `--v8-flags=…` argument `deno task start` runs the server with (deno.json, the one place it is written): the
 * benchmarks start their servers and probes the same way.
 */
export const START_V8_FLAGS: string = (() => {
  const deno = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)));
  const flag = /--v8-flags=\S+/.exec(deno.tasks.start)?.[0];
  if (!flag) throw new Error("deno.json: the start task passes no --v8-flags");
  return flag;
})();

/** The q-quantile (nearest rank). */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** The median. */
export const median = (xs: number[]): number => quantile(xs, 0.5);

/** Median ms of a plan's phases over runs (the Segmenter's timings): decoding, its planner's own time, the model. */
export type Phases = { decode: number; plan: number; model: number };
export const medianPhases = (all: Phases[]): Phases => ({
  decode: median(all.map((p) => p.decode)),
  plan: median(all.map((p) => p.plan)),
  model: median(all.map((p) => p.model)),
});

/** 250 ms of quiet before a block of timed work (the previous work's threads wind down first). */
export const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 250));

/** The value after `--name` on the command line (`Deno.args`), else `fallback`. */
export function option(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}

/** IoU of the text class (value 1) of two masks of the same size; 1 when neither has any. */
export function iou(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return 0;
  let inter = 0, union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] === 1, y = b[i] === 1;
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/**
 * The clock in GHz, from a chain of dependent integer add/xor operations (one cycle each on any x86 or ARM core of
 * the last decade): the best of 12 runs. A busy machine reads low.
 */
export function clockGHz(): number {
  let best = 0, sink = 0;
  for (let r = 0; r < 12; r++) {
    const n = 2e6, t = performance.now();
    sink ^= chain(n, r + 3, 0x5bd1e995);
    best = Math.max(best, (n * 16) / ((performance.now() - t) / 1000) / 1e9);
  }
  return sink === 0.5 ? 0 : best;
}

function chain(n: number, y: number, z: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) {
    x = (x + y) | 0, x ^= z, x = (x + y) | 0, x ^= z, x = (x + y) | 0, x ^= z, x = (x + y) | 0, x ^= z;
    x = (x + y) | 0, x ^= z, x = (x + y) | 0, x ^= z, x = (x + y) | 0, x ^= z, x = (x + y) | 0, x ^= z;
  }
  return x;
}

/** Lines of text for a w×h page: a title, body lines and small print, scaled to the page. */
export function sizeLines(w: number, h: number): TextLine[] {
  const u = Math.min(w, h * 1.4) / 640;
  const lines: TextLine[] = [{ text: "THRIFTSEG 2026", x: Math.round(30 * u), y: Math.round(30 * u), size: 44 * u }];
  const body = ["spend compute where it matters", "the quick brown fox jumps over", "a lazy dog, 0123456789"];
  let y = 110 * u;
  for (let i = 0; y + 40 * u < h; i++, y += 60 * u) {
    lines.push({ text: body[i % body.length], x: Math.round((30 + (i % 3) * 40) * u), y: Math.round(y), size: 24 * u });
  }
  lines.push({ text: "small print at the bottom", x: Math.round(w / 2), y: Math.round(h - 26 * u), size: 14 * u });
  return lines.map((l) => ({ ...l, size: Math.max(10, Math.round(l.size)) }));
}

/** The note under the report on how quiet the machine was. */
export function bar(load: string, cores: number): string {
  const one = Number(load.split(" ")[0]);
  return one > cores
    ? `The machine was shared while this ran (load average ${load} on ${cores} cores): absolute numbers are slow ` +
      "and noisy; the ratios compare servers measured in the same rounds."
    : `The machine was quiet (load average ${load} on ${cores} cores).`;
}

/** Runs bench/_probe.ts in a process of its own (as the server runs: the start task's V8 flags); its JSON result. */
export async function probe(...args: (string | number)[]): Promise<Record<string, number[]>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", START_V8_FLAGS, new URL("_probe.ts", import.meta.url).pathname, ...args.map(String)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`bench/_probe.ts ${args.join(" ")} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
}
