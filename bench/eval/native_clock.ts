// The evaluation's wall-clock lines, measured in processes of their own, as a server runs: the native workers' arena
// limit (workers/protocol.ts ARENA_LIMITS.hardMb) reads the whole process's RSS, and in the evaluation's own process,
// which holds what the WASM runs left, a 1 GB ballast made every job recreate its sessions past the limit (the text
// default's time saving 11.6 % → 6.9 % of 11.5 % FLOPs: .scratch/natclock3.ts). And speed comes in phases: on this
// machine (2 vCPUs) two-thread native runs of one of a plan's windows took 85 ms for minutes, then ~135 ms for about a
// minute, in every process running meanwhile (one thread: ~148 ms throughout; the whole page: 1.5–1.6× one thread's
// speed in both phases: .scratch/bimodal.ts). So the text lines take, per image, the median of three processes'
// medians, the two backends' processes alternating so that each line's three spread over several minutes; on WASM too:
// measured in the evaluation's process after each image's other runs, the WASM line read 81–91 % of the FLOP saving
// over four runs, in fresh processes 100 % (.scratch/wasmclock.ts).
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

/**
 * The text clock on WASM and on the native backend, each in `processes` child processes, the backends alternating:
 * per backend and image, the median of its processes' full and default times (native undefined where it does not
 * load).
 */
export async function textInChildren(
  paths: string[],
  processes = 3,
): Promise<{ wasm: TextClock[]; native?: TextClock[] }> {
  const runs = { wasm: [] as TextClock[][], native: [] as TextClock[][] };
  for (let p = 0; p < processes; p++) {
    for (const backend of ["wasm", "native"] as const) {
      const r = await inChild({ text: paths, backend });
      if (r) runs[backend].push(r);
    }
  }
  const merged = (all: TextClock[][]) =>
    paths.map((_, i) => ({
      fullMs: median(all.map((r) => r[i].fullMs)),
      defaultMs: median(all.map((r) => r[i].defaultMs)),
      layout: all[0][i].layout,
    }));
  return { wasm: merged(runs.wasm), ...(runs.native.length ? { native: merged(runs.native) } : {}) };
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
