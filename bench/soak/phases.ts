// The soak's phases, each against real server processes: (a) hostile inputs,
// (b) open-loop overload at 3× measured capacity, (c) kill -9 during a keyed
// burst and billing reconciliation, (d) worker crashes and store faults,
// (e) several processes on one port and one store.

import { ARENA_LIMITS } from "../../lib/exec/mod.ts";
import { freePort, healthSampler, percentile, ServerProc } from "./server.ts";
import { heavyCases, hostileCases } from "./hostile.ts";
import { type Outcome, pool, send, sendRetrying, tally, violation } from "./_http.ts";

const ADMIN = "soak-admin-token-0123456789abcdef";
const FIXTURE = Deno.readFileSync(new URL("../../tests/fixtures/digits-test-0.png", import.meta.url));
const digits = (headers: Record<string, string> = {}) => ({
  task: "digits",
  headers: { "content-type": "image/png", accept: "application/json", ...headers },
  body: FIXTURE,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function dataDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "thriftseg-soak-" });
}

async function admin(url: string, path: string, body?: unknown) {
  const res = await fetch(`${url}/v1/admin${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
  return await res.json();
}

async function keyStatus(
  url: string,
  id: string,
): Promise<{ credit_remaining_gflops: number; debited_gflops: number }> {
  const { keys } = await admin(url, "/keys");
  return keys.find((k: { id: string }) => k.id === id);
}

async function eventCount(url: string, secret: string): Promise<number> {
  let n = 0, cursor = "";
  for (;;) {
    const res = await fetch(`${url}/v1/usage/events?limit=100&cursor=${encodeURIComponent(cursor)}`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    const page = await res.json();
    n += page.events.length;
    if (!page.next_cursor) return n;
    cursor = page.next_cursor;
  }
}

// The server as it ships: its default pool layout (lib/config.ts `poolLayout`), so overload and hostile inputs also meet
// the lone worker.
const baseEnv = (dir: string): Record<string, string> => ({ DATA_DIR: dir, AUTH: "off" });

// ---- (a) hostile inputs ----------------------------------------------------

/** Results of phase (a). */
export interface HostileResult {
  cases: number;
  heavy: number;
  statuses: Record<string, number>;
  byKind: Record<string, Record<string, number>>;
  violations: { kind: string; name: string; index: number; why: string }[];
  exits: number;
  health: {
    samples: number;
    failures: number;
    failed: { at: number; why: string }[];
    p50: number;
    p99: number;
    max: number;
  };
  rssBeforeMb: number;
  rssAfterMb: number;
  rssPeakMb: number;
  heavyResults: { name: string; status: number; ms: number; rssMb: number }[];
  seconds: number;
}

/** (a): `count` generated hostile requests (and the heavy legal ones) against one server. */
export async function hostilePhase(count: number, heavyRepeat: number): Promise<HostileResult> {
  const t0 = performance.now();
  // Admission off: this phase is about what the server does with each input, so every case must reach it (4 clients
  // at once would otherwise be mostly shed with 503 before their bytes are read); admission is phase (b)'s subject.
  const server = new ServerProc(freePort(), { ...baseEnv(await dataDir()), MAX_QUEUE_DELAY_MS: "600000" });
  await server.ready();
  for (let i = 0; i < 3; i++) await send(server.url, digits());
  const rssBeforeMb = server.rssMb();
  let rssPeakMb = rssBeforeMb;
  const rssTimer = setInterval(() => rssPeakMb = Math.max(rssPeakMb, server.rssMb()), 500);
  // The cases are built first: building them blocks this thread for seconds.
  const cases = await hostileCases(count);
  const health = healthSampler(server.url);
  const violations: HostileResult["violations"] = [];
  const byKind: HostileResult["byKind"] = {};
  const outcomes: Outcome[] = [];
  let exits = 0;
  const record = (c: { kind: string; name: string; index: number }, o: Outcome) => {
    outcomes.push(o);
    (byKind[c.kind] ??= {})[o.status] = (byKind[c.kind]?.[o.status] ?? 0) + 1;
    const why = violation(o);
    if (why) violations.push({ kind: c.kind, name: c.name, index: c.index, why });
  };
  await pool(cases, 4, async (c) => {
    if (server.exit) return;
    record(c, await send(server.url, c, 60_000));
  });
  if (server.exit) exits++;
  const heavyResults: HostileResult["heavyResults"] = [];
  for (let rep = 0; rep < heavyRepeat && !server.exit; rep++) {
    for (const c of heavyCases()) {
      if (server.exit) break;
      const o = await send(server.url, c, 180_000);
      record(c, o);
      heavyResults.push({ name: c.name, status: o.status, ms: Math.round(o.ms), rssMb: Math.round(server.rssMb()) });
    }
  }
  if (server.exit) exits++;
  const h = await health.stop();
  clearInterval(rssTimer);
  // Idle long enough for the native workers to give their arenas back (ARENA_LIMITS.idleMs, workers/runtime_node.ts).
  await sleep(ARENA_LIMITS.idleMs + 5000);
  const rssAfterMb = server.rssMb();
  if (server.exit) exits++;
  await server.stop();
  return {
    cases: cases.length,
    heavy: heavyResults.length,
    statuses: tally(outcomes),
    byKind,
    violations,
    exits: Math.min(exits, 1),
    health: h,
    rssBeforeMb,
    rssAfterMb,
    rssPeakMb,
    heavyResults,
    seconds: (performance.now() - t0) / 1000,
  };
}

// ---- (b) overload ------------------------------------------------------------

/** Results of phase (b). */
export interface OverloadResult {
  /** Requests the unloaded latencies come from (older reports: absent, 20). */
  unloadedRequests?: number;
  unloadedP50: number;
  unloadedP99: number;
  capacityRps: number;
  offeredRps: number;
  seconds: number;
  statuses: Record<string, number>;
  violations: string[];
  missingRetryAfter: number;
  admittedP50: number;
  admittedP99: number;
  recoverySeconds: number;
}

/**
 * Requests the unloaded latencies of phase (b) are measured on, one at a time. Of 20, the p99's index picked their
 * slowest (a p95 at best), which the admitted p99 (of about 500 requests in the quick run) was compared with: the line
 * flapped, not met in 2 of 4 CI runs (60 vs 28 ms and 80 vs 37 ms), met in the other two.
 */
const UNLOADED_SAMPLES = 100;

/** (b): closed-loop capacity, then open-loop arrivals at 3× it for `seconds`, then time to recover. */
export async function overloadPhase(seconds: number, capacitySeconds: number): Promise<OverloadResult> {
  const server = new ServerProc(freePort(), baseEnv(await dataDir()));
  await server.ready();
  for (let i = 0; i < 3; i++) await send(server.url, digits());
  const unloaded: number[] = [];
  for (let i = 0; i < UNLOADED_SAMPLES; i++) unloaded.push((await send(server.url, digits())).ms);
  const unloadedP99 = percentile(unloaded, 99);
  // Capacity: 4 clients back to back.
  let done = 0;
  const end = performance.now() + capacitySeconds * 1000;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (performance.now() < end) if ((await send(server.url, digits())).status === 200) done++;
  }));
  const capacityRps = done / capacitySeconds;
  const offeredRps = 3 * capacityRps;
  const outcomes: Outcome[] = [];
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; performance.now() - start < seconds * 1000; i++) {
    const due = start + (i * 1000) / offeredRps;
    if (due > performance.now()) await sleep(due - performance.now());
    inflight.push(send(server.url, digits(), 60_000).then((o) => void outcomes.push(o)));
  }
  const sendEnd = performance.now();
  // Recovery: first of three probes in a row that are 200 within 2× the unloaded p99.
  let recoverySeconds = NaN;
  let streak = 0, streakStart = 0;
  while (performance.now() - sendEnd < 60_000) {
    const t = performance.now();
    const o = await send(server.url, digits(), 30_000);
    if (o.status === 200 && o.ms <= 2 * unloadedP99) {
      if (streak++ === 0) streakStart = t;
      if (streak === 3) {
        recoverySeconds = (streakStart - sendEnd) / 1000;
        break;
      }
    } else streak = 0;
    await sleep(100);
  }
  await Promise.all(inflight);
  await server.stop();
  const admitted = outcomes.filter((o) => o.status === 200).map((o) => o.ms);
  return {
    unloadedRequests: unloaded.length,
    unloadedP50: percentile(unloaded, 50),
    unloadedP99,
    capacityRps,
    offeredRps,
    seconds,
    statuses: tally(outcomes),
    violations: outcomes.filter((o) => o.status !== 200 && o.status !== 503).map((o) =>
      `${o.status} ${o.error ?? ""}`.slice(0, 200)
    ),
    missingRetryAfter: outcomes.filter((o) => o.status === 503 && !o.retryAfter).length,
    admittedP50: percentile(admitted, 50),
    admittedP99: percentile(admitted, 99),
    recoverySeconds: Math.max(0, recoverySeconds),
  };
}

// ---- (c) kill -9 during a keyed burst -----------------------------------------

/** One kill round. */
export interface KillRound {
  burst: number;
  deliveredBefore: number;
  killedAfterMs: number;
  retried: number;
  replayed: number;
  conflicts: number;
  creditDropFlops: number;
  deliveredFlops: number;
  events: number;
  billedKeys: number;
  exact: boolean;
}

/** (c): `rounds` × (burst of keyed requests, kill -9 mid-burst, restart, retry every key with its Idempotency-Key). */
export async function killPhase(rounds: number, burst: number): Promise<KillRound[]> {
  const dir = await dataDir();
  const env = { ...baseEnv(dir), AUTH: "on", ADMIN_TOKEN: ADMIN };
  const port = freePort();
  let server = new ServerProc(port, env);
  await server.ready();
  const credit = 10_000;
  const key = await admin(server.url, "/keys", { name: "soak-kill", credit_gflops: credit });
  const auth = { authorization: `Bearer ${key.secret}` };
  const out: KillRound[] = [];
  for (let round = 0; round < rounds; round++) {
    const before = await keyStatus(server.url, key.id);
    const delivered = new Map<string, number>(); // idempotency key → flops the client saw
    const idem = Array.from({ length: burst }, (_, i) => `soak-${round}-${i}-${crypto.randomUUID()}`);
    const killAfter = 150 + Math.random() * 600;
    const killer = sleep(killAfter).then(() => server.kill());
    await Promise.all(idem.map(async (k) => {
      const o = await send(server.url, digits({ ...auth, "idempotency-key": k }), 30_000);
      if (o.status === 200 && o.flops !== undefined) delivered.set(k, o.flops);
    }));
    await killer;
    const deliveredBefore = delivered.size;
    server = new ServerProc(port, env);
    await server.ready();
    let replayed = 0, conflicts = 0, retried = 0;
    // Retry every request, as a client would after losing its connection; re-send delivered ones too.
    for (const k of idem) {
      for (let attempt = 0; attempt < 40; attempt++) {
        const o = await send(server.url, digits({ ...auth, "idempotency-key": k }), 60_000);
        retried++;
        if (o.replayed) replayed++;
        if (o.status === 409) {
          // The dead process's claim, until its heartbeat is stale: retry after Retry-After, as told.
          if (attempt === 39) conflicts++;
          await sleep(1000 * Number(o.retryAfter ?? 1));
          continue;
        }
        if (o.status === 200 && o.flops !== undefined) {
          if (delivered.has(k) && delivered.get(k) !== o.flops) throw new Error("a replay reported another cost");
          delivered.set(k, o.flops);
          break;
        }
      }
    }
    const after = await keyStatus(server.url, key.id);
    const creditDropFlops = Math.round((before.credit_remaining_gflops - after.credit_remaining_gflops) * 1e9);
    const deliveredFlops = [...delivered.values()].reduce((a, b) => a + b, 0);
    out.push({
      burst,
      deliveredBefore,
      killedAfterMs: Math.round(killAfter),
      retried,
      replayed,
      conflicts,
      creditDropFlops,
      deliveredFlops,
      events: 0,
      billedKeys: delivered.size,
      exact: Math.abs(creditDropFlops - deliveredFlops) <= 1,
    });
  }
  const events = await eventCount(server.url, key.secret);
  out[out.length - 1].events = events;
  await server.stop();
  return out;
}

// ---- (d) worker crash and store faults ------------------------------------------

/** Results of phase (d). */
export interface FaultResult {
  crash: { statuses: Record<string, number>; violations: string[]; restarts: number; servedAfter: boolean };
  busy: { statuses: Record<string, number>; violations: string[] };
  readOnly: { statuses: Record<string, number>; violations: string[]; readyz: number; leaksDbText: boolean };
  recovered: { readyz: number; status: number };
}

/** (d): in-process server (test hooks on): crash workers under load, then make the store busy and read-only. */
export async function faultPhase(): Promise<FaultResult> {
  Deno.env.set("THRIFTSEG_TEST_HOOKS", "1");
  const { startServer } = await import("../../main.ts");
  const { loadConfig } = await import("../../lib/config.ts");
  const { CRASH_MODEL } = await import("../../lib/exec/mod.ts");
  const server = startServer(loadConfig({ ...baseEnv(await dataDir()), PORT: "0", HOSTNAME: "127.0.0.1" }));
  const ready = await server.ready;
  const url = server.url;
  try {
    // Worker crashes while requests run.
    const load = Promise.all(Array.from({ length: 12 }, () => send(url, digits())));
    const crashes = Promise.all(
      Array.from(
        { length: 3 },
        (_, i) =>
          sleep(50 * i).then(() => ready.pool.run(CRASH_MODEL, [1], new Float32Array(1), 30_000).catch((e) => e)),
      ),
    );
    const [outs] = await Promise.all([load, crashes]);
    await sleep(2000);
    const after = await send(url, digits());
    const crash = {
      statuses: tally(outs),
      violations: outs.map(violation).filter((v): v is string => v !== null),
      restarts: ready.pool.stats().restarts,
      servedAfter: after.status === 200,
    };
    // A busy store (another process holding the lock): retried, so 200s.
    // Five "database is locked" errors in a row before each request (retries absorb up to twenty).
    const busyOuts: Outcome[] = [];
    for (let i = 0; i < 10; i++) {
      ready.meter.faults.busy = 5;
      busyOuts.push(await send(url, digits()));
    }
    ready.meter.faults.busy = 0;
    // A read-only store: 503 with Retry-After, never 500, no database text; /readyz 503.
    ready.meter.faults.readOnly = true;
    const roOuts: Outcome[] = [];
    let leaksDbText = false;
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${url}/v1/segment/digits`, { method: "POST", headers: digits().headers, body: FIXTURE });
      const text = await res.text();
      if (/readonly database|sqlite|database is/i.test(text)) leaksDbText = true;
      roOuts.push({
        status: res.status,
        ms: 0,
        problem: (res.headers.get("content-type") ?? "").includes("problem+json"),
        retryAfter: res.headers.get("retry-after"),
      });
    }
    await sleep(1100);
    const readyz = await fetch(`${url}/readyz`).then(async (r) => (await r.body?.cancel(), r.status));
    ready.meter.faults.readOnly = false;
    await sleep(1100);
    const recovered = {
      readyz: await fetch(`${url}/readyz`).then(async (r) => (await r.body?.cancel(), r.status)),
      status: (await send(url, digits())).status,
    };
    return {
      crash,
      busy: { statuses: tally(busyOuts), violations: busyOuts.map(violation).filter((v): v is string => v !== null) },
      readOnly: {
        statuses: tally(roOuts),
        violations: roOuts.map(violation).filter((v): v is string => v !== null),
        readyz,
        leaksDbText,
      },
      recovered,
    };
  } finally {
    await server.close();
    Deno.env.delete("THRIFTSEG_TEST_HOOKS");
  }
}

// ---- (e) N processes, one port, one store ---------------------------------------

/** Results of phase (e). */
export interface MultiResult {
  processes: number;
  requests: number;
  /** First answers: the burst arrives at once, more than the processes admit within their queue bound. */
  statuses: Record<string, number>;
  /** The problem types of the first answers' 503s and 429s. */
  shedTypes: Record<string, number>;
  /** Final answers once every client retried its 503s and 429s after Retry-After (same Idempotency-Key; 120 s). */
  finalStatuses: Record<string, number>;
  /** Seconds from the burst until the last client had its final answer. */
  allAnsweredSeconds: number;
  /** Attempts per request, most. */
  maxAttempts: number;
  /** Every answer of every attempt, by status (429s: the key's rate limit). */
  attemptStatuses: Record<string, number>;
  violations: string[];
  creditDropFlops: number;
  deliveredFlops: number;
  events: number;
  delivered: number;
  exact: boolean;
  exits: number;
}

/**
 * (e): `n` servers with REUSE_PORT=1 on one port and one DATA_DIR; `requests` concurrent keyed requests, each client
 * retrying its 503s and 429s after Retry-After until served.
 */
export async function multiPhase(n: number, requests: number): Promise<MultiResult> {
  const dir = await dataDir();
  const port = freePort();
  const env = { ...baseEnv(dir), WORKERS: "1", AUTH: "on", ADMIN_TOKEN: ADMIN, REUSE_PORT: "1", QUEUE_LIMIT: "256" };
  const servers = Array.from({ length: n }, () => new ServerProc(port, env));
  try {
    await Promise.all(servers.map((s) => s.ready()));
    const url = servers[0].url;
    const key = await admin(url, "/keys", { name: "soak-multi", credit_gflops: 10_000 });
    const before = await keyStatus(url, key.id);
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from(
        { length: requests },
        (_, i) =>
          sendRetrying(
            url,
            digits({ authorization: `Bearer ${key.secret}`, "idempotency-key": `multi-${i}` }),
            120_000,
          ),
      ),
    );
    const allAnsweredSeconds = (performance.now() - t0) / 1000;
    const first = answers.map((a) => a[0]);
    const final = answers.map((a) => a.at(-1)!);
    const shedTypes = tally(first.filter((o) => o.status === 503 || o.status === 429), (o) => o.problemType ?? "?");
    const after = await keyStatus(url, key.id);
    const creditDropFlops = Math.round((before.credit_remaining_gflops - after.credit_remaining_gflops) * 1e9);
    const delivered = final.filter((o) => o.status === 200);
    const deliveredFlops = delivered.reduce((a, o) => a + (o.flops ?? 0), 0);
    const events = await eventCount(url, key.secret);
    return {
      processes: n,
      requests,
      statuses: tally(first),
      shedTypes,
      finalStatuses: tally(final),
      allAnsweredSeconds,
      maxAttempts: Math.max(...answers.map((a) => a.length)),
      attemptStatuses: tally(answers.flat()),
      violations: answers.flat().map(violation).filter((v): v is string => v !== null).slice(0, 20),
      creditDropFlops,
      deliveredFlops,
      events,
      delivered: delivered.length,
      exact: Math.abs(creditDropFlops - deliveredFlops) <= 1 && events === delivered.length,
      exits: servers.filter((s) => s.exit).length,
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}
