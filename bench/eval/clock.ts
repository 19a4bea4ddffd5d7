// The evaluation's wall-clock lines, measured in processes of their own, as a server runs: the native workers' arena
// limit (workers/protocol.ts ARENA_LIMITS.hardMb) reads the whole process's RSS, and in the evaluation's own process,
// which holds what the WASM runs left, a 1 GB ballast made every job recreate its sessions past the limit (the text
// default's time saving 11.6 % → 6.9 % of 11.5 % FLOPs: .scratch/natclock3.ts). And speed comes in phases: on this
// machine (2 vCPUs) two-thread native runs of one of a plan's windows took 85 ms for minutes, then ~135 ms for about a
// minute, in every process running meanwhile (one thread: ~148 ms throughout; the whole page: 1.5–1.6× one thread's
// speed in both phases: .scratch/bimodal.ts). So the text lines take, per image, the median of three processes'
// medians, the two backends' processes alternating so that each line's three spread over several minutes; on WASM too:
// measured in the evaluation's process after each image's other runs, the WASM line read 81–91 % of the FLOP saving
// over four runs, in fresh processes 100 % (.scratch/wasmclock.ts). The zoo lines likewise: in the evaluation's process
// the micrograph WASM line read 89.8 % and 91.1 % of the FLOP saving from the rows' mean latencies (f2's and the
// default's measured minutes apart), 88.7 % in a fresh process with the scenes interleaved (.scratch/wasmlayout.ts).
// Each line runs in the pool layout a server starts with on that backend by default (WASM: one worker with every
// core's thread, not the evaluation's pool of one-thread workers, where a lone f2 used one core while a route's windows
// ran on two: digits read 104.8 % there, 78–80 % in the server's layout).
//
// `deno run -A bench/eval/clock.ts '<job JSON>'` prints the job's result as JSON; the evaluation calls it through
// `inChild`.

import type { ZooClock } from "./zoo.ts";
import type { ClockBackend } from "./_common.ts";
import { median, medianPhases, type Phases } from "../_bench.ts";

/** What the child measures: a zoo task's f2, default route and f0 on its first scenes, or text images' full and default. */
export type ClockJob = { task: string; scenes: number; backend: ClockBackend } | {
  text: string[];
  backend: ClockBackend;
};
/**
 * Per text image, wall-clock ms of full resolution and of the default, each one's phases, and the layout in words.
 */
export type TextClock = {
  fullMs: number;
  defaultMs: number;
  phases: { full: Phases; default: Phases };
  layout: string;
};

/** Runs `job` in a child process; undefined where onnxruntime-node does not load there. */
export async function inChild(
  job: { task: string; scenes: number; backend: ClockBackend },
): Promise<ZooClock | undefined>;
export async function inChild(job: { text: string[]; backend: ClockBackend }): Promise<TextClock[] | undefined>;
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
): Promise<Partial<Record<ClockBackend, TextClock[]>>> {
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
      phases: {
        full: medianPhases(all.map((r) => r[i].phases.full)),
        default: medianPhases(all.map((r) => r[i].phases.default)),
      },
      layout: all[0][i].layout,
    }));
  return Object.fromEntries(Object.entries(runs).filter(([, r]) => r.length).map(([b, r]) => [b, merged(r)]));
}

if (import.meta.main) {
  const { pool } = await import("./_common.ts");
  const job: ClockJob = JSON.parse(Deno.args[0]);
  // The evaluation's own WASM pool, which its modules start: every clock runs in the server's layout instead.
  await pool.close();
  let result: unknown;
  if ("task" in job) {
    const { zooClock } = await import("./zoo.ts");
    result = await zooClock(job.task, job.scenes, job.backend);
  } else {
    const { textClock } = await import("./text.ts");
    result = await textClock(job.text, job.backend);
  }
  console.log(JSON.stringify(result ?? null));
  Deno.exit(0);
}
