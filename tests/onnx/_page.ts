// A level-by-level job for the page-graph tests (lib/onnx/page.ts, workers/levels.ts).

import type { Window } from "../../lib/image/mod.ts";
import type { LevelsInput } from "../../workers/protocol.ts";

export type PageJob = Pick<
  LevelsInput,
  "windows" | "counted" | "tails" | "page" | "size" | "cell" | "cellColour" | "colours"
>;

/**
 * A job of windows over a `w`×`h` image and page (multiples of 32) of one blank colour; each window counts itself
 * first and runs its tail on all of itself (one region) unless `regions` says otherwise.
 */
export function uniformJob(
  windows: Window[],
  w: number,
  h: number,
  colour: number[],
  regions: Partial<Pick<LevelsInput, "counted" | "tails">> = {},
): PageJob {
  return {
    windows,
    counted: regions.counted ?? windows,
    tails: regions.tails ?? windows.map((w) => [w]),
    page: { w, h },
    size: { w, h },
    cell: 32,
    cellColour: new Uint8Array((w / 32) * (h / 32)),
    colours: Uint8Array.from(colour),
  };
}
