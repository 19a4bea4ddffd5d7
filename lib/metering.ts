// MeterStore: API keys, credits, usage events, rate limits and idempotency
// records in Deno KV (the embedded SQLite-backed store, or a remote one over
// KV Connect so many instances share it). Credits and costs are integer
// FLOPs (bigint) so sums are exact; every debit is one atomic check-and-set
// that also writes the usage event and the day's totals.

import { fromGflops, toGflops } from "./units.ts";
import { classify, type StoreFault, storeUnavailable, withStoreRetry } from "./kv_retry.ts";
import {
  ConflictError,
  ForbiddenError,
  PaymentRequiredError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
  UnprocessableError,
} from "./errors.ts";

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

const IDEM_TTL_MS = 24 * 3600 * 1000;
const PENDING_TTL_MS = 10 * 60 * 1000;
/** Every open MeterStore writes a heartbeat this often, so others can tell a live claim from a dead one. */
const HEARTBEAT_MS = 5_000;
/** A claim whose owner has not beaten for this long belongs to a dead process (kill -9, crash) and is taken over. */
const OWNER_STALE_MS = 20_000;

/** A claimed or completed Idempotency-Key as stored. */
interface IdemRecord {
  state: "pending" | "done";
  fingerprint: string;
  /** The MeterStore instance that claimed it (pending only). */
  owner?: string;
  chunks?: number;
  meta?: string;
}
const CHUNK = 60 * 1024;
/** Billed amounts are kept in nano-units of the currency. */
const NANO_PER_UNIT = 1e9;
const MAX_CAS_ATTEMPTS = 64;
const enc = new TextEncoder();

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
function billedNano(flops: number, price: Price): bigint {
  return BigInt(Math.round(flops * price.perGflop));
}

const day = (iso: string) => iso.slice(0, 10);

/** What {@link openMeter} reads from the server configuration. */
export interface MeterConfig {
  DATA_DIR: string;
  KV_URL?: string;
  PRICE_PER_GFLOP: number;
  CURRENCY: string;
}

/**
 * Opens the metering store a configuration names (`KV_URL`, else `DATA_DIR/meter.kv`): the server and
 * `deno task keys` open the same store this way.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * import { openMeter } from "./metering.ts";
 * const meter = await openMeter(loadConfig());
 * meter.close();
 * ```
 */
export function openMeter(config: MeterConfig): Promise<MeterStore> {
  return MeterStore.open({
    path: `${config.DATA_DIR}/meter.kv`,
    url: config.KV_URL,
    price: { perGflop: config.PRICE_PER_GFLOP, currency: config.CURRENCY },
    source: `thriftseg/${Deno.hostname?.() ?? "local"}`,
  });
}

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
const casBackoff = (attempt: number) =>
  attempt < 2 ? Promise.resolve() : new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));

const classifySlug = (slug: string): StoreFault =>
  (["busy", "read-only", "disk-full"] as StoreFault[]).find((f) => slug === `store-${f}`) ?? "unavailable";

/**
 * The metering store.
 *
 * @example
 * ```ts
 * const meter = await MeterStore.open({ path: "./data/meter.kv" });
 * const { key, secret } = await meter.createKey({ name: "demo", creditGflops: 100 });
 * const who = await meter.authenticate(secret);
 * meter.close();
 * ```
 */
export class MeterStore {
  readonly faults: MeterFaults = { failCommits: 0, busy: 0, readOnly: false };
  #kv: Deno.Kv;
  #health: StoreHealth | null = null;
  #healthRun: Promise<StoreHealth> | null = null;
  readonly #instance = crypto.randomUUID();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #ownerStaleMs = OWNER_STALE_MS;
  readonly price: Price;
  readonly source: string;

  private constructor(kv: Deno.Kv, price: Price, source: string) {
    this.#kv = kv;
    this.price = price;
    this.source = source;
  }

  /** Opens the embedded KV at `path` (directories are created) or a remote KV at `url`. */
  static async open(
    opts: {
      path?: string;
      url?: string;
      price?: Price;
      source?: string;
      /** After how long without a heartbeat a claim's owner counts as dead (default 20 s; tests shorten it). */
      ownerStaleMs?: number;
    },
  ): Promise<MeterStore> {
    let target = opts.url;
    if (!target) {
      const path = opts.path ?? "./data/meter.kv";
      const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
      await Deno.mkdir(dir, { recursive: true });
      target = path;
    }
    const kv = await Deno.openKv(target);
    const store = new MeterStore(
      kv,
      opts.price ?? { perGflop: 0.00002, currency: "USD" },
      opts.source ?? "/thriftseg",
    );
    if (opts.ownerStaleMs !== undefined) store.#ownerStaleMs = opts.ownerStaleMs;
    await store.startHeartbeat();
    return store;
  }

  /** Closes the KV handle. */
  close(): void {
    clearInterval(this.#heartbeat);
    this.#kv.close();
  }

  // Tells other processes on this store that this one is alive (see OWNER_STALE_MS).
  async #beat(): Promise<void> {
    try {
      await withStoreRetry(
        "the heartbeat",
        () => this.#kv.set(["instance", this.#instance], Date.now(), { expireIn: 10 * OWNER_STALE_MS }),
      );
    } catch {
      // a store fault: health() reports it; claims stay live for OWNER_STALE_MS
    }
  }

  /** Starts the heartbeat (open() does this). */
  async startHeartbeat(): Promise<void> {
    await this.#beat();
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    Deno.unrefTimer(this.#heartbeat);
  }

  // Whether the process that claimed a key is gone (no heartbeat for OWNER_STALE_MS).
  async #ownerDead(owner: string | undefined): Promise<boolean> {
    if (!owner) return false; // a claim from before owners were recorded: it expires by its TTL
    if (owner === this.#instance) return false;
    const beat = await this.#kv.get<number>(["instance", owner]);
    return beat.value === null || beat.value < Date.now() - this.#ownerStaleMs;
  }

  /**
   * Whether the store can be read and written: a read and a tiny atomic write
   * of this instance's health key, reused for {@link HEALTH_TTL_MS} so /readyz
   * stays cheap. Never throws.
   */
  async health(): Promise<StoreHealth> {
    if (this.#health && Date.now() - this.#health.checkedAt < HEALTH_TTL_MS) return this.#health;
    this.#healthRun ??= (async () => {
      const t0 = performance.now();
      let fault: StoreFault | undefined;
      try {
        await withStoreRetry("the health check", async () => {
          this.#inject(true);
          const key = ["health", this.#instance];
          const entry = await this.#kv.get<number>(key);
          await this.#kv.atomic().check(entry).set(key, Date.now(), { expireIn: 60_000 }).commit();
        }, { retries: 3, baseMs: 4, capMs: 50 });
      } catch (err) {
        fault = err instanceof UnavailableError ? classifySlug(err.slug) : classify(err);
      }
      const result: StoreHealth = {
        ok: fault === undefined,
        ...(fault ? { fault } : {}),
        latencyMs: performance.now() - t0,
        checkedAt: Date.now(),
      };
      this.#health = result;
      return result;
    })().finally(() => this.#healthRun = null);
    return await this.#healthRun;
  }

  // Fault injection for tests and the soak harness (see MeterFaults).
  #inject(write: boolean): void {
    if (this.faults.busy > 0) {
      this.faults.busy--;
      throw new Error("database is locked");
    }
    if (write && this.faults.readOnly) throw new Error("attempt to write a readonly database");
  }

  // Every store call goes through here: busy is retried, faults become 503s.
  #op<T>(what: string, write: boolean, fn: () => Promise<T>, slug?: string): Promise<T> {
    return withStoreRetry(
      what,
      () => {
        this.#inject(write);
        return fn();
      },
      undefined,
      slug,
    );
  }

  // ---- keys ---------------------------------------------------------------

  /** Creates a key; the secret is returned once and only its hash is kept. */
  async createKey(opts: {
    name: string;
    creditGflops: number | null;
    rateLimit?: RateLimit;
  }): Promise<{ key: ApiKey; secret: string }> {
    return await this.#op("creating a key", true, async () => {
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
      const op = this.#kv.atomic()
        .check({ key: ["key", id], versionstamp: null })
        .set(["key", id], key)
        .set(["key_by_hash", await sha256(secret)], id)
        .set(["debited", id], 0n);
      if (opts.creditGflops !== null) op.set(["credit", id], gflopsToFlops(opts.creditGflops));
      const res = await op.commit();
      if (!res.ok) throw new Error("key id collision; try again");
      return { key, secret };
    });
  }

  /** The key with this id, or null. */
  async getKey(id: string): Promise<KeyStatus | null> {
    return await this.#op("reading a key", false, async () => {
      const [key, credit, debited] = await this.#kv.getMany<[ApiKey, bigint, bigint]>([
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
    });
  }

  /** Every key, oldest first. */
  async listKeys(): Promise<KeyStatus[]> {
    return await this.#op("listing keys", false, async () => {
      const out: KeyStatus[] = [];
      for await (const e of this.#kv.list<ApiKey>({ prefix: ["key"] })) {
        const k = await this.getKey(e.value.id);
        if (k) out.push(k);
      }
      return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    });
  }

  /** Marks a key revoked (it then gets 403). */
  async revokeKey(id: string): Promise<KeyStatus> {
    return await this.#op("revoking a key", true, async () => {
      for (let i = 0; i < MAX_CAS_ATTEMPTS; i++) {
        const entry = await this.#kv.get<ApiKey>(["key", id]);
        if (!entry.value) throw new UnprocessableError(`no key ${id}`, "unknown-key");
        if (entry.value.revokedAt) return (await this.getKey(id))!;
        const res = await this.#kv.atomic().check(entry)
          .set(["key", id], { ...entry.value, revokedAt: new Date().toISOString() }).commit();
        if (res.ok) return (await this.getKey(id))!;
      }
      throw new UnavailableError("could not revoke the key under contention", 1);
    });
  }

  /** Adds credit to a key (check-and-set, so concurrent debits are not lost). */
  async topUp(id: string, gflops: number): Promise<KeyStatus> {
    return await this.#op("a top-up", true, async () => {
      const add = gflopsToFlops(gflops);
      for (let i = 0; i < MAX_CAS_ATTEMPTS; i++) {
        const [key, credit] = await this.#kv.getMany<[ApiKey, bigint]>([["key", id], ["credit", id]]);
        if (!key.value) throw new UnprocessableError(`no key ${id}`, "unknown-key");
        if (key.value.unlimited) return (await this.getKey(id))!;
        const res = await this.#kv.atomic().check(credit).set(["credit", id], (credit.value ?? 0n) + add).commit();
        if (res.ok) return (await this.getKey(id))!;
      }
      throw new UnavailableError("could not top up the key under contention", 1);
    });
  }

  /** Resolves a bearer secret to its key: 401 unknown, 403 revoked. */
  async authenticate(secret: string): Promise<KeyStatus> {
    return await this.#op("authentication", false, async () => {
      const id = await this.#kv.get<string>(["key_by_hash", await sha256(secret)]);
      const key = id.value ? await this.getKey(id.value) : null;
      if (!key) throw new UnauthorizedError("unknown API key");
      if (key.revokedAt) throw new ForbiddenError(`API key ${key.id} was revoked at ${key.revokedAt}`, "key-revoked");
      return key;
    });
  }

  /** Remaining credit in FLOPs (null = unlimited, also for the anonymous subject). */
  async remaining(id: string): Promise<bigint | null> {
    if (id === ANONYMOUS) return null;
    const key = await this.getKey(id);
    return key ? key.creditFlops : 0n;
  }

  // ---- rate limits ----------------------------------------------------------

  /**
   * Counts one request against a fixed window. Throws 429 with Retry-After
   * and RateLimit headers when the window is spent; returns the headers to
   * send otherwise.
   */
  async admit(id: string, limit: RateLimit, now = Date.now()): Promise<Record<string, string>> {
    return await this.#op("the rate limiter", true, async () => {
      const windowMs = limit.windowSeconds * 1000;
      const start = Math.floor(now / windowMs) * windowMs;
      const reset = Math.max(1, Math.ceil((start + windowMs - now) / 1000));
      const policy = { "RateLimit-Policy": `"default";q=${limit.requests};w=${limit.windowSeconds}` };
      for (let i = 0; i < MAX_CAS_ATTEMPTS; i++) {
        const entry = await this.#kv.get<bigint>(["rate", id, start]);
        const used = entry.value ?? 0n;
        if (used >= BigInt(limit.requests)) {
          throw new RateLimitedError(
            `rate limit of ${limit.requests} requests per ${limit.windowSeconds} s reached`,
            reset,
            { ...policy, RateLimit: `"default";r=0;t=${reset}` },
          );
        }
        const res = await this.#kv.atomic().check(entry)
          .set(["rate", id, start], used + 1n, { expireIn: 2 * windowMs }).commit();
        if (res.ok) {
          const left = limit.requests - Number(used) - 1;
          return { ...policy, RateLimit: `"default";r=${left};t=${reset}` };
        }
        await casBackoff(i);
      }
      throw new UnavailableError("rate limiter under contention", 1);
    });
  }

  // ---- idempotency ----------------------------------------------------------

  /**
   * Starts an idempotent request. Returns the stored response when this key
   * already completed with the same fingerprint; throws 422 when it
   * completed with a different one, 409 while another attempt is running.
   * Otherwise claims the key (until {@link release} or {@link commit}).
   */
  async beginIdempotent(keyId: string, idemKey: string, fingerprint: string): Promise<StoredResponse | null> {
    return await this.#op("the idempotency check", true, async () => {
      const k = ["idem", keyId, idemKey];
      const entry = await this.#kv.get<IdemRecord>(k);
      if (entry.value) {
        if (entry.value.fingerprint !== fingerprint) {
          throw new UnprocessableError(
            "this Idempotency-Key was already used with a different request body or headers",
            "idempotency-key-reused",
          );
        }
        if (entry.value.state === "pending") {
          // A claim left by a process that died mid-request is taken over; a live one is a 409.
          if (!(await this.#ownerDead(entry.value.owner))) {
            throw new ConflictError(
              "a request with this Idempotency-Key is still in progress",
              "idempotency-in-progress",
            );
          }
          const res = await this.#kv.atomic().check(entry)
            .set(k, { state: "pending", fingerprint, owner: this.#instance }, { expireIn: PENDING_TTL_MS }).commit();
          if (!res.ok) {
            throw new ConflictError(
              "a request with this Idempotency-Key is still in progress",
              "idempotency-in-progress",
            );
          }
          return null;
        }
        const parts = [];
        for (let i = 0; i < (entry.value.chunks ?? 0); i++) {
          const c = await this.#kv.get<Uint8Array>(["idem_body", keyId, idemKey, i]);
          if (!c.value) return null; // expired halfway: treat as new
          parts.push(c.value);
        }
        const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let off = 0;
        for (const p of parts) {
          body.set(p, off);
          off += p.length;
        }
        const meta = JSON.parse(entry.value.meta ?? "{}");
        return { status: meta.status, headers: meta.headers, body };
      }
      const res = await this.#kv.atomic().check(entry)
        .set(k, { state: "pending", fingerprint, owner: this.#instance }, { expireIn: PENDING_TTL_MS }).commit();
      if (!res.ok) {
        throw new ConflictError("a request with this Idempotency-Key is still in progress", "idempotency-in-progress");
      }
      return null;
    });
  }

  /** Frees a claimed Idempotency-Key after a failed (unbilled) attempt, so a retry can run. */
  async release(keyId: string, idemKey: string): Promise<void> {
    return await this.#op("releasing an idempotency key", true, async () => {
      const k = ["idem", keyId, idemKey];
      const entry = await this.#kv.get<IdemRecord>(k);
      // Only this attempt's own claim: one another process took over is not ours to free.
      if (entry.value?.state === "pending" && (entry.value.owner ?? this.#instance) === this.#instance) {
        await this.#kv.atomic().check(entry).delete(k).commit();
      }
    });
  }

  // ---- billing --------------------------------------------------------------

  /**
   * Debits `usage.flops` from the key and records the usage event, the day's
   * totals and (if any) the idempotency record, in one atomic transaction
   * guarded by a check on the credit's versionstamp (retried on conflict).
   * Throws 402 when the credit no longer covers the cost (nothing written),
   * 503 when the write fails (nothing written, safe to retry). Returns the
   * remaining credit (null = unlimited) and the event.
   */
  async commit(usage: Usage): Promise<{ remaining: bigint | null; event: UsageEvent }> {
    const time = new Date().toISOString();
    const cost = BigInt(usage.flops);
    const nano = billedNano(usage.flops, this.price);
    const event: UsageEvent = {
      specversion: "1.0",
      id: usage.requestId,
      source: this.source,
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
        billed: { amount: Number(nano) / NANO_PER_UNIT, currency: this.price.currency },
        status: usage.status,
      },
    };
    const id = usage.keyId;
    if (this.faults.failCommits > 0) {
      this.faults.failCommits--;
      throw storeUnavailable("billing", new Error("injected billing failure"), "billing-failed");
    }
    return await this.#op("billing", true, async () => {
      // The response body goes in first, under keys nothing points to until
      // the transaction below commits; an abandoned attempt just expires.
      let chunks = 0;
      if (usage.idempotency) {
        const { key, response } = usage.idempotency;
        for (let off = 0; off < response.body.length || chunks === 0; off += CHUNK, chunks++) {
          await this.#kv.set(["idem_body", id, key, chunks], response.body.slice(off, off + CHUNK), {
            expireIn: IDEM_TTL_MS,
          });
        }
      }
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const limited = id !== ANONYMOUS && !(await this.#kv.get<ApiKey>(["key", id])).value?.unlimited;
        const credit = await this.#kv.get<bigint>(["credit", id]);
        const remaining = limited ? (credit.value ?? 0n) : null;
        if (remaining !== null && remaining < cost) {
          throw new PaymentRequiredError(
            `credit exhausted: this request costs ${flopsToGflops(cost)} GFLOPs, ${flopsToGflops(remaining)} left`,
            flopsToGflops(remaining),
          );
        }
        const debited = await this.#kv.get<bigint>(["debited", id]);
        const op = this.#kv.atomic().check(credit).check(debited);
        if (usage.idempotency) {
          // Bill only while the claim is still this attempt's: a process that was presumed dead and
          // whose claim another took over must not bill the same key a second time.
          const claim = await this.#kv.get<IdemRecord>(["idem", id, usage.idempotency.key]);
          const mine = claim.value === null ||
            (claim.value.state === "pending" && (claim.value.owner ?? this.#instance) === this.#instance);
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
    }, "billing-failed");
  }

  // ---- reading usage --------------------------------------------------------

  /** Per-day totals for a key between two YYYY-MM-DD days, inclusive. */
  async days(id: string, from: string, to: string): Promise<DayTotals[]> {
    return await this.#op("reading usage", false, async () => {
      const byDay = new Map<string, { requests: bigint; flops: bigint; billed_nano: bigint }>();
      const iter = this.#kv.list<Deno.KvU64>({ start: ["day", id, from], end: ["day", id, to + "\uffff"] });
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
        billed: { amount: Number(r.billed_nano) / NANO_PER_UNIT, currency: this.price.currency },
      }));
    });
  }

  /** A page of a key's usage events, oldest first, with a cursor to resume. */
  async events(
    id: string,
    limit: number,
    cursor?: string,
  ): Promise<{ events: UsageEvent[]; nextCursor: string | null }> {
    return await this.#op("reading usage events", false, async () => {
      const iter = this.#kv.list<UsageEvent>({ prefix: ["event", id] }, { limit, cursor: cursor || undefined });
      const events: UsageEvent[] = [];
      for await (const e of iter) events.push(e.value);
      return { events, nextCursor: events.length === limit && iter.cursor ? iter.cursor : null };
    });
  }
}
