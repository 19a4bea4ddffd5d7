// Sending one soak request and judging its answer against the contract:
// every error is problem+json, a 503 carries Retry-After, and no 5xx other
// than 503/504 (a 500, or a connection the server dropped, is a failure).

import type { HostileCase } from "./hostile.ts";

/** What came back for one request. */
export interface Outcome {
  status: number; // 0 = no HTTP answer (connection error or client timeout)
  ms: number;
  problem: boolean;
  /** The problem's `type` for an error answer sent as problem+json. */
  problemType?: string;
  retryAfter: string | null;
  flops?: number;
  replayed?: boolean;
  error?: string;
  /** Refused by the HTTP parser below the application (a header no conforming client sends): a bare 400. */
  parser?: boolean;
}

// Header values fetch() refuses to send (control characters): such cases go over a raw socket instead.
// deno-lint-ignore no-control-regex
const UNSENDABLE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** POSTs one case over a raw TCP socket (HTTP/1.1, Connection: close) and reads the status line and headers. */
async function sendRaw(
  url: string,
  c: Pick<HostileCase, "task" | "headers" | "body">,
  timeoutMs: number,
): Promise<Outcome> {
  const t0 = performance.now();
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const body = c.body as Uint8Array;
    const lines = Object.entries(c.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    const head = `POST /v1/segment/${c.task} HTTP/1.1\r\nHost: ${hostname}\r\n${lines}` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    await conn.write(new TextEncoder().encode(head));
    await conn.write(body).catch(() => 0);
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    for (let n; (n = await conn.read(buf).catch(() => null)) !== null;) chunks.push(buf.slice(0, n));
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    const [headPart, bodyPart = ""] = text.split("\r\n\r\n");
    const status = Number(headPart.split(" ")[1]) || 0;
    const header = (name: string) =>
      headPart.split("\r\n").find((l) => l.toLowerCase().startsWith(name + ":"))?.slice(name.length + 1).trim() ?? null;
    const type = header("content-type") ?? "";
    return {
      status,
      ms: performance.now() - t0,
      problem: type.startsWith("application/problem+json"),
      retryAfter: header("retry-after"),
      parser: status === 400 && type === "" && bodyPart.trim() === "",
      error: status === 0 ? "no status line" : undefined,
    };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

/** POSTs one case. */
export async function send(
  url: string,
  c: Pick<HostileCase, "task" | "headers" | "body">,
  timeoutMs = 120_000,
): Promise<Outcome> {
  if (Object.values(c.headers ?? {}).some((v) => UNSENDABLE.test(String(v)))) {
    return await sendRaw(url, c, timeoutMs).catch((err) => ({
      status: 0,
      ms: 0,
      problem: false,
      retryAfter: null,
      error: (err as Error).message,
    }));
  }
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}/v1/segment/${c.task}`, {
      method: "POST",
      headers: c.headers,
      body: c.body as Uint8Array<ArrayBuffer>,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const type = res.headers.get("content-type") ?? "";
    const text = await res.text();
    let flops: number | undefined;
    let problem = false, problemType: string | undefined;
    if (res.status >= 400) {
      try {
        const body = JSON.parse(text);
        problem = type.startsWith("application/problem+json") && body.status === res.status &&
          typeof body.type === "string";
        if (problem) problemType = body.type;
      } catch { /* not JSON */ }
    } else if (type.startsWith("application/json")) {
      flops = JSON.parse(text).cost?.flops;
    }
    return {
      status: res.status,
      ms: performance.now() - t0,
      problem,
      problemType,
      retryAfter: res.headers.get("retry-after"),
      flops,
      replayed: res.headers.get("idempotent-replayed") === "true",
      error: res.status >= 500 ? text.slice(0, 300) : undefined,
    };
  } catch (err) {
    return { status: 0, ms: performance.now() - t0, problem: false, retryAfter: null, error: (err as Error).message };
  }
}

/**
 * Sends one case as a well-behaved client does: a 503 or 429 is retried after its Retry-After (seconds, plus up to one
 * second of jitter so that shed clients do not come back in one wave) until an answer that is neither, or until
 * `deadlineMs` runs out. Every answer is returned, the last one final.
 */
export async function sendRetrying(
  url: string,
  c: Pick<HostileCase, "task" | "headers" | "body">,
  deadlineMs: number,
): Promise<Outcome[]> {
  const end = performance.now() + deadlineMs;
  const answers: Outcome[] = [];
  for (;;) {
    const o = await send(url, c, Math.max(1000, end - performance.now()));
    answers.push(o);
    const wait = Number(o.retryAfter ?? 1) * 1000 + Math.random() * 1000;
    if ((o.status !== 503 && o.status !== 429) || performance.now() + wait >= end) return answers;
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** Why an outcome breaks the contract, or null when it is fine. */
export function violation(o: Outcome): string | null {
  if (o.status === 0) return `no answer: ${o.error}`;
  if (o.status >= 500 && o.status !== 503 && o.status !== 504) return `${o.status}: ${o.error}`;
  if (o.status >= 400 && !o.problem && !o.parser) return `${o.status} without problem+json`;
  if (o.status === 503 && !o.retryAfter) return "503 without Retry-After";
  return null;
}

/** Runs `fn` over `items` with `concurrency` at once. */
export async function pool<T, R>(items: T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

/** Tallies statuses: {"200": n, "400": n, …}, or whatever else `key` reads off each outcome. */
export function tally(
  outcomes: Outcome[],
  key: (o: Outcome) => string = (o) => String(o.status),
): Record<string, number> {
  const t: Record<string, number> = {};
  for (const o of outcomes) t[key(o)] = (t[key(o)] ?? 0) + 1;
  return t;
}
