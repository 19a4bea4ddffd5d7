// Connection hygiene over real sockets: a body shorter than its
// Content-Length is a 400 after the body timeout (not a hang), uploads over
// the in-flight cap get 503 at once, and a process with a low fd limit
// survives more idle sockets than it has descriptors and serves again.

import assert from "node:assert/strict";
import { BodyTimeoutError, guardConnections, serveResilient, timedBody, YIELD_EVERY_BYTES } from "../../lib/net/mod.ts";

const enc = new TextEncoder();

async function rawRequest(port: number, head: string, body = ""): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(enc.encode(head + body));
  return conn;
}

async function readStatus(conn: Deno.TcpConn, timeoutMs = 5000): Promise<{ status: number; text: string }> {
  const buf = new Uint8Array(4096);
  let text = "";
  const deadline = setTimeout(() => conn.close(), timeoutMs);
  try {
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch {
    /* closed by the deadline */
  } finally {
    clearTimeout(deadline);
  }
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text };
}

function testServer(opts: { bodyTimeoutMs?: number; maxInflightUploads?: number }) {
  const guard = guardConnections(async (req) => {
    try {
      const bytes = await req.arrayBuffer();
      return new Response(`got ${bytes.byteLength}`);
    } catch (err) {
      const status = err instanceof BodyTimeoutError ? err.status : 500;
      return new Response((err as Error).message, { status });
    }
  }, opts);
  const server = serveResilient({ port: 0, hostname: "127.0.0.1", onEvent: () => {} }, guard.fetch);
  return { server, guard, port: server.addr.port };
}

Deno.test("a body shorter than its Content-Length is a 400 after the body timeout", async () => {
  const { server, port } = testServer({ bodyTimeoutMs: 300 });
  try {
    const t0 = performance.now();
    const conn = await rawRequest(port, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", "0123456789");
    const { status, text } = await readStatus(conn);
    conn.close();
    const ms = performance.now() - t0;
    assert.equal(status, 400);
    assert.match(text, /stalled: 10 of the 100 declared bytes/);
    assert.ok(ms >= 280 && ms < 3000, `answered after ${ms.toFixed(0)} ms`);
    // A whole body still goes through.
    const ok = await fetch(`http://127.0.0.1:${port}/x`, { method: "POST", body: "hello" });
    assert.equal(await ok.text(), "got 5");
  } finally {
    await server.shutdown();
  }
});

Deno.test("uploads over the in-flight cap get 503 with Retry-After at once", async () => {
  const { server, guard, port } = testServer({ bodyTimeoutMs: 2000, maxInflightUploads: 2 });
  try {
    const stalled = [];
    for (let i = 0; i < 2; i++) {
      stalled.push(await rawRequest(port, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", "abc"));
    }
    while (guard.stats().inflightUploads < 2) await new Promise((r) => setTimeout(r, 10));
    const t0 = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/x`, { method: "POST", body: "hello" });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    await res.body?.cancel();
    assert.ok(performance.now() - t0 < 1000);
    // Requests without a body are not uploads.
    const get = await fetch(`http://127.0.0.1:${port}/x`);
    assert.equal(get.status, 200);
    await get.body?.cancel();
    for (const c of stalled) {
      assert.equal((await readStatus(c)).status, 400);
      c.close();
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test({
  name: "more idle sockets than file descriptors: the process survives and serves again",
  sanitizeResources: false,
  sanitizeOps: false,
  ignore: Deno.build.os !== "linux",
  async fn() {
    const child = new Deno.Command("bash", {
      args: [
        "-c",
        `ulimit -n 256; exec "${Deno.execPath()}" run --allow-read --allow-net ` +
        new URL("./_server_child.ts", import.meta.url).pathname,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { port } = JSON.parse((await lines.read()).value!);
    const idle: Deno.TcpConn[] = [];
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      try {
        idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      } catch {
        refused++;
      }
    }
    // The server drops idle sockets under pressure: most reads see EOF.
    await new Promise((r) => setTimeout(r, 1500));
    let dropped = 0;
    await Promise.all(idle.map(async (c) => {
      const t = setTimeout(() => c.close(), 500);
      try {
        if ((await c.read(new Uint8Array(16))) === null) dropped++;
      } catch { /* closed by us: still open on the server */ }
      clearTimeout(t);
    }));
    let served = 0;
    for (let i = 0; i < 50 && served === 0; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (res.status === 200) served++;
        await res.body?.cancel();
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    for (const c of idle) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    let exited: Deno.CommandStatus | null = null;
    child.status.then((s) => exited = s);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(exited, null, "the server process ended");
    child.kill("SIGKILL");
    await child.status;
    await lines.cancel();
    const log = await new Response(child.stderr).text();
    assert.ok(served > 0, `no request served after the flood (${refused} refused, ${dropped} dropped)\n${log}`);
    assert.ok(dropped > 100, `only ${dropped} idle sockets dropped\n${log}`);
  },
});

Deno.test("body timeout: a large body already buffered lets timers run while it is read", async () => {
  // 8 MiB in 64 KiB chunks, all there before the first read (as a fast client's upload is): read plainly, every read
  // resolves at once and a timer waits for the whole body; the wrapper gives the event loop a turn every 1 MiB.
  const chunk = 64 * 1024, total = 8 * 1024 * 1024;
  const buffered = () =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (let n = 0; n < total; n += chunk) c.enqueue(new Uint8Array(chunk));
        c.close();
      },
    });
  const ticksWhileReading = async (body: ReadableStream<Uint8Array>) => {
    let ticks = 0, reading = true;
    const tick = () => {
      if (!reading) return;
      ticks++;
      setTimeout(tick, 0);
    };
    setTimeout(tick, 0);
    const bytes = await new Response(body).arrayBuffer();
    reading = false;
    assert.equal(bytes.byteLength, total);
    return ticks;
  };
  assert.equal(await ticksWhileReading(buffered()), 0); // the stall the wrapper exists to break
  assert.ok(await ticksWhileReading(timedBody(buffered(), 10_000)) >= total / YIELD_EVERY_BYTES - 1);
});

Deno.test("body timeout: a slow but steady body passes; a body read late is not timed out for it", async () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // 8 chunks 40 ms apart: 320 ms in all, over the 100 ms idle limit, never idle that long.
  const steady = new ReadableStream<Uint8Array>({
    async start(c) {
      for (let i = 0; i < 8; i++) {
        await sleep(40);
        c.enqueue(new Uint8Array(1000));
      }
      c.close();
    },
  });
  const bytes = await new Response(timedBody(steady, 100)).arrayBuffer();
  assert.equal(bytes.byteLength, 8000);
  // The whole body is there at once, but nobody reads it for 250 ms: no timeout either.
  const late = timedBody(new Response("abc").body!, 100);
  await sleep(250);
  assert.equal(await new Response(late).text(), "abc");
  // And a stall still fails, once.
  const stalled = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new Uint8Array(5)) });
  await assert.rejects(new Response(timedBody(stalled, 100, 50)).arrayBuffer(), BodyTimeoutError);
});
