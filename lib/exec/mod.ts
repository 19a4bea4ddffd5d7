// The executor room: one module runs, prices and bounds every model execution of a request.

export {
  type Execution,
  Executor,
  type ExecutorOptions,
  type InferencePool,
  type LevelPooling,
  priceCalls,
  type TensorCall,
  type WindowCall,
  type WindowOutput,
} from "./executor.ts";
export { type BackendPreference, detectBackend } from "./backend.ts";
export { type PoolStats, type RunResult, WorkerPool, type WorkerPoolOptions } from "./pool.ts";
export { ARENA_LIMITS, type Backend, CRASH_MODEL, type PlanesModelInput } from "../../workers/protocol.ts";
