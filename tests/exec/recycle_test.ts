import assert from "node:assert/strict";
import { RecycleSchedule } from "../../lib/exec/recycle.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("a slot recycles at once, then at most once per cooldown; asks meanwhile make one recycle at its end", async () => {
  const schedule = new RecycleSchedule(200);
  const ran: number[] = [];
  const t0 = performance.now();
  const recycle = (slot: number) => () => (ran.push(slot), true);
  schedule.ask(0, recycle(0));
  assert.deepEqual(ran, [0], "never recycled: at once");
  schedule.ask(0, recycle(0));
  schedule.ask(0, recycle(0));
  schedule.ask(1, recycle(1));
  assert.deepEqual(ran, [0, 1], "another slot has its own cooldown");
  await sleep(300);
  assert.deepEqual(ran, [0, 1, 0], "the asks within the cooldown: one recycle when it ends");
  schedule.close();
  assert.ok(performance.now() - t0 >= 200);
});

Deno.test("a put-off recycle that does not happen (a fresh worker by then) does not start a cooldown", async () => {
  const schedule = new RecycleSchedule(100);
  let n = 0;
  schedule.ask(0, () => (n++, true));
  schedule.ask(0, () => (n++, false)); // put off; at its end the slot's worker did not grow
  await sleep(150);
  assert.equal(n, 2);
  schedule.ask(0, () => (n++, true));
  assert.equal(n, 3, "the cooldown counts from the last recycle that happened, 150 ms ago: at once");
  schedule.close();
});

Deno.test("close cancels the recycles put off", async () => {
  const schedule = new RecycleSchedule(50);
  let n = 0;
  schedule.ask(0, () => (n++, true));
  schedule.ask(0, () => (n++, true));
  schedule.close();
  await sleep(100);
  assert.equal(n, 1);
});
