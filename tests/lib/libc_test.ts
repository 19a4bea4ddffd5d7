import assert from "node:assert/strict";
import { idleRelease } from "../../lib/libc.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("idleRelease drops the caller's caches once, after idleMs without a touch", async () => {
  let dropped = 0;
  const release = idleRelease(80, () => dropped++);
  try {
    release.touch();
    await sleep(50);
    release.touch(); // activity: the quiet spell starts again
    await sleep(50);
    assert.equal(dropped, 0);
    await sleep(80);
    assert.equal(dropped, 1);
    await sleep(100);
    assert.equal(dropped, 1); // once per quiet spell
    release.touch();
    release.close();
    await sleep(120);
    assert.equal(dropped, 1); // closed: nothing runs
  } finally {
    release.close();
  }
});
