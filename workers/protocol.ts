// Messages between the WorkerPool (main thread) and an inference worker.

/** Which onnxruntime-web execution provider a worker runs on. */
export type Backend = "webgpu" | "wasm-simd";

/** main → worker: create sessions for these models. */
export interface InitMessage {
  type: "init";
  backend: Backend;
  wasmThreads: number;
  models: { id: string; bytes: Uint8Array }[];
}

/** main → worker: run one model on one (batched) float32 input. */
export interface RunMessage {
  type: "run";
  job: number;
  model: string;
  dims: number[];
  data: Float32Array;
}

/** Any message the main thread sends. */
export type ToWorker = InitMessage | RunMessage;

/** Model id that makes a worker throw while holding a job (only with THRIFTSEG_TEST_HOOKS=1). */
export const CRASH_MODEL = "__crash__";

/** worker → main: sessions are ready. */
export interface ReadyMessage {
  type: "ready";
  backend: Backend;
}

/** worker → main: a job finished. */
export interface ResultMessage {
  type: "result";
  job: number;
  dims: number[];
  data: Float32Array;
  ms: number;
}

/** worker → main: a job or the init failed. */
export interface FailMessage {
  type: "fail";
  job: number | null;
  message: string;
}

/** Any message a worker sends. */
export type FromWorker = ReadyMessage | ResultMessage | FailMessage;
