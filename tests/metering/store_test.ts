// MeterStore under a shared KV file and injected faults: busy/locked errors
// are retried (two processes debiting one key lose nothing and overdraw
// nothing), other faults are typed 503s with no database text, and the health
// check reports a store that cannot be written.

import assert from "node:assert/strict";
import { flopsToGflops, MeterStore } from "../../lib/metering/mod.ts";
import { UnavailableError } from "../../lib/errors.ts";
import { classify, isBusy, withStoreRetry } from "../../lib/kv_retry.ts";

const CHILD = new URL("./_debit_child.ts", import.meta.url).pathname;

function usage(requestId: string, keyId: string, flops = 1000) {
  return { requestId, keyId, task: "digits", mode: "fixed", flops, macs: flops / 2, status: 200 };
}

Deno.test("withStoreRetry: busy is retried, other faults are 503 without the database's text", async () => {
  let calls = 0;
  const value = await withStoreRetry("test", () => {
    if (++calls < 4) throw new TypeError("database is locked");
    return Promise.resolve(42);
  });
  assert.equal(value, 42);
  assert.equal(calls, 4);
  await assert.rejects(
    withStoreRetry("test", () => Promise.reject(new Error("attempt to write a readonly database"))),
    (err: unknown) => {
      assert.ok(err instanceof UnavailableError);
      assert.equal(err.slug, "store-read-only");
      assert.equal(err.headers["Retry-After"], "5");
      assert.doesNotMatch(err.message, /readonly database/);
      return true;
    },
  );
  await assert.rejects(
    withStoreRetry("test", () => Promise.reject(new Error("database is locked")), { retries: 2, baseMs: 1, capMs: 1 }),
    (err: unknown) => err instanceof UnavailableError && err.slug === "store-busy" && !/locked/.test(err.message),
  );
  assert.ok(isBusy(new Error("database is locked")));
  assert.equal(classify(new Error("database or disk is full")), "disk-full");
});

Deno.test({
  name: "two processes debit one key on one KV file: no errors, exact totals, no overdraft",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "thriftseg-store-" });
    const path = `${dir}/meter.kv`;
    const meter = await MeterStore.open({ path });
    const flops = 1_000_000;
    const perChild = 150;
    // Credit for 280 of the 300 attempts: the last ones must get 402, never an overdraft.
    const { key } = await meter.createKey({ name: "shared", creditGflops: flopsToGflops(BigInt(280 * flops)) });
    const children = [0, 1].map(() =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--unstable-kv",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          CHILD,
          path,
          key.id,
          String(perChild),
          String(flops),
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output()
    );
    const outs = await Promise.all(children);
    const results = outs.map((o) => JSON.parse(new TextDecoder().decode(o.stdout)));
    const errors = results.flatMap((r) => r.errors as string[]);
    // Only 402s (credit exhausted): no 503 and nothing untyped.
    assert.deepEqual(errors.filter((e) => !e.startsWith("402")), []);
    const billed = results.reduce((n, r) => n + r.billed, 0);
    assert.equal(billed, 280 * flops);
    const status = (await meter.getKey(key.id))!;
    assert.equal(status.debitedFlops, BigInt(billed));
    assert.equal(status.creditFlops, 0n);
    const events = await meter.events(key.id, 1000);
    assert.equal(events.events.length, 280);
    meter.close();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("injected faults: busy is retried; a read-only store is a 503 and an unhealthy store, then recovers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thriftseg-store-" });
  const meter = await MeterStore.open({ path: `${dir}/meter.kv` });
  const { key } = await meter.createKey({ name: "f", creditGflops: 1 });

  meter.faults.busy = 5;
  await meter.commit(usage("req_1", key.id));
  assert.equal(meter.faults.busy, 0);
  assert.equal((await meter.health()).ok, true);

  meter.faults.readOnly = true;
  await assert.rejects(meter.commit(usage("req_2", key.id)), (err: unknown) => {
    assert.ok(err instanceof UnavailableError);
    assert.equal(err.status, 503);
    assert.equal(err.slug, "billing-failed");
    assert.doesNotMatch(err.message, /readonly database/);
    return true;
  });
  await assert.rejects(meter.admit(key.id, { requests: 10, windowSeconds: 60 }), UnavailableError);
  // Reads still work on a read-only store.
  assert.equal((await meter.getKey(key.id))!.debitedFlops, 1000n);
  await new Promise((r) => setTimeout(r, 1050));
  const sick = await meter.health();
  assert.equal(sick.ok, false);
  assert.equal(sick.fault, "read-only");

  meter.faults.readOnly = false;
  await new Promise((r) => setTimeout(r, 1050));
  assert.equal((await meter.health()).ok, true);
  await meter.commit(usage("req_3", key.id));
  assert.equal((await meter.getKey(key.id))!.debitedFlops, 2000n);
  meter.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an Idempotency-Key claimed by a dead process is taken over, and the presumed-dead one cannot bill it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thriftseg-store-" });
  const path = `${dir}/meter.kv`;
  const a = await MeterStore.open({ path, ownerStaleMs: 300 });
  const b = await MeterStore.open({ path, ownerStaleMs: 300 });
  const { key } = await a.createKey({ name: "idem", creditGflops: 1 });
  assert.equal(await a.beginIdempotent(key.id, "order-1", "fp"), null);
  // A's heartbeat is fresh: its claim is live.
  await assert.rejects(
    b.beginIdempotent(key.id, "order-1", "fp"),
    (err: unknown) => (err as { status?: number }).status === 409,
  );
  // No heartbeat from A for longer than ownerStaleMs (as after kill -9): B takes the claim over.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(await b.beginIdempotent(key.id, "order-1", "fp"), null);
  const response = { status: 200, headers: {}, body: new Uint8Array([1, 2, 3]) };
  const idempotency = { key: "order-1", fingerprint: "fp", response };
  // A was only slow, not dead: its late commit is refused and bills nothing; B's bills once.
  await assert.rejects(
    a.commit({ ...usage("req_a", key.id), idempotency }),
    (err: unknown) => (err as { status?: number }).status === 409,
  );
  await a.release(key.id, "order-1"); // must not free B's claim
  await b.commit({ ...usage("req_b", key.id), idempotency });
  assert.equal((await b.getKey(key.id))!.debitedFlops, 1000n);
  const replay = await a.beginIdempotent(key.id, "order-1", "fp");
  assert.deepEqual(replay?.body, new Uint8Array([1, 2, 3]));
  a.close();
  b.close();
  await Deno.remove(dir, { recursive: true });
});
