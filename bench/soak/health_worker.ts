// The soak's /healthz sampler, in a worker of its own: the soak's main thread builds and sends thousands of hostile
// requests, and a sample timed from that event loop would measure the client's own stalls, not the server's.
// Messages: { url, everyMs } starts sampling; "stop" ends it and the worker posts the samples back.

/// <reference lib="deno.worker" />

let running = true;

self.onmessage = async (e: MessageEvent<{ url: string; everyMs: number } | "stop">) => {
  if (e.data === "stop") {
    running = false;
    return;
  }
  const { url, everyMs } = e.data;
  const latencies: number[] = [];
  const failed: { at: number; why: string }[] = [];
  const t0 = performance.now();
  while (running) {
    const t = performance.now();
    const fail = (why: string) => failed.push({ at: Math.round((t - t0) / 100) / 10, why: why.slice(0, 200) });
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
      await res.body?.cancel();
      if (res.status === 200) latencies.push(performance.now() - t);
      else fail(`HTTP ${res.status}`);
    } catch (err) {
      fail(`${(err as Error).name}: ${(err as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  self.postMessage({ latencies, failed });
  self.close();
};
