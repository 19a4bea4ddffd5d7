// The evaluation's wall-clock lines, measured in processes of their own, as a server runs: the native workers' arena
// limit (workers/protocol.ts ARENA_LIMITS.hardMb) reads the whole process's RSS, and in the evaluation's own process,
// which holds what the WASM runs left, a 1 GB ballast made every job recreate its sessions past the limit (the text
// default's time saving 11.6 % → 6.9 % of 11.5 % FLOPs: .scratch/natclock3.ts). And a process's speed is its own: on
// this machine (2 vCPUs) a process's two-thread native runs of the text detector on a plan's windows took either ~180
// or ~265 ms, the same in every run of that process, with the whole page 10 % slower in the slow ones
// (.scratch/pageeff.ts: 6 of 14 processes slow; one thread: no such split). The text lines take, per image, the median
// of three processes' medians, on WASM too: measured in the evaluation's process after each image's other runs, the
// WASM line read 81–91 % of the FLOP saving over four runs, in fresh processes 100 % (.scratch/wasmclock.ts).
//
// `deno run -A bench/eval/native_clock.ts '<job JSON>'` prints the job's result as JSON; the evaluation calls it through
// `inChild`.

import type { NativeClock } from "./zoo.ts";
import { median } from "../_bench.ts";

/** What the child measures: a zoo task's f2 and default route on its first scenes, or text images' full and default. */
export type ClockJob = { task: string; scenes: number } | { text: string[]; backend: "wasm" | "native" };
/** Per text image, wall-clock ms of full resolution and of the default, and the layout in words. */
export type TextClock = { fullMs: number; defaultMs: number; layout: string };

/** Runs `job` in a child process; undefined where onnxruntime-node does not load there. */
export async function inChild(job: { task: string; scenes: number }): Promise<NativeClock | undefined>;
export async function inChild(job: { text: string[]; backend: "wasm" | "native" }): Promise<TextClock[] | undefined>;
export async function inChild(job: ClockJob): Promise<unknown> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, JSON.stringify(job)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`wall-clock child failed (exit ${out.code})`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) ?? undefined;
}

/** The text clock in `processes` child processes in turn: per image, the median of their full and default times. */
export async function textInChildren(
  paths: string[],
  backend: "wasm" | "native",
  processes = 3,
): Promise<TextClock[] | undefined> {
  const runs: TextClock[][] = [];
  for (let p = 0; p < processes; p++) {
    const r = await inChild({ text: paths, backend });
    if (!r) return undefined;
    runs.push(r);
  }
  return paths.map((_, i) => ({
    fullMs: median(runs.map((r) => r[i].fullMs)),
    defaultMs: median(runs.map((r) => r[i].defaultMs)),
    layout: runs[0][i].layout,
  }));
}

if (import.meta.main) {
  const { pool } = await import("./_common.ts");
  const job: ClockJob = JSON.parse(Deno.args[0]);
  // The WASM pool the evaluation's modules start: used by WASM text jobs only.
  if (!("backend" in job && job.backend === "wasm")) await pool.close();
  let result: unknown;
  if ("task" in job) {
    const { nativeClock } = await import("./zoo.ts");
    result = await nativeClock(job.task, job.scenes);
  } else {
    const { textClock } = await import("./text.ts");
    result = await textClock(job.text, job.backend);
  }
  console.log(JSON.stringify(result ?? null));
  Deno.exit(0);
}
