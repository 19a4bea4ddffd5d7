// A page graph's price (lib/onnx/page.ts), counted from the graph itself.

import { CostCounter } from "./counter.ts";
import { pageGraph, pageNames, pageShapes, type PageSource, slotted, TAIL_DUMMY, tailValues } from "./page.ts";

type Price = { flops: number; macs: number };
type SlotPrice = { num: Price; den: number; fixed: Price };

/**
 * What a page graph computes, counted from its graph: a window's nodes (its copy of the model's, its tail's slots,
 * its share of the pools' sums) cost the same in a page graph of any number of windows, so a page graph's cost is
 * each window's plus its blank part's. Counted on two graphs: the page graph of no window (the blank part alone) and
 * the page graph of one without a blank part (its pools' sums start at zero: the same nodes as in any page graph).
 *
 * A window's tail slots are counted apart from the rest of it: each slot's nodes read only its own crop of the
 * window's maps, and the tail's convolutions keep their input's size, so a slot costs the same per pixel of its region
 * plus a fixed part (its nodes on the pooled vectors). A window is counted on the graph of one window with one slot,
 * the other slots at that price, read at construction from regions of several sizes and checked there against the
 * graph with all of the model's slots, which is counted instead where that check or a whole number fails. Counting
 * the all-slot graph (about 600 nodes for the text detector's 24 slots) at each new window's shapes, on every image a
 * server had not seen, made the planner's mean time on the main thread 19.7–23.7 ms instead of 11.5–11.6 (natively,
 * the fourth validation set's screenshots each once: `deno run -A bench/eval/plan_time.ts`); a new window's count
 * itself took 2.3–3.3 ms, 0.3–0.4 by slot (`.scratch/pricetime.ts`).
 */
export class PageCost {
  readonly #none: CostCounter;
  /** One window with all of the model's tail slots. */
  readonly #all: CostCounter;
  /** One window with one tail slot (where the model has a tail). */
  readonly #one?: CostCounter;
  /** A slot's price: num ÷ den per pixel of its region, plus `fixed` (flops, macs); null: counted on `#all`. */
  readonly #perPixel: SlotPrice | null = null;

  constructor(readonly g: PageSource) {
    this.#none = CostCounter.fromBytes(pageGraph(g, 0));
    this.#all = CostCounter.fromBytes(pageGraph(g, 1, [], false));
    if (!g.tail.halo) return;
    this.#one = CostCounter.fromBytes(pageGraph(g, 1, [], false, 1));
    this.#perPixel = this.#slotPrice();
  }

  /** Whether windows are counted on the one-slot graph (else on the all-slot graph: see the class). */
  get bySlot(): boolean {
    return this.#perPixel !== null;
  }

  /**
   * The blank part on `colours` pixels of a `channels`-channel input; none without colours (the page graph without a
   * blank part, for windows that leave no page position to blank page).
   */
  blank(colours: number, channels: number): Price {
    if (!colours) return { flops: 0, macs: 0 };
    const { flops, macs } = this.#none.count(pageShapes(this.g, [], colours, channels));
    return { flops, macs };
  }

  /**
   * One window's part, its model input of shape `dims` [1, C, H, W], its tail regions' sizes `tails` ([[H, W], ...];
   * default: the whole window).
   */
  window(dims: number[], tails: number[][] = [dims.slice(2)]): Price {
    return this.#perPixel ? this.#bySlot(dims, tails, this.#perPixel) : this.#counted(dims, tails);
  }

  /** The one-window graph with all slots at `dims`, its slots on regions of sizes `tails`. */
  #counted(dims: number[], tails: number[][]): Price {
    const { flops, macs } = this.#all.count(pageShapes(this.g, [dims], 0, dims[1]), tailValues(this.g, [tails]));
    return { flops, macs };
  }

  /**
   * The same from the one-slot graph at `dims` (its slot on the dummy square) and the other slots' price: each one's
   * fixed part, and per pixel every slot but that one on its region's pixels (or the dummy square's). Counted on all
   * slots where that is not a whole number.
   */
  #bySlot(dims: number[], tails: number[][], per: SlotPrice): Price {
    const dummy: number[] = [TAIL_DUMMY, TAIL_DUMMY], base = this.#oneSlot(dims, dummy);
    // Every slot's region (`slotted` refuses more regions than slots), less the one the base counted.
    const area = slotted(this.g, tails, dummy).reduce((s, [h, w]) => s + h * w, 0) - TAIL_DUMMY * TAIL_DUMMY;
    const others = this.g.tail.slots - 1;
    const flops = (per.num.flops * area) / per.den + others * per.fixed.flops;
    const macs = (per.num.macs * area) / per.den + others * per.fixed.macs;
    if (!Number.isSafeInteger(flops) || !Number.isSafeInteger(macs)) return this.#counted(dims, tails);
    return { flops: base.flops + flops, macs: base.macs + macs };
  }

  /** The one-slot window graph at `dims`, its slot on a region of `size` [H, W] px. */
  #oneSlot(dims: number[], size: number[]): Price {
    const { flops, macs } = this.#one!.count(
      pageShapes(this.g, [dims], 0, dims[1], 1),
      tailValues(this.g, [[size]], 1),
    );
    return { flops, macs };
  }

  /**
   * A slot's price: per pixel of its region, read from the one-slot graph on regions of several sizes in one window;
   * its fixed part (what runs on the pooled vectors, 636 FLOPs for the text detector), from the all-slot graph with
   * every slot on the dummy square. Null where that does not give the all-slot graph's price exactly, with regions of
   * several sizes too.
   */
  #slotPrice(): SlotPrice | null {
    const declared = this.#one!.inputs.find((i) => i.name === pageNames.input(this.g, 0))?.dims[1];
    const dims = [1, typeof declared === "number" && declared > 0 ? declared : 3, 256, 256];
    const sizes = [[TAIL_DUMMY, TAIL_DUMMY], [64, 64], [32, 128], [256, 96], [256, 256], [8, 248]];
    const [first, ...rest] = sizes.map((s) => ({ area: s[0] * s[1], ...this.#oneSlot(dims, s) }));
    const den = rest[0].area - first.area;
    const num = { flops: rest[0].flops - first.flops, macs: rest[0].macs - first.macs };
    const linear = rest.every((r) =>
      (r.flops - first.flops) * den === num.flops * (r.area - first.area) &&
      (r.macs - first.macs) * den === num.macs * (r.area - first.area)
    );
    const others = this.g.tail.slots - 1, dummyPart = (v: number) => (v * first.area) / den;
    const all = this.#counted(dims, []);
    const fixed = {
      flops: (all.flops - first.flops - others * dummyPart(num.flops)) / others,
      macs: (all.macs - first.macs - others * dummyPart(num.macs)) / others,
    };
    if (!linear || !others || !Number.isSafeInteger(fixed.flops) || !Number.isSafeInteger(fixed.macs)) return null;
    const per = { num, den, fixed };
    const checks = [[], sizes.slice(1), [...sizes, ...sizes, ...sizes].slice(0, this.g.tail.slots)];
    const same = (a: Price, b: Price) => a.flops === b.flops && a.macs === b.macs;
    return checks.every((t) => same(this.#bySlot(dims, t, per), this.#counted(dims, t))) ? per : null;
  }
}
