// Child process of store_test.ts: debits one key from its own MeterStore on a
// shared KV file, many requests at once, and prints what it billed as JSON.

import { MeterStore } from "../../lib/metering/mod.ts";

const [path, keyId, countArg, flopsArg] = Deno.args;
const meter = await MeterStore.open({ path });
const count = Number(countArg), flops = Number(flopsArg);
let billed = 0, ok = 0;
const errors: string[] = [];
let next = 0;
await Promise.all(Array.from({ length: 16 }, async () => {
  while (next < count) {
    const i = next++;
    try {
      await meter.admit(keyId, { requests: 1_000_000, windowSeconds: 60 });
      await meter.commit({
        requestId: `req_${Deno.pid}_${i}`,
        keyId,
        task: "digits",
        mode: "fixed",
        flops,
        macs: flops / 2,
        status: 200,
        idempotency: {
          key: `k_${Deno.pid}_${i}`,
          fingerprint: "f",
          response: { status: 200, headers: {}, body: new Uint8Array(64) },
        },
      });
      billed += flops;
      ok++;
    } catch (err) {
      errors.push(`${(err as { status?: number }).status ?? "untyped"} ${(err as Error).message}`);
    }
  }
}));
meter.close();
console.log(JSON.stringify({ ok, billed, errors }));
