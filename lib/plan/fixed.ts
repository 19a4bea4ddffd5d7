// `fixed` mode: one model on the whole image, zero-padded at the bottom/right to its input multiple (the static
// baseline every adaptive plan is measured against).

import { BudgetTooSmallError, ExecutionTooLargeError } from "../errors.ts";
import type { WindowCall } from "../exec/mod.ts";
import type { LoadedModel } from "../models.ts";
import { MaskCanvas } from "./canvas.ts";
import { roundUp } from "./geometry.ts";
import type { PlanContext, Planner } from "./types.ts";

/**
 * The whole-image call of `model` on a width×height image, checked against the execution-size limit.
 *
 * @example
 * ```ts ignore
 * wholeImageCall(text, 500, 300, 1 << 22); // { model: text, windows: [{ x: 0, y: 0, w: 512, h: 320 }] }
 * ```
 */
export function wholeImageCall(model: LoadedModel, width: number, height: number, maxExecPixels: number) {
  const call = paddedWholeCall(model, width, height);
  const [window] = call.windows;
  if (window.w * window.h > maxExecPixels) {
    throw new ExecutionTooLargeError(
      `fixed mode runs ${model.spec.id} on the whole ${width}×${height} image in one call, over this server's ` +
        `${maxExecPixels}-pixel limit per execution; use X-Mode: adaptive (tiled)`,
      maxExecPixels,
    );
  }
  return call;
}

/** `model` on a whole width×height image, zero-padded at the bottom/right to its input multiple (not size-checked). */
export function paddedWholeCall(model: LoadedModel, width: number, height: number): WindowCall {
  const m = model.spec.input.multiple;
  return { model, windows: [{ x: 0, y: 0, w: roundUp(width, m), h: roundUp(height, m) }] };
}

/** Runs `model` once on the whole image and stitches its output into a fresh mask. */
export async function runWholeImage(ctx: PlanContext, model: LoadedModel) {
  const { width, height } = ctx.image;
  const call = wholeImageCall(model, width, height, ctx.options.maxExecPixels);
  const cost = ctx.exec.price([call]).flops;
  if (!ctx.exec.fits(cost)) throw new BudgetTooSmallError(cost, ctx.exec.budget);
  const [[out]] = await ctx.exec.run([call]);
  const canvas = new MaskCanvas(width, height, model.spec.output.threshold ?? 0.5);
  canvas.write(out, { x: 0, y: 0, w: width, h: height });
  return {
    mask: canvas.mask,
    tiles: [{ x: 0, y: 0, w: width, h: height, model: model.spec.id, scale: 1, halo: 0 }],
    flops: cost,
    stitchMs: canvas.writeMs,
  };
}

/**
 * The fixed planner: `model` on the whole image. 422 when the budget is below its cost or the image is over the
 * execution-size limit.
 *
 * @example
 * ```ts ignore
 * const outcome = await fixedPlanner(registry.model("text-ppocrv4-det"))(ctx);
 * ```
 */
export function fixedPlanner(model: LoadedModel): Planner {
  const plan: Planner = async (ctx) => {
    const r = await runWholeImage(ctx, model);
    return { mode: "fixed", mask: r.mask, tiles: r.tiles, minFlops: r.flops, stitchMs: r.stitchMs };
  };
  plan.preflight = ({ width, height, options }) => [wholeImageCall(model, width, height, options.maxExecPixels)];
  return plan;
}
