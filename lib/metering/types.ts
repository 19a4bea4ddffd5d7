// The metering store's data: keys, usage events and totals, stored responses, prices, faults, and the constants and
// conversions its modules share.

import { fromGflops, toGflops } from "../units.ts";
import type { StoreFault } from "../kv_retry.ts";

/** The subject of metering when AUTH=off. */
export const ANONYMOUS = "anonymous";

/** A key's per-window request limit. */
export interface RateLimit {
  requests: number;
  windowSeconds: number;
}

/** An API key as stored (the secret itself is never stored). */
export interface ApiKey {
  id: string;
  name: string;
  /** First characters of the secret, to recognise it in listings. */
  prefix: string;
  /** Credit granted in total (initial + top-ups), FLOPs; null = unlimited. */
  unlimited: boolean;
  rateLimit: RateLimit;
  createdAt: string;
  revokedAt: string | null;
}

/** A key with its live credit. */
export interface KeyStatus extends ApiKey {
  /** Remaining credit in FLOPs, null when unlimited. */
  creditFlops: bigint | null;
  /** Total debited so far, FLOPs. */
  debitedFlops: bigint;
}

/** One metered request, CloudEvents-shaped. */
export interface UsageEvent {
  specversion: "1.0";
  id: string;
  source: string;
  type: "thriftseg.segment";
  subject: string;
  time: string;
  datacontenttype: "application/json";
  data: {
    task: string;
    mode: string;
    flops: number;
    gflops: number;
    gmacs: number;
    billed: { amount: number; currency: string };
    status: number;
  };
}

/** Per-day usage totals. */
export interface DayTotals {
  day: string;
  requests: number;
  gflops: number;
  billed: { amount: number; currency: string };
}

/** A stored response, replayed for a repeated Idempotency-Key. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** What {@link MeterStore.commit} records. */
export interface Usage {
  requestId: string;
  keyId: string;
  task: string;
  mode: string;
  flops: number;
  macs: number;
  status: number;
  /** Idempotency key and request fingerprint, with the response to replay. */
  idempotency?: { key: string; fingerprint: string; response: StoredResponse };
}

/** Pricing of one GFLOP. */
export interface Price {
  perGflop: number;
  currency: string;
}

export const IDEM_TTL_MS = 24 * 3600 * 1000;
export const PENDING_TTL_MS = 10 * 60 * 1000;
/** Every open MeterStore writes a heartbeat this often, so others can tell a live claim from a dead one. */
export const HEARTBEAT_MS = 5_000;
/** A claim whose owner has not beaten for this long belongs to a dead process (kill -9, crash) and is taken over. */
export const OWNER_STALE_MS = 20_000;

/** A claimed or completed Idempotency-Key as stored. */
export interface IdemRecord {
  state: "pending" | "done";
  fingerprint: string;
  /** The MeterStore instance that claimed it (pending only). */
  owner?: string;
  chunks?: number;
  meta?: string;
}
export const CHUNK = 60 * 1024;
/** Billed amounts are kept in nano-units of the currency. */
export const NANO_PER_UNIT = 1e9;
export const MAX_CAS_ATTEMPTS = 64;
export const enc = new TextEncoder();

/** SHA-256 of a string or bytes, hex. */
export async function sha256(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)).toHex();
}

/** GFLOPs → integer FLOPs (bigint, as the store keeps them). */
export function gflopsToFlops(gflops: number): bigint {
  return BigInt(fromGflops(gflops));
}

/** Integer FLOPs → GFLOPs (as a number, for JSON). */
export function flopsToGflops(flops: bigint): number {
  return toGflops(flops);
}

/** Billed amount in nano-units of the currency, exact for integer FLOPs. */
export function billedNano(flops: number, price: Price): bigint {
  return BigInt(Math.round(flops * price.perGflop));
}

export const day = (iso: string) => iso.slice(0, 10);

/** Test hooks (the soak harness and tests set them; nothing else does). */
export interface MeterFaults {
  /** The next N billing commits fail as if KV were down. */
  failCommits: number;
  /** The next N store operations fail as a locked SQLite database does (then succeed when retried). */
  busy: number;
  /** While true every store write fails as on a read-only or immutable file. */
  readOnly: boolean;
}

/** What {@link MeterStore.health} found. */
export interface StoreHealth {
  /** True when a read and an atomic write both succeeded. */
  ok: boolean;
  /** What is wrong, when not ok. */
  fault?: StoreFault;
  /** Time the check took, ms. */
  latencyMs: number;
  /** When it ran (ms since the epoch); results are reused for {@link HEALTH_TTL_MS}. */
  checkedAt: number;
}

/** How long a {@link MeterStore.health} result is reused. */
export const HEALTH_TTL_MS = 1000;

// A lost check-and-set race: retry at once twice, then spread the racers out.
export const casBackoff = (attempt: number) =>
  attempt < 2 ? Promise.resolve() : new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));

export const classifySlug = (slug: string): StoreFault =>
  (["busy", "read-only", "disk-full"] as StoreFault[]).find((f) => slug === `store-${f}`) ?? "unavailable";
