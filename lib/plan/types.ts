// What planners share: the request modes, the tiles a plan reports, the planner options, and the contract between
// a planner and the Segmenter (a planner decides, the Executor in its context runs and prices).

import type { Executor, TensorCall, WindowCall } from "../exec/mod.ts";
import type { RgbaImage } from "../image/mod.ts";
import type { ModelRegistry, TaskSpec } from "../models.ts";

/** Request modes of DESIGN.md §4. */
export type Mode = "adaptive" | "glimpse" | "fixed";

/** One region of the output mask and how it was produced. */
export interface PlannedTile {
  /** Core region in image pixels; the mask is written here only. */
  x: number;
  y: number;
  w: number;
  h: number;
  /** Model that produced this region, or null when the region was skipped as flat background. */
  model: string | null;
  /** Resolution factor the window ran at (1 = full, 0.5 = half). */
  scale: number;
  /** Vertical resolution factor, when it differs from `scale` (a text glance shrinks lines less than their length). */
  scaleY?: number;
  /**
   * Real neighbour pixels around the core fed to the model and cropped off after (a text cover's window gets more on
   * the sides where text runs on into another window: lib/plan/ink_cover.ts `crossedHalo`).
   */
  halo: number;
  /** Score the selector ranked this tile by (complexity selectors). */
  score?: number;
}

/** One focus step of glimpse mode. */
export interface GlimpseStep {
  step: number;
  tile: { x: number; y: number; w: number; h: number } | null;
  model: string;
  /** Cumulative GFLOPs after this step. */
  gflops: number;
  /** Mean max-probability over the image after this step. */
  confidence: number;
}

/**
 * How much of the image ran at full resolution, and how much a budget left below it: what the glance (or the squeezed
 * cover) saw as text or unsure and no full-resolution window ran on.
 */
export interface Coverage {
  full_res_share: number;
  unresolved_share: number;
}

/** Knobs of the planners. */
export interface PlannerOptions {
  /** Largest tile core of the scale selector, px (cores are multiples of 2·multiple so half scale stays valid). */
  maxTile: number;
  /** Largest input one model execution may take, in pixels (N·H·W). */
  maxExecPixels: number;
  /** Grey std below which a tile is flat background and is not run at all. */
  flatStd: number;
  /** fineShare (see complexity.ts) at or above which a tile runs at full resolution. */
  fullDetail: number;
  /** Allow replacing an all-full-resolution tile plan by one cheaper whole-image call. */
  wholeImageShortcut: boolean;
  /**
   * Halo (px) cut around the tiles of a trained zoo's local models, at most the halo they were trained with
   * (manifest `tile.halo`). Measured in docs/EVAL.md's notes: 8 px costs f2 ~30% fewer FLOPs per tile than 16 px.
   */
  zooHalo: number;
}

/** Defaults for {@link PlannerOptions}. */
export const DEFAULT_PLANNER_OPTIONS: PlannerOptions = {
  maxTile: 320,
  maxExecPixels: 4_194_304,
  flatStd: 0.01,
  fullDetail: 0.66,
  wholeImageShortcut: true,
  zooHalo: 8,
};

/** Everything a planner may look at, and the executor it runs through. */
export interface PlanContext {
  registry: ModelRegistry;
  task: TaskSpec;
  image: RgbaImage;
  exec: Executor;
  options: PlannerOptions;
  /** Budget in integer FLOPs (also enforced by the executor). */
  budgetFlops?: number;
  /** glimpse: stop threshold on the image's mean max-probability. */
  confidence?: number;
  /** Absolute time (performance.now()) by which the answer is due. */
  deadlineAt?: number;
}

/** What a planner returns once it has run: the mask and how it was made (the cost is the executor's). */
export interface PlanOutcome {
  mode: Mode;
  mask: Uint8Array;
  tiles: PlannedTile[];
  /** FLOPs of the cheapest plan this planner could have made for this image. */
  minFlops: number;
  glimpses?: GlimpseStep[];
  stop?: string;
  coverage?: Coverage;
  /** Time spent writing model outputs into the mask, ms. */
  stitchMs: number;
}

/** What a planner knows before the image is decoded: its size (from the header), the task and the options. */
export interface PreflightContext {
  registry: ModelRegistry;
  task: TaskSpec;
  width: number;
  height: number;
  options: PlannerOptions;
}

/** A planner: decides which executions run, reads their results, returns the mask. */
export interface Planner {
  (ctx: PlanContext): Promise<PlanOutcome>;
  /**
   * The executions this planner makes on every image of this size, whatever its pixels (the glance, the routing
   * policy): the Segmenter size-checks them from the image header, so an image that could never be served is refused
   * before any memory or decode time is spent on it. The planner builds those same calls when it runs.
   */
  preflight?: (ctx: PreflightContext) => (WindowCall | TensorCall)[];
}
