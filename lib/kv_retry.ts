// Retrying Deno KV operations: a store that is busy (another process holds
// SQLite's write lock on the same file) is retried with jittered exponential
// backoff, then refused with a typed 503; any other store fault (read-only or
// immutable file, disk full, remote KV down) is a 503 at once. Raw database
// text never reaches a client: it is logged here, once per kind and minute.

import { ProblemError, UnavailableError } from "./errors.ts";

/** How {@link withStoreRetry} backs off. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff ceiling, ms; doubles per retry up to `capMs`. */
  baseMs: number;
  /** Largest backoff ceiling, ms. */
  capMs: number;
}

/** Defaults: up to 20 retries, at most about 3.5 s of backoff in total (SQLite has no wait queue across processes). */
export const DEFAULT_RETRY: RetryPolicy = { retries: 20, baseMs: 2, capMs: 200 };

// SQLite's SQLITE_BUSY / SQLITE_LOCKED as Deno KV reports them, and a remote
// KV's transient overload answers.
const BUSY = /database is locked|database table is locked|database is busy|sqlite_busy|sqlite_locked|\b(429|503)\b/i;

/** Whether an error from Deno KV means "busy, try again" rather than a fault. */
export function isBusy(err: unknown): boolean {
  return err instanceof Error && BUSY.test(err.message);
}

/** The kind of store fault, for logs, metrics and the problem slug. */
export type StoreFault = "busy" | "read-only" | "disk-full" | "unavailable";

/** Classifies a store error without exposing its text. */
export function classify(err: unknown): StoreFault {
  const msg = err instanceof Error ? err.message : String(err);
  if (isBusy(err)) return "busy";
  if (/read-?only|readonly|permission denied|operation not permitted|EROFS|EPERM|EACCES/i.test(msg)) return "read-only";
  if (/disk is full|no space|ENOSPC|quota/i.test(msg)) return "disk-full";
  return "unavailable";
}

const lastLogged = new Map<string, number>();

function logFault(what: string, fault: StoreFault, err: unknown): void {
  const now = Date.now();
  const key = `${what}:${fault}`;
  if ((lastLogged.get(key) ?? 0) > now - 60_000) return;
  lastLogged.set(key, now);
  console.error(`metering store ${fault} during ${what}: ${err instanceof Error ? err.message : String(err)}`);
}

/**
 * The 503 a client sees for a store fault: a fixed sentence per kind (no
 * database text), `Retry-After` 1 s when busy and 5 s otherwise.
 *
 * @example
 * ```ts
 * throw storeUnavailable("billing", new Error("database is locked"));
 * ```
 */
export function storeUnavailable(what: string, err: unknown, slug?: string): UnavailableError {
  const fault = classify(err);
  logFault(what, fault, err);
  const detail: Record<StoreFault, string> = {
    "busy": "the metering store is busy; nothing was charged, retry shortly",
    "read-only": "the metering store cannot be written right now; nothing was charged",
    "disk-full": "the metering store is out of space; nothing was charged",
    "unavailable": "the metering store is unavailable; nothing was charged",
  };
  return new UnavailableError(`${what} failed: ${detail[fault]}`, fault === "busy" ? 1 : 5, slug ?? `store-${fault}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `fn`; when it fails because the store is busy, waits a random time in
 * [0, min(cap, base·2^attempt)) ("full jitter", so processes that collided
 * spread out) and runs it again. Typed {@link ProblemError}s (402, 409, 429…)
 * pass through unchanged; anything else becomes a 503 from
 * {@link storeUnavailable}. `fn` must be safe to repeat: every write it makes
 * is one atomic commit, and a busy commit has not happened.
 *
 * @example
 * ```ts
 * import { withStoreRetry } from "./kv_retry.ts";
 * const kv = await Deno.openKv(":memory:");
 * const value = await withStoreRetry("rate limit", () => kv.get(["rate", "key_1"]));
 * ```
 */
export async function withStoreRetry<T>(
  what: string,
  fn: () => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  slug?: string,
): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ProblemError) throw err;
      if (isBusy(err) && attempt < policy.retries) {
        await sleep(Math.random() * Math.min(policy.capMs, policy.baseMs * 2 ** attempt));
        continue;
      }
      throw storeUnavailable(what, err, slug);
    }
  }
}
