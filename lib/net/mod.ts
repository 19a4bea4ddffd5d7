// Connection hygiene for Deno.serve, which has no connection cap and no
// header, body or idle timeouts of its own: a body idle timeout, an in-flight
// upload cap, and a listener that survives running out of descriptors.

export { FdReserve } from "./fd_reserve.ts";
export { BodyTimeoutError, timedBody, YIELD_EVERY_BYTES } from "./body_timeout.ts";
export { type ConnectionGuardOptions, DEFAULT_GUARD, guardConnections, type GuardStats } from "./guard.ts";
export { type ResilientServeOptions, type ResilientServer, serveResilient } from "./serve.ts";
