// The glance of glance → focus (lib/plan/focus.ts): a model run at reduced resolution, on the whole image or on the
// ink cover's windows, and the path of resolutions a budget chooses from: narrower before shorter, because the text
// detector's map survives squeezed characters far better than squeezed lines.

import type { WindowCall } from "../exec/mod.ts";
import type { LoadedModel } from "../models.ts";
import { type Box, roundUp } from "./geometry.ts";
import type { PlanContext } from "./types.ts";

/**
 * The glance's resolution factor without a budget: ½, or ¼ when even a quarter of the image's short side is at least
 * the model's reference short side (text there is large enough to survive), or when the ½ glance would not fit one
 * execution.
 *
 * @example
 * ```ts
 * import { glanceScale } from "./glance.ts";
 * glanceScale(1366, 768, { width: 640, height: 640 }, 1 << 22); // 0.5
 * glanceScale(4000, 3000, { width: 640, height: 640 }, 1 << 22); // 0.25
 * ```
 */
export function glanceScale(
  width: number,
  height: number,
  reference: { width: number; height: number },
  maxExecPixels: number,
): number {
  const big = Math.min(width, height) / 4 >= Math.min(reference.width, reference.height);
  return big || (width * height) / 4 > maxExecPixels ? 0.25 : 0.5;
}

/**
 * `model` on `regions` of the image at scale m/qx across and m/qy down (m: the model's input multiple), each region
 * grown right and down to a multiple of qx × qy so its scaled input is a multiple of m.
 */
export function scaledCall(model: LoadedModel, regions: Box[], qx: number, qy: number): WindowCall {
  const m = model.spec.input.multiple, scale = m / qx, scaleY = m / qy;
  const windows = regions.map((r) => ({ x: r.x, y: r.y, w: roundUp(r.w, qx), h: roundUp(r.h, qy) }));
  return qx === qy ? { model, scale, windows } : { model, scale, scaleY, windows };
}

/** The glance: `model` on the whole image at `scale` (vertically `scaleY`), padded to the model's multiple. */
export function glanceCall(
  model: LoadedModel,
  width: number,
  height: number,
  scale: number,
  scaleY = scale,
): WindowCall {
  const m = model.spec.input.multiple;
  return scaledCall(model, [{ x: 0, y: 0, w: width, h: height }], Math.round(m / scale), Math.round(m / scaleY));
}

/**
 * The resolutions a budget chooses from, largest first, as [qx, qy] (scale m/qx across, m/qy down): full height while
 * the width shrinks to `aspect` of it, then both at that ratio, ending at ¼ both ways, [4m, 4m]. qx and qy never
 * decrease along the path, so neither does the price (up to padding).
 *
 * @example
 * ```ts
 * import { glancePath } from "./glance.ts";
 * const path = glancePath(32, 0.6);
 * [path[0], path.at(-1)]; // [[33, 32], [128, 128]]
 * ```
 */
export function glancePath(m: number, aspect: number): [number, number][] {
  const last = 4 * m, path: [number, number][] = [];
  for (let qx = m + 1; qx < m / aspect; qx++) path.push([qx, m]);
  for (let qy = m + 1; qy <= last; qy++) path.push([Math.min(last, Math.max(qy + 1, Math.round(qy / aspect))), qy]);
  return path;
}

/** Where a glance runs: windows of the image (regions), the mask region each writes (cores), their real-pixel halo. */
export interface GlanceTarget {
  regions: Box[];
  cores: Box[];
  halo: number;
}

/** A glance priced and placed: its target, its call and its step on the path. */
export interface Glance extends GlanceTarget {
  step: number;
  scale: number;
  scaleY: number;
  call: WindowCall;
  flops: number;
}

/**
 * The largest glance over `target` that fits the executor's budget and one execution per window: the first step of
 * `path` that fits (a binary search: the price falls along the path, up to padding). Null when not even the last step
 * fits.
 */
export function largestGlance(
  model: LoadedModel,
  target: GlanceTarget,
  path: [number, number][],
  exec: Pick<PlanContext["exec"], "price" | "fits">,
  maxExecPixels: number,
): Glance | null {
  const m = model.spec.input.multiple;
  const at = (step: number): Glance | null => {
    const [qx, qy] = path[step];
    const call = scaledCall(model, target.regions, qx, qy);
    if (call.windows.some((w) => (w.w / qx) * m * (w.h / qy) * m > maxExecPixels)) return null;
    const flops = exec.price([call]).flops;
    return exec.fits(flops) ? { ...target, step, scale: m / qx, scaleY: m / qy, call, flops } : null;
  };
  let lo = 0, hi = path.length - 1, best = null;
  while (lo <= hi) {
    const i = (lo + hi) >> 1;
    const got = at(i);
    if (got) [best, hi] = [got, i - 1];
    else lo = i + 1;
  }
  return best;
}
