// The planners: each decides which model executions a request makes and reads their results; the Executor
// (lib/exec) runs and prices them. `plannerFor` picks the planner of a (task, mode).
//
//   fixed     one model on the whole image                                  fixed.ts
//   adaptive  zoo tasks: f0 → PaSeR policy → f1/f2 per tile                 paser.ts
//             other models: glance → focus (full resolution on few haloed  focus.ts, cover.ts, glance.ts
//             windows over the ink; glance + focus under a budget)
//   baseline  the edge-energy scale selector over haloed tiles             scale.ts
//   glimpse   zoo tasks: f0 → focus steps on the least-confident tiles      glimpse.ts
//   cascade   evaluation baseline: f0, then f2 on the whole image if unsure cascade.ts

export { cascadePlanner } from "./cascade.ts";
export { MaskCanvas } from "./canvas.ts";
export { regionComplexity, tileEdgeEnergy } from "./complexity.ts";
export { type CellGrid, type CellRect, coverCells } from "./cover.ts";
export { inkCells } from "./ink_cells.ts";
export { fixedPlanner, runWholeImage, wholeImageCall } from "./fixed.ts";
export { DEFAULT_FOCUS_OPTIONS, type FocusOptions, focusPlanner } from "./focus.ts";
export { glanceCall, glancePath, glanceScale } from "./glance.ts";
export { type Box, mergeTiles, type Rect, roundUp, splitAxis, tileGrid } from "./geometry.ts";
export { DEFAULT_CONFIDENCE, glimpsePlanner } from "./glimpse.ts";
export { planUnderBudget } from "./budget.ts";
export { DEFAULT_COMPLEXITY_SHARE, type PaserOptions, paserPlanner } from "./paser.ts";
export { ProbMap } from "./probmap.ts";
export { scalePlanner, scaleTiles } from "./scale.ts";
export {
  type Coverage,
  DEFAULT_PLANNER_OPTIONS,
  type GlimpseStep,
  type Mode,
  type PlanContext,
  type PlannedTile,
  type Planner,
  type PlannerOptions,
  type PlanOutcome,
  type PreflightContext,
} from "./types.ts";
export { haloOf, SERVING_CHOICES, type ServingChoice, type Zoo, zooOf, ZooRun } from "./zoo.ts";
