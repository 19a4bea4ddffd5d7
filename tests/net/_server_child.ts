// Child of connections_test.ts: a guarded, resilient server run under a low
// `ulimit -n`; prints its port, then serves until killed.

import { guardConnections, serveResilient } from "../../lib/net/mod.ts";

let server: ReturnType<typeof serveResilient> | null = null;
const guard = guardConnections(async (req) => {
  if (req.body) await req.arrayBuffer();
  return new Response("ok");
}, { bodyTimeoutMs: 500, underPressure: () => server?.underPressure() ?? false });
server = serveResilient({ port: 0, hostname: "127.0.0.1", onEvent: (e) => console.error(e) }, guard.fetch);
console.log(JSON.stringify({ port: server.addr.port }));
