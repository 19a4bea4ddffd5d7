// The evaluation of the `text` task: adaptive execution of the pretrained detector against its own full-resolution
// mask, on rendered pages.

import { textImage } from "../../dev/fixtures.ts";
import { toGflops } from "../../lib/units.ts";
import { segmenter } from "./_common.ts";

const f = (v: number, d = 4) => v.toFixed(d);

export interface TextRow {
  size: number;
  name: string;
  iou: number;
  gflops: number;
  fullGflops: number;
}

const WORDS = ["thrift", "segment", "compute", "budget", "tile", "halo", "policy", "glimpse", "mask", "cost", "deno"];

export async function evalText(): Promise<TextRow[]> {
  const rows: TextRow[] = [];
  for (const size of [14, 20, 32, 48]) {
    let inter = 0, union = 0, inter2 = 0, union2 = 0, g = 0, g2 = 0, full = 0;
    const pages = 6;
    for (let p = 0; p < pages; p++) {
      const lines = [];
      let y = 30 + p * 7;
      for (let l = 0; y + size < 600; l++, y += Math.round(size * (2.2 + (l % 3)))) {
        const words = Array.from({ length: 2 + ((l + p) % 4) }, (_, k) => WORDS[(l * 3 + k * 5 + p) % WORDS.length]);
        lines.push({ text: words.join(" "), x: 20 + ((l * 37 + p * 11) % 120), y, size });
      }
      const { image } = await textImage(640, 640, lines);
      const bytes = new Uint8Array(await image.encode());
      const ref = await segmenter.segment({ task: "text", mode: "fixed", bytes });
      const ad = await segmenter.segment({ task: "text", mode: "adaptive", bytes });
      const half = await segmenter.segment({
        task: "text",
        mode: "adaptive",
        bytes,
        budgetFlops: Math.floor(ref.cost.flops * 0.5),
      })
        .catch(() => null);
      full += toGflops(ref.cost.flops);
      g += toGflops(ad.cost.flops);
      for (let i = 0; i < ref.mask.length; i++) {
        const a = ref.mask[i] === 1, b = ad.mask[i] === 1;
        if (a && b) inter++;
        if (a || b) union++;
      }
      if (half) {
        g2 += toGflops(half.cost.flops);
        for (let i = 0; i < ref.mask.length; i++) {
          const a = ref.mask[i] === 1, b = half.mask[i] === 1;
          if (a && b) inter2++;
          if (a || b) union2++;
        }
      }
    }
    rows.push({ size, name: "adaptive", iou: inter / union, gflops: g / pages, fullGflops: full / pages });
    rows.push({
      size,
      name: "adaptive, budget 50% of full",
      iou: inter2 / union2,
      gflops: g2 / pages,
      fullGflops: full / pages,
    });
    console.log(
      `[text] ${size}px: adaptive IoU ${(inter / union).toFixed(4)} at ${(g / pages).toFixed(3)} vs ${
        (full / pages).toFixed(3)
      } GFLOPs`,
    );
  }
  return rows;
}

/** The report's `text` section. */
export function textSection(textRows: TextRow[]): string[] {
  return [
    "## `text`",
    "",
    "Adaptive (complexity selector over scales: flat tiles skipped, low-detail tiles at half resolution) against the " +
    "full-resolution mask of the same image (`fixed`), on 640×640 pages of rendered text at each font size (6 pages " +
    "per size). IoU is of the text class, adaptive vs full resolution.",
    "",
    "| font px | plan | IoU vs full resolution | mean GFLOPs | full-resolution GFLOPs | % of full |",
    "|---:|---|---:|---:|---:|---:|",
    ...textRows.map((r) =>
      `| ${r.size} | ${r.name} | ${f(r.iou)} | ${f(r.gflops, 3)} | ${f(r.fullGflops, 3)} | ` +
      `${(100 * r.gflops / r.fullGflops).toFixed(1)}% |`
    ),
    "",
  ];
}
