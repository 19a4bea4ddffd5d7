// The metering store's reads and writes that need no state of the store itself: the rate limiter's window counter,
// the stored body of an idempotent response, and the usage queries. MeterStore (mod.ts) wraps each in its retry and
// fault handling.

import { RateLimitedError, UnavailableError } from "../errors.ts";
import { flopsToGflops } from "./types.ts";
import {
  casBackoff,
  CHUNK,
  type DayTotals,
  IDEM_TTL_MS,
  type IdemRecord,
  MAX_CAS_ATTEMPTS,
  NANO_PER_UNIT,
  type RateLimit,
  type StoredResponse,
  type UsageEvent,
} from "./types.ts";

/**
 * Counts one request of `id` against its fixed window; 429 with Retry-After and RateLimit headers when the window is
 * spent, else the headers to send.
 */
export async function countRequest(
  kv: Deno.Kv,
  id: string,
  limit: RateLimit,
  now: number,
): Promise<Record<string, string>> {
  const windowMs = limit.windowSeconds * 1000;
  const start = Math.floor(now / windowMs) * windowMs;
  const reset = Math.max(1, Math.ceil((start + windowMs - now) / 1000));
  const policy = { "RateLimit-Policy": `"default";q=${limit.requests};w=${limit.windowSeconds}` };
  for (let i = 0; i < MAX_CAS_ATTEMPTS; i++) {
    const entry = await kv.get<bigint>(["rate", id, start]);
    const used = entry.value ?? 0n;
    if (used >= BigInt(limit.requests)) {
      throw new RateLimitedError(
        `rate limit of ${limit.requests} requests per ${limit.windowSeconds} s reached`,
        reset,
        { ...policy, RateLimit: `"default";r=0;t=${reset}` },
      );
    }
    const res = await kv.atomic().check(entry)
      .set(["rate", id, start], used + 1n, { expireIn: 2 * windowMs }).commit();
    if (res.ok) {
      const left = limit.requests - Number(used) - 1;
      return { ...policy, RateLimit: `"default";r=${left};t=${reset}` };
    }
    await casBackoff(i);
  }
  throw new UnavailableError("rate limiter under contention", 1);
}

/** The response stored with a completed idempotent request (null when its body has expired halfway). */
export async function readStoredResponse(
  kv: Deno.Kv,
  keyId: string,
  idemKey: string,
  record: IdemRecord,
): Promise<StoredResponse | null> {
  const parts = [];
  for (let i = 0; i < (record.chunks ?? 0); i++) {
    const c = await kv.get<Uint8Array>(["idem_body", keyId, idemKey, i]);
    if (!c.value) return null; // expired halfway: treat as new
    parts.push(c.value);
  }
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    body.set(p, off);
    off += p.length;
  }
  const meta = JSON.parse(record.meta ?? "{}");
  return { status: meta.status, headers: meta.headers, body };
}

/** Writes a response body in chunks under keys nothing points to until the billing transaction commits. */
export async function writeStoredBody(kv: Deno.Kv, id: string, key: string, body: Uint8Array): Promise<number> {
  let chunks = 0;
  for (let off = 0; off < body.length || chunks === 0; off += CHUNK, chunks++) {
    await kv.set(["idem_body", id, key, chunks], body.slice(off, off + CHUNK), { expireIn: IDEM_TTL_MS });
  }
  return chunks;
}

/** Per-day totals for a key between two YYYY-MM-DD days, inclusive. */
export async function readDays(
  kv: Deno.Kv,
  id: string,
  from: string,
  to: string,
  currency: string,
): Promise<DayTotals[]> {
  const byDay = new Map<string, { requests: bigint; flops: bigint; billed_nano: bigint }>();
  const iter = kv.list<Deno.KvU64>({ start: ["day", id, from], end: ["day", id, to + "\uffff"] });
  for await (const e of iter) {
    const d = e.key[2] as string, field = e.key[3] as "requests" | "flops" | "billed_nano";
    const row = byDay.get(d) ?? { requests: 0n, flops: 0n, billed_nano: 0n };
    row[field] = e.value.value;
    byDay.set(d, row);
  }
  return [...byDay.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([d, r]) => ({
    day: d,
    requests: Number(r.requests),
    gflops: flopsToGflops(r.flops),
    billed: { amount: Number(r.billed_nano) / NANO_PER_UNIT, currency: currency },
  }));
}

/** A page of a key's usage events, oldest first, with a cursor to resume. */
export async function readEvents(
  kv: Deno.Kv,
  id: string,
  limit: number,
  cursor?: string,
): Promise<{ events: UsageEvent[]; nextCursor: string | null }> {
  const iter = kv.list<UsageEvent>({ prefix: ["event", id] }, { limit, cursor: cursor || undefined });
  const events: UsageEvent[] = [];
  for await (const e of iter) events.push(e.value);
  return { events, nextCursor: events.length === limit && iter.cursor ? iter.cursor : null };
}
