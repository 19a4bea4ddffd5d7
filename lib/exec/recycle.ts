// When a WASM worker whose memory grew is recycled (lib/exec/pool.ts): at once, or, within the cooldown since its
// slot's last recycle, when the cooldown ends.

/**
 * Starting a WASM worker with every model takes 2.4 s of one core here (a scratch timing of `WorkerPool.start` with the
 * registry's 9 models). Recycling after every large job made a stream of 3-megapixel screenshots on WASM 10–25 % slower
 * per request (replacements loading beside the jobs on 2 cores); once per 30 s costs at most 8 % of a core, and a rare
 * large request's memory still goes back within 30 s.
 */
export const RECYCLE_COOLDOWN_MS = 30_000;

/**
 * Per worker slot, at most one recycle per cooldown.
 *
 * @example
 * ```ts
 * import { RecycleSchedule } from "./recycle.ts";
 * const schedule = new RecycleSchedule(30_000);
 * schedule.ask(0, () => true); // runs now: slot 0 was never recycled
 * schedule.ask(0, () => true); // runs in 30 s
 * schedule.close();
 * ```
 */
export class RecycleSchedule {
  #at: number[] = [];
  #timers: (ReturnType<typeof setTimeout> | undefined)[] = [];

  constructor(readonly cooldownMs = RECYCLE_COOLDOWN_MS) {}

  /**
   * Runs `recycle` for slot `index` now, or once the cooldown since the slot's last recycle ends (once, however often
   * asked meanwhile). `recycle` says whether it recycled (the slot may hold a fresh worker by then).
   */
  ask(index: number, recycle: () => boolean): void {
    if (this.#timers[index] !== undefined) return;
    const go = () => {
      this.#timers[index] = undefined;
      if (recycle()) this.#at[index] = performance.now();
    };
    const until = (this.#at[index] ?? -Infinity) + this.cooldownMs;
    if (until <= performance.now()) return go();
    const timer = this.#timers[index] = setTimeout(go, until - performance.now());
    // A recycle put off must not keep a process (a tool, a test) alive on its own.
    Deno.unrefTimer(timer);
  }

  /** Cancels the recycles put off. */
  close(): void {
    this.#timers.forEach((t) => clearTimeout(t));
  }
}
