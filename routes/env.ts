// The per-request variables every route shares. Middlewares that add more (the caller, the loaded services, the
// upload) declare them in their own env types, so only the handlers behind them see them.

import type { RequestIdVariables } from "hono/request-id";
import type { TimingVariables } from "hono/timing";
import type { SegmentResult } from "../lib/segment.ts";

/** Variables of every request. */
export type AppEnv = {
  Variables: RequestIdVariables & TimingVariables & {
    /** Labels and figures of the segment metrics, set by the segment route. */
    task?: string;
    mode?: string;
    timings?: SegmentResult["timings"];
    /** GFLOPs the model executions of this request ran, billed or not. */
    computedGflops?: number;
    billedGflops?: number;
  };
};
