// The key records of the metering store: creating, reading, revoking and topping up keys in Deno KV. MeterStore
// (mod.ts) wraps each in its retry and fault handling.

import { UnavailableError, UnprocessableError } from "../errors.ts";
import { type ApiKey, gflopsToFlops, type KeyStatus, MAX_CAS_ATTEMPTS, type RateLimit, sha256 } from "./types.ts";

/** Creates a key; the secret is returned once and only its hash is kept. */
export async function createKeyIn(
  kv: Deno.Kv,
  opts: { name: string; creditGflops: number | null; rateLimit?: RateLimit },
): Promise<{ key: ApiKey; secret: string }> {
  const secret = "tsk_" +
    crypto.getRandomValues(new Uint8Array(24)).toBase64({ alphabet: "base64url", omitPadding: true });
  const id = "key_" + crypto.getRandomValues(new Uint8Array(8)).toHex();
  const key: ApiKey = {
    id,
    name: opts.name,
    prefix: secret.slice(0, 8),
    unlimited: opts.creditGflops === null,
    rateLimit: opts.rateLimit ?? { requests: 600, windowSeconds: 60 },
    createdAt: new Date().toISOString(),
    revokedAt: null,
  };
  const op = kv.atomic()
    .check({ key: ["key", id], versionstamp: null })
    .set(["key", id], key)
    .set(["key_by_hash", await sha256(secret)], id)
    .set(["debited", id], 0n);
  if (opts.creditGflops !== null) op.set(["credit", id], gflopsToFlops(opts.creditGflops));
  const res = await op.commit();
  if (!res.ok) throw new Error("key id collision; try again");
  return { key, secret };
}

/** The key with this id and its credit, or null. */
export async function readKey(kv: Deno.Kv, id: string): Promise<KeyStatus | null> {
  const [key, credit, debited] = await kv.getMany<[ApiKey, bigint, bigint]>([
    ["key", id],
    ["credit", id],
    ["debited", id],
  ]);
  if (!key.value) return null;
  return {
    ...key.value,
    creditFlops: key.value.unlimited ? null : credit.value ?? 0n,
    debitedFlops: debited.value ?? 0n,
  };
}

/** Marks a key revoked (check-and-set); revoking twice keeps the first time. */
export async function revokeKeyIn(kv: Deno.Kv, id: string): Promise<void> {
  for (let i = 0; i < MAX_CAS_ATTEMPTS; i++) {
    const entry = await kv.get<ApiKey>(["key", id]);
    if (!entry.value) throw new UnprocessableError(`no key ${id}`, "unknown-key");
    if (entry.value.revokedAt) return;
    const res = await kv.atomic().check(entry)
      .set(["key", id], { ...entry.value, revokedAt: new Date().toISOString() }).commit();
    if (res.ok) return;
  }
  throw new UnavailableError("could not revoke the key under contention", 1);
}

/** Adds `add` FLOPs of credit (check-and-set, so concurrent debits are not lost); unlimited keys stay unlimited. */
export async function topUpIn(kv: Deno.Kv, id: string, add: bigint): Promise<void> {
  for (let i = 0; i < MAX_CAS_ATTEMPTS; i++) {
    const [key, credit] = await kv.getMany<[ApiKey, bigint]>([["key", id], ["credit", id]]);
    if (!key.value) throw new UnprocessableError(`no key ${id}`, "unknown-key");
    if (key.value.unlimited) return;
    const res = await kv.atomic().check(credit).set(["credit", id], (credit.value ?? 0n) + add).commit();
    if (res.ok) return;
  }
  throw new UnavailableError("could not top up the key under contention", 1);
}
