// The segment use case: one parsed request and the caller's credit in, a billed result out. Credit ↔ budget ↔ 402
// live here and nowhere else. Credit is a ceiling, never a spending target: a keyed caller gets exactly the plan an
// anonymous caller gets for the same headers; only when the credit is short of that plan does the credit cap the
// budget, and when even the cheapest plan does not fit, the answer is 402. Nothing is returned until it is billed.

import { BudgetTooSmallError, PaymentRequiredError } from "./errors.ts";
import type { MeterStore, StoredResponse } from "./metering/mod.ts";
import type { SegmentRequest, SegmentResult } from "./segment.ts";
import { ceilGflops, toGflops } from "./units.ts";

/** A segmentation request as the HTTP edge parsed it. Budgets are integer FLOPs. */
export interface SegmentCall {
  task: string;
  mode: "adaptive" | "glimpse" | "fixed";
  model?: string;
  /** The caller's own cap (X-Budget-GFLOPs), integer FLOPs. */
  budgetFlops?: number;
  deadlineMs?: number;
  confidence?: number;
  bytes: Uint8Array;
  contentType?: string;
}

/** Who pays: the metering subject and its remaining credit in FLOPs (null = unlimited). */
export interface Account {
  subject: string;
  creditFlops: bigint | null;
}

/** What the use case needs: something that segments, and the store that bills. */
export interface SegmentServices {
  segmenter: { segment(req: SegmentRequest): Promise<SegmentResult> };
  meter: Pick<MeterStore, "commit">;
}

/** Per-request options of {@link serveSegment}. */
export interface ServeOptions {
  requestId: string;
  /** Idempotency-Key and request fingerprint: the rendered response is stored with the debit, atomically. */
  idempotency?: { key: string; fingerprint: string };
  /** Shapes the response; runs before billing, so the stored replay is byte for byte what the client gets. */
  render(result: SegmentResult, budgetFlops: number | undefined): StoredResponse;
  /** Told about every segmentation that ran, billed or not (metrics count compute that was never billed too). */
  ran?(result: SegmentResult): void;
}

/** A billed segmentation. */
export interface Served {
  result: SegmentResult;
  response: StoredResponse;
  /** The budget the plan ran under: the caller's, or the credit where the credit capped it. */
  budgetFlops: number | undefined;
  /** Credit left after the debit, FLOPs (null = unlimited). */
  remainingFlops: bigint | null;
  /** Time the debit took (the metering store's transaction), ms. */
  billMs: number;
}

/**
 * Runs one request within the caller's budget and credit, renders it, and bills it.
 *
 * @example
 * ```ts
 * import { serveSegment } from "./serve_segment.ts";
 * import { MeterStore } from "./metering/mod.ts";
 * import type { Segmenter } from "./segment.ts";
 * declare const segmenter: Segmenter;
 * const meter = await MeterStore.open({ path: "./data/meter.kv" });
 * const bytes = await Deno.readFile("docs/examples/text-0.png");
 * const served = await serveSegment(
 *   { segmenter, meter },
 *   { task: "text", mode: "adaptive", bytes },
 *   { subject: "anonymous", creditFlops: null },
 *   { requestId: "req_1", render: (r) => ({ status: 200, headers: {}, body: r.mask }) },
 * );
 * console.log(served.result.cost.flops, served.remainingFlops);
 * ```
 */
export async function serveSegment(
  services: SegmentServices,
  call: SegmentCall,
  account: Account,
  options: ServeOptions,
): Promise<Served> {
  const { result, budgetFlops } = await runWithinCredit(services.segmenter, call, account.creditFlops, options.ran);
  const response = options.render(result, budgetFlops);
  const billing = performance.now();
  const billed = await services.meter.commit({
    requestId: options.requestId,
    keyId: account.subject,
    task: call.task,
    mode: result.plan.mode,
    flops: result.cost.flops,
    macs: result.cost.macs,
    status: response.status,
    idempotency: options.idempotency && { ...options.idempotency, response },
  });
  return { result, response, budgetFlops, remainingFlops: billed.remaining, billMs: performance.now() - billing };
}

/**
 * The plan an anonymous caller gets, unless the credit is short of it: then the credit caps the plan (the Segmenter
 * takes it as a ceiling, never as a budget to spend), and 402 when not even the cheapest plan fits in it.
 */
async function runWithinCredit(
  segmenter: SegmentServices["segmenter"],
  call: SegmentCall,
  creditFlops: bigint | null,
  ran: ServeOptions["ran"],
): Promise<{ result: SegmentResult; budgetFlops: number | undefined }> {
  const credit = creditFlops === null ? undefined : Number(creditFlops);
  if (credit !== undefined && credit <= 0) {
    throw new PaymentRequiredError("credit exhausted: top up this key to continue", toGflops(credit));
  }
  try {
    const result = await segmenter.segment({ ...segmentRequest(call), creditFlops: credit });
    ran?.(result);
    return { result, budgetFlops: result.creditBound ? credit : call.budgetFlops };
  } catch (err) {
    // The cheapest plan fits the caller's own budget but not the credit: pay to continue (402), not a bad header.
    if (
      err instanceof BudgetTooSmallError && credit !== undefined && err.minFlops > credit &&
      err.minFlops <= (call.budgetFlops ?? Infinity)
    ) {
      throw creditShort(credit, err.minFlops);
    }
    throw err;
  }
}

function creditShort(credit: number, minFlops: number): PaymentRequiredError {
  const min = ceilGflops(minFlops);
  return new PaymentRequiredError(
    `credit of ${toGflops(credit)} GFLOPs does not cover the cheapest plan for this image (${min} GFLOPs)`,
    toGflops(credit),
    { min_gflops: min },
  );
}

/** The Segmenter's request for a call. */
function segmentRequest(call: SegmentCall): SegmentRequest {
  return {
    task: call.task,
    mode: call.mode,
    model: call.model,
    budgetFlops: call.budgetFlops,
    deadlineMs: call.deadlineMs,
    confidence: call.confidence,
    bytes: call.bytes,
    contentType: call.contentType,
  };
}
