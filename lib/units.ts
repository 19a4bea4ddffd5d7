// FLOP units: integer FLOPs inside thriftseg, GFLOPs only at the edges (HTTP, CLI, docs). Every conversion goes
// through here so a rounding rule lives in one place.

/** FLOPs in one GFLOP. */
export const FLOPS_PER_GFLOP = 1e9;

/**
 * Integer FLOPs (number or bigint) → GFLOPs, for JSON, headers and docs.
 *
 * @example
 * ```ts
 * import { toGflops } from "./units.ts";
 * toGflops(1_234_000_000); // 1.234
 * ```
 */
export function toGflops(flops: number | bigint): number {
  return Number(flops) / FLOPS_PER_GFLOP;
}

/**
 * GFLOPs from a client (a header, a CLI flag) → integer FLOPs, rounded to the nearest FLOP.
 *
 * @example
 * ```ts
 * import { fromGflops } from "./units.ts";
 * fromGflops(2.5); // 2_500_000_000
 * ```
 */
export function fromGflops(gflops: number): number {
  return Math.round(gflops * FLOPS_PER_GFLOP);
}

/**
 * Integer FLOPs → GFLOPs rounded *up* to the MFLOP: a minimum a client can send back and be sure it suffices.
 *
 * @example
 * ```ts
 * import { ceilGflops } from "./units.ts";
 * ceilGflops(1_234_500_001); // 1.235
 * ```
 */
export function ceilGflops(flops: number): number {
  return Math.ceil(flops / 1e6) / 1e3;
}
