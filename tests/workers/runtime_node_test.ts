// The native runtime gives its arena back: a session that ran a large input is recreated once the worker is idle, so
// the process's resident memory returns near where it was (docs/RELIABILITY.md measures the same over thousands of
// requests). Measured in a child process: RSS is per process, and other tests share this one.
import assert from "node:assert/strict";

/** Runs the child with `args`; its last line of output, parsed. */
async function child(...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_arena_child.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
}

Deno.test("runtime_node: a session that ran a large input gives its arena back once idle", async () => {
  const r = await child();
  assert.deepEqual(r.dims, [1, 1, 32, 65536]);
  assert.deepEqual(r.again, [1, 1, 64, 64], "the recreated session still runs");
  assert.ok(r.grown - r.before > 150, `the large run should grow the arena: ${JSON.stringify(r)}`);
  assert.ok(r.after - r.before < (r.grown - r.before) / 2, `RSS should return near its start: ${JSON.stringify(r)}`);
});

Deno.test("runtime_node: a worker's sessions share one arena", async () => {
  // Each session with an arena of its own grew the process by about as much as the first (workers/ort_arena.ts).
  const { grown } = await child("share");
  assert.ok(grown[0] > 60, `the first large run should grow the arena: ${grown}`);
  for (const g of grown.slice(1)) assert.ok(g < grown[0] / 4, `later sessions should reuse its memory: ${grown}`);
});

Deno.test("runtime_node: past the hard limit, the arena is given back again only once the process has grown", async () => {
  // Given back after each job: each round's large run grows the arena again, and each job's end frees it.
  const each = await child("limit", "0");
  for (const [grown, settled] of each.rounds) assert.ok(grown - settled > 40, JSON.stringify(each));
  // Memory other than the arena keeps the process past the limit: after the first time, not for nothing.
  const once = await child("limit", "100000");
  const [[grown1, settled1], [grown2, settled2]] = once.rounds;
  assert.ok(grown1 - settled1 > 40, `the first crossing gives the arena back: ${JSON.stringify(once)}`);
  assert.ok(grown2 - settled2 < 20, `then not again without growth: ${JSON.stringify(once)}`);
});
