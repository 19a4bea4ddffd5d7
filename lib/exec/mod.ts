// The executor room: one module runs, prices and bounds every model execution of a request.

export {
  type Execution,
  Executor,
  type ExecutorOptions,
  type InferencePool,
  type TensorCall,
  type WindowCall,
  type WindowOutput,
} from "./executor.ts";
