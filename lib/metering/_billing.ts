// One debit of the metering store: the usage event a request bills, and the atomic check-and-set that debits the
// key, writes the event and the day's totals, and (with an Idempotency-Key) the stored response, all or nothing.

import { ConflictError, PaymentRequiredError, UnavailableError } from "../errors.ts";
import { toGflops } from "../units.ts";
import {
  ANONYMOUS,
  type ApiKey,
  casBackoff,
  day,
  flopsToGflops,
  IDEM_TTL_MS,
  type IdemRecord,
  MAX_CAS_ATTEMPTS,
  NANO_PER_UNIT,
  type Price,
  type Usage,
  type UsageEvent,
} from "./types.ts";

/** The CloudEvents-shaped usage event of one billed request. */
export function usageEvent(usage: Usage, time: string, nano: bigint, price: Price, source: string): UsageEvent {
  return {
    specversion: "1.0",
    id: usage.requestId,
    source,
    type: "thriftseg.segment",
    subject: usage.keyId,
    time,
    datacontenttype: "application/json",
    data: {
      task: usage.task,
      mode: usage.mode,
      flops: usage.flops,
      gflops: toGflops(usage.flops),
      gmacs: toGflops(usage.macs),
      billed: { amount: Number(nano) / NANO_PER_UNIT, currency: price.currency },
      status: usage.status,
    },
  };
}

/**
 * Debits `usage.flops` from the key in one atomic transaction with the event, the day's totals and the idempotency
 * record, guarded by the credit's versionstamp and retried on conflict. 402 when the credit no longer covers it,
 * 409 when another attempt took the Idempotency-Key over, 503 under lasting contention; nothing written then.
 */
export async function debit(
  kv: Deno.Kv,
  usage: Usage,
  event: UsageEvent,
  nano: bigint,
  chunks: number,
  instance: string,
): Promise<{ remaining: bigint | null; event: UsageEvent }> {
  const id = usage.keyId, time = event.time, cost = BigInt(usage.flops);
  const idemKey: Deno.KvKey | null = usage.idempotency ? ["idem", id, usage.idempotency.key] : null;
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    // Everything the transaction checks, read in one call (a request's bill waits on these reads: one store round
    // trip instead of three or four).
    const own: [Deno.KvKey, Deno.KvKey, Deno.KvKey] = [["key", id], ["credit", id], ["debited", id]];
    const [apiKey, credit, debited, claim] = idemKey
      ? await kv.getMany<[ApiKey, bigint, bigint, IdemRecord]>([...own, idemKey])
      : [...await kv.getMany<[ApiKey, bigint, bigint]>(own), null];
    const limited = id !== ANONYMOUS && !apiKey.value?.unlimited;
    const remaining = limited ? (credit.value ?? 0n) : null;
    if (remaining !== null && remaining < cost) {
      throw new PaymentRequiredError(
        `credit exhausted: this request costs ${flopsToGflops(cost)} GFLOPs, ${flopsToGflops(remaining)} left`,
        flopsToGflops(remaining),
      );
    }
    const op = kv.atomic().check(credit).check(debited);
    if (claim) {
      // Bill only while the claim is still this attempt's: a process that was presumed dead and
      // whose claim another took over must not bill the same key a second time.
      const mine = claim.value === null ||
        (claim.value.state === "pending" && (claim.value.owner ?? instance) === instance);
      if (!mine) {
        throw new ConflictError(
          "another attempt with this Idempotency-Key completed or took it over; nothing was charged",
          "idempotency-in-progress",
        );
      }
      op.check(claim);
    }
    op
      .set(["debited", id], (debited.value ?? 0n) + cost)
      .set(["event", id, `${time}_${usage.requestId}`], event)
      .sum(["day", id, day(time), "requests"], 1n)
      .sum(["day", id, day(time), "flops"], cost)
      .sum(["day", id, day(time), "billed_nano"], nano);
    if (remaining !== null) op.set(["credit", id], remaining - cost);
    if (usage.idempotency) {
      const { key, fingerprint, response } = usage.idempotency;
      op.set(["idem", id, key], {
        state: "done",
        fingerprint,
        chunks,
        meta: JSON.stringify({ status: response.status, headers: response.headers }),
      }, { expireIn: IDEM_TTL_MS });
    }
    const res = await op.commit();
    if (res.ok) return { remaining: remaining === null ? null : remaining - cost, event };
    await casBackoff(attempt);
  }
  throw new UnavailableError(
    "billing failed under contention on this key; nothing was charged, retry",
    1,
    "billing-failed",
  );
}
