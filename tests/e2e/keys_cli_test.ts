// `deno task keys` against the same Deno KV file a running server uses: a key created by the CLI works over HTTP,
// a top-up shows in the credit header, and a revoke from the CLI locks the key out of the live server.

import assert from "node:assert/strict";
import { samplePage, testServer } from "../_util.ts";

const dataDir = await Deno.makeTempDir({ prefix: "thriftseg-keys-" });
const { image } = await samplePage(96, 64);
const png = new Uint8Array(await image.encode());

async function keys(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys", "bin/keys.ts", ...args],
    cwd: new URL("../..", import.meta.url),
    env: { DATA_DIR: dataDir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "keys CLI: create, top up and revoke keys a running server honours",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const created = await keys("create", "--name", "cli", "--credit-gflops", "40", "--json");
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout);
    assert.equal(key.credit_remaining_gflops, 40);
    assert.match(key.secret, /^tsk_/);

    const server = await testServer({ AUTH: "on", DATA_DIR: dataDir, WORKERS: "1" });
    try {
      await server.ready;
      const segment = () =>
        fetch(`${server.url}/v1/segment/text`, {
          method: "POST",
          body: png,
          headers: { authorization: `Bearer ${key.secret}`, "content-type": "image/png", "x-mode": "fixed" },
        });
      const ok = await segment();
      assert.equal(ok.status, 200, await ok.clone().text());
      const cost = Number(ok.headers.get("x-cost-gflops"));
      await ok.body?.cancel();
      assert.ok(Math.abs(Number(ok.headers.get("x-credit-remaining-gflops")) - (40 - cost)) < 1e-9);

      const topped = await keys("topup", key.id, "--gflops", "10", "--json");
      assert.equal(topped.code, 0, topped.stderr);
      const after = JSON.parse(topped.stdout);
      assert.ok(Math.abs(after.credit_remaining_gflops - (50 - cost)) < 1e-9, topped.stdout);
      assert.ok(Math.abs(after.debited_gflops - cost) < 1e-9);

      const listed = await keys("list");
      assert.equal(listed.code, 0);
      assert.match(listed.stdout, new RegExp(key.id));
      assert.doesNotMatch(listed.stdout, new RegExp(key.secret), "list must never show a secret");

      const revoked = await keys("revoke", key.id);
      assert.equal(revoked.code, 0, revoked.stderr);
      const denied = await segment();
      assert.equal(denied.status, 403);
      await denied.body?.cancel();

      const bad = await keys("topup", "key_missing", "--gflops", "1");
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /no key key_missing/);
      const noCredit = await keys("create", "--name", "x");
      assert.equal(noCredit.code, 1);
      assert.match(noCredit.stderr, /--credit-gflops/);
    } finally {
      await server.close();
    }
  },
});
