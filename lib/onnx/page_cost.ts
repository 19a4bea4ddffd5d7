// A page graph's price (lib/onnx/page.ts), counted from the graph itself.

import { CostCounter } from "./counter.ts";
import { pageGraph, pageShapes, type PageSource, tailValues } from "./page.ts";

/**
 * What a page graph computes, counted from its graph: a window's nodes (its copy of the model's, its tail's slots,
 * its share of the pools' sums) cost the same in a page graph of any number of windows, so a page graph's cost is
 * each window's plus its blank part's. Counted as differences of two graphs: the page graph of no window (the blank
 * part alone) and of one.
 */
export class PageCost {
  readonly #none: CostCounter;
  readonly #one: CostCounter;

  constructor(readonly g: PageSource) {
    this.#none = CostCounter.fromBytes(pageGraph(g, 0));
    this.#one = CostCounter.fromBytes(pageGraph(g, 1));
  }

  /**
   * The blank part on `colours` pixels of a `channels`-channel input; none without colours (the page graph without a
   * blank part, for windows that leave no page position to blank page).
   */
  blank(colours: number, channels: number): { flops: number; macs: number } {
    if (!colours) return { flops: 0, macs: 0 };
    const { flops, macs } = this.#none.count(pageShapes(this.g, [], colours, channels));
    return { flops, macs };
  }

  /**
   * One window's part, its model input of shape `dims` [1, C, H, W], its tail regions' sizes `tails` ([[H, W], ...];
   * default: the whole window).
   */
  window(dims: number[], tails: number[][] = [dims.slice(2)]): { flops: number; macs: number } {
    const one = this.#one.count(pageShapes(this.g, [dims], 1, dims[1]), tailValues(this.g, [tails]));
    const none = this.blank(1, dims[1]);
    return { flops: one.flops - none.flops, macs: one.macs - none.macs };
  }
}
