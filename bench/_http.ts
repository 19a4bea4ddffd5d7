// The HTTP side of `deno task bench` (bench/run.ts): the bench's images, starting the peer and thriftseg's servers,
// and one timed request with the server's own phases (Server-Timing) and the mask it returned.

import { decodeImage } from "../lib/image/mod.ts";
import { textImage } from "../dev/fixtures.ts";
import { type Lat, sizeLines, START_V8_FLAGS } from "./_bench.ts";

/** One benchmark image as uploaded. */
export interface BenchImage {
  w: number;
  h: number;
  format: "png" | "jpeg";
  bytes: Uint8Array<ArrayBuffer>;
  label: string;
}

/** A server under test. */
export interface Server {
  name: string;
  url: string;
  proc: Deno.ChildProcess;
}

/** One request as the client saw it, with the mask and every Server-Timing entry. */
export interface Reply extends Lat {
  mask: Uint8Array;
  backend: string;
  /** Every Server-Timing entry, ms. */
  stages: Record<string, number>;
}

const root = new URL("../", import.meta.url);

/** A page of text lines at five sizes: PNG, and the largest as JPEG. */
export async function benchImages(): Promise<BenchImage[]> {
  const SIZES: [number, number, "png" | "jpeg"][] = [
    [320, 240, "png"],
    [563, 398, "png"],
    [640, 640, "png"],
    [1280, 720, "png"],
    [1920, 1080, "jpeg"],
  ];
  const images: BenchImage[] = [];
  for (const [w, h, format] of SIZES) {
    const { image } = await textImage(w, h, sizeLines(w, h));
    const bytes = new Uint8Array(format === "png" ? await image.encode() : await image.encodeJPEG(90));
    images.push({ w, h, format, bytes, label: `${w}×${h} ${format.toUpperCase()}` });
  }
  return images;
}

async function spawn(name: string, cmd: string, args: string[], env: Record<string, string>, port: number) {
  const proc = new Deno.Command(cmd, { args, env, cwd: root, stdout: "null", stderr: "inherit" }).spawn();
  const url = `http://127.0.0.1:${port}`;
  const probe = name === "peer" ? "/healthz" : "/readyz";
  for (let i = 0; i < 1200; i++) {
    if (await fetch(url + probe).then((r) => (r.body?.cancel(), r.ok)).catch(() => false)) {
      return { name, url, proc } satisfies Server;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not become ready`);
}

/** The peer (bench/peer), then thriftseg on the native and the WASM backend, each ready to serve. */
export async function startServers(): Promise<Server[]> {
  // A closed loop of four clients on two workers queues by design: admission control (MAX_QUEUE_DELAY_MS) would
  // shed it.
  const serverEnv = {
    HOSTNAME: "127.0.0.1",
    AUTH: "off",
    DATA_DIR: await Deno.makeTempDir(),
    MAX_QUEUE_DELAY_MS: "600000",
  };
  // The permissions and flags `deno task start` / `start:wasm` pass (native needs --allow-ffi, WASM does not).
  const perms = ["--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", START_V8_FLAGS];
  return [
    await spawn("peer", "node", ["bench/peer/server.mjs"], { PORT: "8931" }, 8931),
    await spawn("thriftseg native", Deno.execPath(), ["run", ...perms, "--allow-ffi", "main.ts"], {
      ...serverEnv,
      PORT: "8932",
      BACKEND: "native",
    }, 8932),
    await spawn("thriftseg wasm-simd", Deno.execPath(), ["run", ...perms, "main.ts"], {
      ...serverEnv,
      PORT: "8933",
      BACKEND: "wasm",
    }, 8933),
  ];
}

/** POST the image to the text task, `X-Mode: fixed`; the client's latency, the server's phases and the mask. */
export async function post(s: Server, img: BenchImage): Promise<Reply> {
  const t = performance.now();
  const res = await fetch(`${s.url}/v1/segment/text`, {
    method: "POST",
    body: img.bytes,
    headers: { "content-type": `image/${img.format}`, "x-mode": "fixed" },
  });
  const body = await res.json();
  const ms = performance.now() - t;
  if (res.status !== 200) throw new Error(`${s.name}: HTTP ${res.status} ${JSON.stringify(body)}`);
  // `name;dur=ms`, with a `;desc=…` after some (the total's).
  const timing = Object.fromEntries(
    res.headers.get("server-timing")!.split(",").map((p) => {
      const [k, ...params] = p.trim().split(";");
      return [k, Number(params.find((x) => x.startsWith("dur="))?.slice(4))];
    }),
  );
  const png = Uint8Array.from(atob(body.mask.data), (c) => c.charCodeAt(0));
  const rgba = (await decodeImage(png)).data;
  const mask = new Uint8Array(rgba.length / 4);
  for (let i = 0; i < mask.length; i++) mask[i] = rgba[i * 4];
  return {
    ms,
    model: timing.model,
    total: timing.total,
    mask,
    backend: body.backend ?? "onnxruntime-node",
    stages: timing,
  };
}
