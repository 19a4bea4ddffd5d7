// MeterStore: API keys, credits, usage events, rate limits and idempotency
// records in Deno KV (the embedded SQLite-backed store, or a remote one over
// KV Connect so many instances share it). Credits and costs are integer
// FLOPs (bigint) so sums are exact; every debit is one atomic check-and-set
// that also writes the usage event and the day's totals.

import { classify, type StoreFault, storeUnavailable, withStoreRetry } from "../kv_retry.ts";
import { ConflictError, ForbiddenError, UnauthorizedError, UnavailableError, UnprocessableError } from "../errors.ts";

import {
  ANONYMOUS,
  type ApiKey,
  billedNano,
  classifySlug,
  type DayTotals,
  gflopsToFlops,
  HEALTH_TTL_MS,
  HEARTBEAT_MS,
  type IdemRecord,
  type KeyStatus,
  type MeterFaults,
  OWNER_STALE_MS,
  PENDING_TTL_MS,
  type Price,
  type RateLimit,
  sha256,
  type StoredResponse,
  type StoreHealth,
  type Usage,
  type UsageEvent,
} from "./types.ts";
import { countRequest, readDays, readEvents, readStoredResponse, writeStoredBody } from "./_kv.ts";
import { createKeyIn, readKey, revokeKeyIn, topUpIn } from "./_keys.ts";
import { debit, usageEvent } from "./_billing.ts";

export * from "./types.ts";

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
 * import { loadConfig } from "../config.ts";
 * import { openMeter } from "./mod.ts";
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
    return await this.#op("creating a key", true, () => createKeyIn(this.#kv, opts));
  }

  /** The key with this id, or null. */
  async getKey(id: string): Promise<KeyStatus | null> {
    return await this.#op("reading a key", false, () => readKey(this.#kv, id));
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
      await revokeKeyIn(this.#kv, id);
      return (await this.getKey(id))!;
    });
  }

  /** Adds credit to a key (check-and-set, so concurrent debits are not lost). */
  async topUp(id: string, gflops: number): Promise<KeyStatus> {
    return await this.#op("a top-up", true, async () => {
      await topUpIn(this.#kv, id, gflopsToFlops(gflops));
      return (await this.getKey(id))!;
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
      return await countRequest(this.#kv, id, limit, now);
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
        return await readStoredResponse(this.#kv, keyId, idemKey, entry.value);
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
    const nano = billedNano(usage.flops, this.price);
    const event = usageEvent(usage, time, nano, this.price, this.source);
    const id = usage.keyId;
    if (this.faults.failCommits > 0) {
      this.faults.failCommits--;
      throw storeUnavailable("billing", new Error("injected billing failure"), "billing-failed");
    }
    return await this.#op("billing", true, async () => {
      // The response body goes in first, under keys nothing points to until
      // the transaction below commits; an abandoned attempt just expires.
      const chunks = usage.idempotency
        ? await writeStoredBody(this.#kv, id, usage.idempotency.key, usage.idempotency.response.body)
        : 0;
      return await debit(this.#kv, usage, event, nano, chunks, this.#instance);
    }, "billing-failed");
  }

  // ---- reading usage --------------------------------------------------------

  /** Per-day totals for a key between two YYYY-MM-DD days, inclusive. */
  async days(id: string, from: string, to: string): Promise<DayTotals[]> {
    return await this.#op("reading usage", false, async () => {
      return await readDays(this.#kv, id, from, to, this.price.currency);
    });
  }

  /** A page of a key's usage events, oldest first, with a cursor to resume. */
  async events(
    id: string,
    limit: number,
    cursor?: string,
  ): Promise<{ events: UsageEvent[]; nextCursor: string | null }> {
    return await this.#op("reading usage events", false, async () => {
      return await readEvents(this.#kv, id, limit, cursor);
    });
  }
}
