// `deno task bench`: thriftseg against a native peer (bench/peer: plain node:http + onnxruntime-node + sharp, same
// PP-OCRv4 model, same preprocessing), side by side and interleaved, written to docs/BENCHMARKS.md with the machine
// it ran on. Sections: the machine's peak, the model alone per runtime and thread count, the thread policy
// (workers × threads at c=1 and c=4), decoders, and HTTP end to end on five image sizes (p50/p99 at c=1 and c=4,
// throughput, share outside the model, GFLOP/s, mask agreement with the peer).
//
//   deno task bench                  # BENCH_ITER=16 requests per server and size at c=1 (c=4: 2×), in 4 rounds

import { SHARP_PNG_MIN_PIXELS } from "../lib/image/decode.ts";
import { ModelRegistry } from "../lib/models.ts";
import type { Backend } from "../lib/exec/mod.ts";
import { bar, clockGHz, iou, type Lat, median, probe, quantile, settle } from "./_bench.ts";
import { benchImages, post, type Reply, startServers } from "./_http.ts";
import { decoderTable, measureDecoders } from "./decoders.ts";

const ITER = Number(Deno.env.get("BENCH_ITER") ?? 16);
// 16 requests in 4 interleaved rounds: with 8 in 2 rounds, one run to the next moved a ratio by ±0.1 on this VM.
const ROUNDS = 4;
const root = new URL("../", import.meta.url);
const registry = await ModelRegistry.load();
const text = registry.model("text-ppocrv4-det");
const cores = navigator.hardwareConcurrency;
const out: string[] = [];
const log = (s = "") => (out.push(s), console.log(s));

// ── 0. The peer's dependencies (npm, offline-safe: no install scripts).
const peerDir = new URL("peer/", import.meta.url);
try {
  await Deno.stat(new URL("node_modules/sharp", peerDir));
} catch {
  const npm = await new Deno.Command("npm", {
    args: ["ci", "--ignore-scripts", "--no-audit", "--no-fund"],
    cwd: peerDir,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!npm.success) throw new Error("npm ci in bench/peer failed");
}

// ── 1. The machine's peak.
const ghz = clockGHz();
const flags = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
const cpu = flags.match(/model name\s*:\s*(.+)/)?.[1] ?? "unknown CPU";
const family = Number(flags.match(/cpu family\s*:\s*(\d+)/)?.[1] ?? 0);
const avx512 = / avx512f /.test(flags);
// FP32 FLOP per cycle per core: two FMA pipes × lanes × 2. Zen 5 (AMD family 26) runs AVX-512 at full width
// (2 × 16 lanes); Zen 4 splits it in halves, like AVX2 (2 × 8 lanes). WASM-SIMD128 has no FMA: at best two 4-lane
// multiplies and two 4-lane adds per cycle.
const nativeFpc = avx512 && family >= 26 ? 64 : 32;
const wasmFpc = 16;
const peak = { native: cores * ghz * nativeFpc, wasm: cores * ghz * wasmFpc };
const pct = (gflops: number, p: number) => `${(100 * gflops / p).toFixed(0)}%`;

// ── 2. The model alone (time inside session.run, pool of one worker) and 3. the thread policy (workers × threads, a
// lone job (c=1) and four at once (c=4)), interleaved round by round, each pool in a process of its own
// (bench/_probe.ts says why).
const S = 640;
const gflops640 = text.counter.count([1, 3, S, S]).flops / 1e9;
const raw: Record<string, number[]> = {};
// [workers, threads, lone worker's threads] (lib/exec/pool.ts `loneThreads`).
const policies = [[1, 2, 0], [2, 1, 0], [2, 2, 0], [2, 1, 2]];
const policy: Record<string, { c1: number[]; c4: number[] }> = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const backend of ["native", "wasm-simd"] as Backend[]) {
    for (const threads of [1, 2]) {
      (raw[`${backend} ${threads}`] ??= []).push(...(await probe("raw", backend, threads, ITER)).ms);
    }
    for (const [w, t, lone] of policies) {
      const e = policy[`${backend}|${w}×${t}${lone ? ` + lone ×${lone}` : ""}`] ??= { c1: [], c4: [] };
      const got = await probe("policy", backend, w, t, lone);
      e.c1.push(...got.c1);
      e.c4.push(...got.c4);
    }
  }
}

// ── 4. The images: a page of text lines at five sizes (PNG, and the largest as JPEG too).
const images = await benchImages();

// ── 5. Decoders in Deno (bench/decoders.ts).
const decoders = await measureDecoders(ITER);

// ── 6. HTTP: the peer and thriftseg on both CPU backends, interleaved.
const servers = await startServers();
interface Cell {
  c1: Reply[];
  c4: Lat[];
  c4WallMs: number;
  c4Count: number;
  backend?: string;
  iouPeer?: number;
}
const http = new Map<string, Cell>();
const rawBeside: number[] = [];
for (const img of images) {
  // Warm-up, and the masks each server gives for this image.
  const masks: Record<string, Uint8Array> = {};
  for (const s of servers) {
    const r = await post(s, img);
    masks[s.name] = r.mask;
    http.set(`${s.name}|${img.label}`, { c1: [], c4: [], c4WallMs: 0, c4Count: 0, backend: r.backend });
  }
  for (const s of servers.slice(1)) http.get(`${s.name}|${img.label}`)!.iouPeer = iou(masks[s.name], masks.peer);
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of servers) {
      const cell = http.get(`${s.name}|${img.label}`)!;
      // The previous server's onnxruntime threads busy-wait for a while after its last run (the peer's at normal
      // priority): each server starts its turn on quiet cores, not in the tail of the one before.
      await settle();
      for (let i = 0; i < ITER / ROUNDS; i++) cell.c1.push(await post(s, img));
      await settle();
      const t = performance.now();
      let left = (2 * ITER) / ROUNDS;
      await Promise.all([0, 1, 2, 3].map(async () => {
        while (left-- > 0) cell.c4.push(await post(s, img));
      }));
      cell.c4WallMs += performance.now() - t;
      cell.c4Count += (2 * ITER) / ROUNDS;
    }
    // The WASM target compares the server with the model alone: at 640² the model alone runs in these rounds too, so
    // both see the same machine (the probes at the start ran minutes earlier; twice this VM was ~25% slower by now).
    if (img.w === S && img.h === S) rawBeside.push(...(await probe("raw", "wasm-simd", 2, ITER / ROUNDS)).ms);
  }
}
for (const s of servers) s.proc.kill("SIGTERM");
await Promise.all(servers.map((s) => s.proc.status));

// ── 7. The report.
const f1 = (v: number) => v.toFixed(1);
const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "")).split(" ").slice(0, 3).join(" ");
log("# Benchmarks");
log();
log(
  "Written by `deno task bench` (bench/run.ts); do not edit by hand. Every number below comes from one run in which " +
    "the peer and thriftseg's backends were measured side by side, interleaved round by round.",
);
log();
log(
  `Machine: ${cpu}, ${cores} cores, ${(Deno.systemMemoryInfo().total / 2 ** 30).toFixed(0)} GiB RAM, ` +
    `${Deno.build.os}/${Deno.build.arch}, Deno ${Deno.version.deno}, Node ${await nodeVersion()}, ` +
    `onnxruntime-web/-node 1.30.0, sharp 0.35.1. Date: ${new Date().toISOString().slice(0, 10)}. ` +
    `Load average at the end of the run: ${load}.`,
);
log();
log(
  `**Peak** (FP32): cores × clock × FLOP/cycle. Clock: ${ghz.toFixed(2)} GHz, measured by a chain of dependent ` +
    "integer add/xor operations (one per cycle; the best of 12 runs, so a busy machine reads low and the " +
    `percentages high). Native: ${nativeFpc} FLOP/cycle (two FMA pipes × ${nativeFpc / 4} lanes × 2${
      nativeFpc === 64 ? ", AVX-512 at full width" : ""
    }) → ${f1(peak.native)} GFLOP/s. WASM-SIMD128: ${wasmFpc} FLOP/cycle (no FMA: two 4-lane multiplies + two ` +
    `4-lane adds) → ${f1(peak.wasm)} GFLOP/s.`,
);
log();
log("## WebGPU");
log();
log(
  "Not measured here (no GPU on this machine): on a machine with one, `deno run -A bench/webgpu.ts --out " +
    "docs/WEBGPU.md` runs the text model on WebGPU and on WASM-SIMD side by side (docs/WEBGPU.md: an H200). " +
    "`BACKEND=auto` never picks Deno's software fallback adapter (tests/pool_test.ts); `BACKEND=webgpu` without a " +
    "real adapter runs WASM-SIMD and says so in `X-Backend`.",
);
log();
log(`## The model alone: PP-OCRv4 text detector, 1×3×${S}×${S} (${gflops640.toFixed(3)} GFLOPs by our counter)`);
log();
log("Time inside `session.run` in one thriftseg worker, median of " + `${ITER * ROUNDS} runs.`);
log();
log("| runtime | threads | median ms | p90 ms | GFLOP/s | % of peak | vs native, same threads |");
log("|---|---|---|---|---|---|---|");
for (const t of [1, 2]) {
  for (const b of ["native", "wasm-simd"]) {
    const xs = raw[`${b} ${t}`], m = median(xs), n = median(raw[`native ${t}`]);
    const gf = gflops640 / (m / 1000);
    const pk = (b === "native" ? peak.native : peak.wasm) * (t / cores);
    log(
      `| ${b === "native" ? "onnxruntime-node (CPU EP)" : "onnxruntime-web WASM-SIMD"} | ${t} | ${f1(m)} | ${
        f1(quantile(xs, 0.9))
      } | ${f1(gf)} | ${pct(gf, pk)} | ${(m / n).toFixed(2)}× |`,
    );
  }
}
log();
log("## Thread policy: workers × intra-op threads");
log();
log(
  `The ${S}² model on a decoded ${S}² page, run as a \`fixed\` request runs it (the worker builds the input from the ` +
    "image, the outputs come back), each pool in a process of its own (bench/_probe.ts): c=1 = one job at a time " +
    "(median latency); c=4 = four clients, each sending its next job when its last is answered (jobs per second). " +
    "Native pool threads spin between operators only in a worker that runs alone: a pool of one worker, or the " +
    "lone worker (`+ lone ×N`: one more worker with N threads that takes a job only when nothing else is running " +
    "or waiting; lib/exec/pool.ts `loneThreads`); the others sleep (`session.intra_op.allow_spinning = 0`), so " +
    "oversubscribed sessions share the cores instead of burning them.",
);
log();
log("| backend | workers × threads | c=1 p50 ms | c=4 jobs/s |");
log("|---|---|---|---|");
for (const [k, e] of Object.entries(policy)) {
  const [b, layout] = k.split("|");
  log(`| ${b} | ${layout} | ${f1(median(e.c1))} | ${median(e.c4).toFixed(2)} |`);
}
const best = (b: string, key: "c1" | "c4") =>
  Object.entries(policy).filter(([k]) => k.startsWith(`${b}|`))
    .sort(([, x], [, y]) => key === "c1" ? median(x.c1) - median(y.c1) : median(y.c4) - median(x.c4))[0][0]
    .split("|")[1];
log();
log(
  `Fastest lone job: native ${best("native", "c1")}, WASM ${best("wasm-simd", "c1")}; most throughput at c=4: ` +
    `native ${best("native", "c4")}, WASM ${best("wasm-simd", "c4")}. The server's defaults (\`WORKERS\` and ` +
    `\`THREADS\` unset, lib/config.ts \`poolLayout\`): native ${cores}×1 + lone ×${cores}, WASM 1×${cores}.`,
);
log();
log("## Decoders in Deno");
log();
log(
  "Median ms to RGBA (bench/decoders.ts) into one reused buffer, as the decode worker writes: imagescript's " +
    "WebAssembly decoders through lib/image's `decodeImage` (header limits first; what the WASM backend decodes " +
    "with) and sharp (libvips through N-API, `lib/image/_sharp.ts`), in the same Deno process. The native backend " +
    `decodes JPEG, and PNG over ${SHARP_PNG_MIN_PIXELS} pixels (lib/image/decode.ts \`SHARP_PNG_MIN_PIXELS\`), with ` +
    "sharp; the last column says which. The screenshots are test pages of the text evaluation (bench/eval/render_pages.ts).",
);
log();
for (const line of decoderTable(decoders)) log(line);
log();
log("## HTTP end to end: POST /v1/segment/text, `X-Mode: fixed`, AUTH=off");
log();
log(
  `Each server: ${ITER} requests at c=1 and ${2 * ITER} at c=4 per image, in ${ROUNDS} interleaved rounds ` +
    "after one warm-up, each block of requests after 250 ms of quiet. thriftseg runs with its defaults (native " +
    `${cores} workers × 1 thread + a lone worker × ${cores}; WASM 1 worker × ${cores} threads); the peer with one ` +
    `session of ${cores} threads. Latency is the client's, over loopback. *Model ms*: \`Server-Timing: model\` ` +
    "(inside session.run). *Outside the model* = median over requests of 1 − model ÷ client latency (decode, " +
    "input building, transfer, stitch, encode, JSON, HTTP). GFLOP/s = the request's FLOPs ÷ model time. IoU: the " +
    "text class of the mask against the peer's.",
);
log();
log(
  "| image | server | c=1 p50 ms | c=1 p99 ms | vs peer | model ms | outside the model | GFLOP/s | % of peak | " +
    "c=4 p50 ms | c=4 p99 ms | c=4 req/s | vs peer | IoU vs peer |",
);
log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const img of images) {
  const flops = text.counter.count([1, 3, Math.ceil(img.h / 32) * 32, Math.ceil(img.w / 32) * 32]).flops / 1e9;
  const peer = http.get(`peer|${img.label}`)!;
  for (const s of servers) {
    const cell = http.get(`${s.name}|${img.label}`)!;
    const p50 = median(cell.c1.map((x) => x.ms)), model = median(cell.c1.map((x) => x.model));
    const rps = cell.c4Count / (cell.c4WallMs / 1000);
    const peerRps = peer.c4Count / (peer.c4WallMs / 1000);
    const gf = flops / (model / 1000);
    const pk = s.name.includes("wasm") ? peak.wasm : peak.native;
    log(
      `| ${img.label} | ${s.name} | ${f1(p50)} | ${f1(quantile(cell.c1.map((x) => x.ms), 0.99))} | ${
        (p50 / median(peer.c1.map((x) => x.ms))).toFixed(2)
      }× | ${f1(model)} | ${(100 * median(cell.c1.map((x) => 1 - x.model / x.ms))).toFixed(1)}% | ${f1(gf)} | ${
        pct(gf, pk)
      } | ${f1(median(cell.c4.map((x) => x.ms)))} | ${f1(quantile(cell.c4.map((x) => x.ms), 0.99))} | ${
        rps.toFixed(2)
      } | ${(rps / peerRps).toFixed(2)}× | ${cell.iouPeer === undefined ? "—" : cell.iouPeer.toFixed(4)} |`,
    );
  }
}

// ── 7b. Where the time outside the model goes.
// thriftseg's Server-Timing phases, in request order; the peer reports `pre` (decode + input) and `post` (threshold +
// PNG). Medians per column over the c=1 requests, so a row's parts need not add up to its client latency exactly.
const phase = (r: Reply, k: string) => r.stages[k] ?? 0;
const named = (r: Reply) =>
  r.stages.infer === undefined
    ? ["pre", "model", "post"]
    : ["read", "decode", "plan", "infer", "stitch", "encode", "bill"];
const columns: [string, (r: Reply) => number][] = [
  ["client", (r) => r.ms],
  ["model", (r) => r.model],
  ["read", (r) => phase(r, "read")],
  ["decode", (r) => phase(r, "decode") + phase(r, "pre")],
  ["plan", (r) => phase(r, "plan")],
  ["input + transfer", (r) => Math.max(0, phase(r, "infer") - phase(r, "model") - phase(r, "queue"))],
  ["stitch", (r) => phase(r, "stitch")],
  ["encode", (r) => phase(r, "encode") + phase(r, "post")],
  ["bill", (r) => phase(r, "bill")],
  ["rest of the server", (r) => r.total - named(r).reduce((sum, k) => sum + phase(r, k), 0)],
  ["HTTP + client", (r) => r.ms - r.total],
];
const decodeAndHttp = (c: Cell) => median(c.c1.map((r) => (phase(r, "decode") + r.ms - r.total) / r.ms));
log();
log("## Where the time outside the model goes (c=1, median ms)");
log();
log(
  "Each phase from `Server-Timing` (README: read, decode, plan, queue, infer, model, stitch, encode, bill, total), " +
    "median over the c=1 requests above. _Input + transfer_: infer − model − queue (the worker building the model's " +
    "input from the decoded image, the job's messages and outputs). _Rest of the server_: total − the named phases " +
    "(middleware: request id, auth, rate limit, idempotency; the handler's JSON). _HTTP + client_: client latency − " +
    "total (loopback transfer both ways, the client's JSON parse). The peer reports _pre_ (decode + input) under " +
    "decode and _post_ (threshold + PNG) under encode. _Decode + HTTP_: what any server that decodes the upload and " +
    "answers over HTTP spends outside the model, as a share of the client latency.",
);
log();
log(`| image | server | ${columns.map(([k]) => k).join(" | ")} | decode + HTTP |`);
log(`|---|---|${columns.map(() => "---").join("|")}|---|`);
for (const img of images) {
  for (const s of servers.filter((s) => s.name !== "thriftseg wasm-simd")) {
    const c = http.get(`${s.name}|${img.label}`)!;
    const cells = columns.map(([, f]) => f1(median(c.c1.map(f))));
    const floor = s.name === "peer" ? "—" : `${(100 * decodeAndHttp(c)).toFixed(1)}%`;
    log(`| ${img.label} | ${s.name} | ${cells.join(" | ")} | ${floor} |`);
  }
}

// ── 8. Targets.
const cell = (s: string, label: string) => http.get(`${s}|${label}`)!;
const p50 = (c: Cell) => median(c.c1.map((x) => x.ms));
const rps = (c: Cell) => c.c4Count / (c.c4WallMs / 1000);
const at640 = images[2].label;
const worstP50 = Math.max(...images.map((i) => p50(cell("thriftseg native", i.label)) / p50(cell("peer", i.label))));
const worstRps = Math.min(...images.map((i) => rps(cell("thriftseg native", i.label)) / rps(cell("peer", i.label))));
const outside640 = median(cell("thriftseg native", at640).c1.map((x) => 1 - x.model / x.ms));
const wasmVsRaw = p50(cell("thriftseg wasm-simd", at640)) / median(rawBeside);
const pngIoU = Math.min(
  ...images.filter((i) => i.format === "png").flatMap((i) =>
    ["thriftseg native", "thriftseg wasm-simd"].map((s) => cell(s, i.label).iouPeer!)
  ),
);
const met = (ok: boolean) => (ok ? "met" : "missed");
log();
log("## Targets");
log();
log("| target | measured | |");
log("|---|---|---|");
log(`| native p50 at c=1 ≤ 1.1× the peer (worst image) | ${worstP50.toFixed(2)}× | ${met(worstP50 <= 1.1)} |`);
log(`| native throughput at c=4 ≥ 1.0× the peer (worst image) | ${worstRps.toFixed(2)}× | ${met(worstRps >= 1)} |`);
log(
  `| native share outside the model ≤ 5% at 640² c=1 | ${(100 * outside640).toFixed(1)}% (decoding the upload and ` +
    `HTTP alone: ${(100 * decodeAndHttp(cell("thriftseg native", at640))).toFixed(1)}%; the peer: ${
      (100 * median(cell("peer", at640).c1.map((x) => 1 - x.model / x.ms))).toFixed(1)
    }%) | ${met(outside640 <= 0.05)} |`,
);
log(
  `| WASM: a lone request uses both cores | default THREADS = ${cores}; 2-thread model ${
    f1(median(raw["wasm-simd 2"]))
  } ms vs 1-thread ${f1(median(raw["wasm-simd 1"]))} ms | ${
    met(median(raw["wasm-simd 2"]) < median(raw["wasm-simd 1"]))
  } |`,
);
log(
  `| WASM p50 at c=1 ≤ 1.15× its raw model time at 2 threads (640²) | ${wasmVsRaw.toFixed(2)}× (the model alone ${
    f1(median(rawBeside))
  } ms in the same rounds, ${f1(median(raw["wasm-simd 2"]))} ms at the start of the run) | ${met(wasmVsRaw <= 1.15)} |`,
);
log(
  `| masks identical across backends: IoU ≥ 0.999 vs the peer on PNG inputs | ${pngIoU.toFixed(4)} | ${
    met(pngIoU >= 0.999)
  } |`,
);
log(
  "| cost identical across backends | FLOPs are counted from the graph at the executed shapes, never measured; " +
    "tests/backends_test.ts checks equal costs and executions on both backends | met |",
);
log();
log(bar(load, cores));

await Deno.writeTextFile(new URL("docs/BENCHMARKS.md", root), out.join("\n") + "\n");
await new Deno.Command(Deno.execPath(), { args: ["fmt", "docs/BENCHMARKS.md"], cwd: root }).output();
Deno.exit(0);

async function nodeVersion(): Promise<string> {
  const o = await new Deno.Command("node", { args: ["--version"], stdout: "piped" }).output().catch(() => null);
  return o ? new TextDecoder().decode(o.stdout).trim() : "?";
}
