// Shared test helpers: a real server on a free port, and (from dev/fixtures.ts) real images with real text in them.

export { samplePage, textImage, type TextLine } from "../dev/fixtures.ts";
import { loadConfig } from "../lib/config.ts";
import type { RgbaImage } from "../lib/image/mod.ts";
import { type RunningServer, startServer } from "../main.ts";

/**
 * Starts the real server on a free port with test-friendly settings: keys
 * off unless `env.AUTH` says otherwise, a fresh KV file in a temp dir unless
 * `env.DATA_DIR` names one.
 */
export async function testServer(env: Record<string, string> = {}): Promise<RunningServer> {
  const dataDir = env.DATA_DIR ?? await Deno.makeTempDir({ prefix: "thriftseg-test-" });
  const server = startServer(
    loadConfig({
      PORT: "0",
      HOSTNAME: "127.0.0.1",
      WORKERS: "2",
      AUTH: "off",
      // Tests that fire many requests at once check billing and queues, not admission: admission has its own tests.
      MAX_QUEUE_DELAY_MS: "600000",
      ...env,
      DATA_DIR: dataDir,
    }),
  );
  await server.ready;
  return server;
}

/**
 * White, with black `boxes` of 2-px stripes broken every 6 px (ink, like strokes of text: an unbroken stripe is a rule,
 * which the default's tail skips, lib/plan/ink_cells.ts `withoutLines`).
 */
export function stripedPage(
  width: number,
  height: number,
  boxes: { x: number; y: number; w: number; h: number }[],
): RgbaImage {
  const data = new Uint8Array(width * height * 4).fill(255);
  for (const b of boxes) {
    for (let y = b.y; y < Math.min(height, b.y + b.h); y++) {
      if (y % 4 >= 2) continue;
      for (let x = b.x; x < Math.min(width, b.x + b.w); x++) {
        if (x % 6 !== 5) data.fill(0, 4 * (y * width + x), 4 * (y * width + x) + 3);
      }
    }
  }
  return { width, height, data };
}
