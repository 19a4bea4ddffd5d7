// A thriftseg server process for the soak: spawned with `deno run main.ts`
// on its own port and data directory, watched for exits, measured (RSS from
// /proc), killed with SIGKILL on demand.

import { START_V8_FLAGS } from "../_bench.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** A free TCP port on localhost. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** One server process. */
export class ServerProc {
  readonly url: string;
  readonly child: Deno.ChildProcess;
  exit: Deno.CommandStatus | null = null;
  #log = "";

  constructor(readonly port: number, readonly env: Record<string, string>) {
    this.url = `http://127.0.0.1:${port}`;
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", START_V8_FLAGS, MAIN],
      env: { HOSTNAME: "127.0.0.1", ...env, PORT: String(port) },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child.status.then((s) => this.exit = s);
    for (const stream of [this.child.stdout, this.child.stderr]) {
      (async () => {
        for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
          this.#log = (this.#log + chunk).slice(-20_000);
        }
      })().catch(() => {});
    }
  }

  /** The last 20 KB of its stdout and stderr. */
  get log(): string {
    return this.#log;
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Waits for /readyz 200 (or throws after `timeoutMs`, or when the process ends). */
  async ready(timeoutMs = 180_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.exit) throw new Error(`server exited with ${this.exit.code} before ready:\n${this.log}`);
      try {
        const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
        await res.body?.cancel();
        if (res.status === 200) return;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`server not ready after ${timeoutMs} ms:\n${this.log}`);
  }

  /** Resident set size in MB (the process, its workers included). */
  rssMb(): number {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${this.pid}/status`));
      return m ? Number(m[1]) / 1024 : NaN;
    } catch {
      return NaN;
    }
  }

  /** kill -9, and waits for the exit. */
  async kill(): Promise<void> {
    if (!this.exit) {
      try {
        this.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await this.child.status;
  }

  /** SIGTERM (graceful), then SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.exit) return;
    try {
      this.child.kill("SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => this.kill(), 10_000);
    await this.child.status;
    clearTimeout(t);
  }
}

/** p-th percentile (0..100) of numbers, NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/**
 * Samples GET /healthz every `everyMs` until stopped, from a worker of its own (health_worker.ts): latencies, and each
 * failure with when (s after the start) and why.
 */
export function healthSampler(url: string, everyMs = 100) {
  const worker = new Worker(new URL("./health_worker.ts", import.meta.url), { type: "module" });
  const done = new Promise<{ latencies: number[]; failed: { at: number; why: string }[] }>((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
  });
  worker.postMessage({ url, everyMs });
  return {
    async stop() {
      worker.postMessage("stop");
      const { latencies, failed } = await done;
      return {
        samples: latencies.length,
        failures: failed.length,
        failed,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: Math.max(0, ...latencies),
      };
    },
  };
}
