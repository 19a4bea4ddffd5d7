// Shared test helpers: a real server on a free port, and (from dev/fixtures.ts) real images with real text in them.

export { samplePage, textImage, type TextLine } from "../dev/fixtures.ts";
import { loadConfig } from "../lib/config.ts";
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
