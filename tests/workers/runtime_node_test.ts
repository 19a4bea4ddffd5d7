// The native runtime gives its arena back: a session that ran a large input is recreated once the worker is idle, so
// the process's resident memory returns near where it was (docs/RELIABILITY.md measures the same over thousands of
// requests). Measured in a child process: RSS is per process, and other tests share this one.
import assert from "node:assert/strict";

Deno.test("runtime_node: a session that ran a large input gives its arena back once idle", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_arena_child.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const r = JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
  assert.deepEqual(r.dims, [1, 1, 32, 65536]);
  assert.deepEqual(r.again, [1, 1, 64, 64], "the recreated session still runs");
  assert.ok(r.grown - r.before > 150, `the large run should grow the arena: ${JSON.stringify(r)}`);
  assert.ok(r.after - r.before < (r.grown - r.before) / 2, `RSS should return near its start: ${JSON.stringify(r)}`);
});
