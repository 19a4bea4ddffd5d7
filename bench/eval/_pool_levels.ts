// Windows that pool like the whole image, for bench/eval/squeeze.ts: what a windowed plan of the text detector could
// reach if every squeeze-excitation block pooled over the whole page while only the windows run. The pooled vectors
// are computed level by level (bench/eval/squeeze_graphs.py `levels.json`: a level's vectors depend only on earlier
// levels'): every window runs up to the level's feature maps, each page position is counted once (a window's core
// first, then its halo), and the page area no window covers is counted at the value the feature maps take far inside
// a page of its background colour, under the same pooled vectors — computed exactly, and for next to nothing, by
// squeeze_graphs.py's blank.onnx on a 1×1 input (its convolutions' kernels summed over space). Each level reruns the
// whole graph here (a diagnosis, not a plan: a served version would run each window's graph segment once per level,
// the windows' FLOPs once in all).

import * as ort from "onnxruntime-node";
import type { InputFormat, RgbaImage } from "../../lib/image/mod.ts";
import { windowsTensor } from "../../lib/image/mod.ts";
import type { FocusWindow } from "../../lib/plan/focus.ts";

/** `fedtap.onnx`, `blank.onnx` and `levels.json` of bench/eval/squeeze_graphs.py, loaded. */
export interface LevelGraph {
  session: ort.InferenceSession;
  blank: ort.InferenceSession;
  pools: { name: string; channels: number; level: number }[];
}

/** Loads the graph and its pooled vectors' levels from squeeze_graphs.py's output directory. */
export async function loadLevelGraph(dir: string, opts: ort.InferenceSession.SessionOptions): Promise<LevelGraph> {
  return {
    session: await ort.InferenceSession.create(`${dir}/fedtap.onnx`, opts),
    blank: await ort.InferenceSession.create(`${dir}/blank.onnx`, opts),
    pools: JSON.parse(await Deno.readTextFile(`${dir}/levels.json`)),
  };
}

import type { Box } from "../../lib/plan/geometry.ts";

/**
 * The mask the windows write (each its core), run with pooled vectors computed level by level from the windows and
 * the value of blank page area of `colour`. `cell`: the px size of the windows' cell rectangles.
 */
export async function levelPooledMask(
  g: LevelGraph,
  img: RgbaImage,
  fmt: InputFormat,
  windows: FocusWindow[],
  padded: { w: number; h: number },
  cell: number,
  colour: number[],
  threshold: number,
): Promise<Uint8Array> {
  const { session } = g;
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of g.pools) {
    feeds[p.name] = new ort.Tensor("float32", new Float32Array(p.channels), [1, p.channels, 1, 1]);
  }
  const pixel = { width: 1, height: 1, data: new Uint8Array([colour[0], colour[1], colour[2], 255]) };
  const run = (image: RgbaImage, win: Box, s = session) =>
    s.run({
      [session.inputNames[0]]: new ort.Tensor("float32", windowsTensor(image, fmt, [win], win.h, win.w), [
        1,
        3,
        win.h,
        win.w,
      ]),
      ...feeds,
    });
  const wins = windows.map((f) => f.window);
  // Cores as whole cells (the padded page's grid), so that cores and halos together count each position once.
  const cores = windows.map(({ rect: r }) => ({
    x: r.col * cell,
    y: r.row * cell,
    w: r.cols * cell,
    h: r.rows * cell,
  }));
  const levels = Math.max(...g.pools.map((p) => p.level));
  for (let level = 0; level <= levels; level++) {
    const outs: ort.InferenceSession.OnnxValueMapType[] = [];
    for (const win of wins) outs.push(await run(img, win));
    const blankOut = await run(pixel, { x: 0, y: 0, w: 1, h: 1 }, g.blank);
    g.pools.forEach((p, i) => {
      if (p.level !== level) return;
      const map = (o: ort.InferenceSession.OnnxValueMapType) => o[session.outputNames[1 + i]] as ort.Tensor;
      const stride = wins[0].h / map(outs[0]).dims[2];
      const gw = padded.w / stride, gh = padded.h / stride, C = p.channels;
      const seen = new Uint8Array(gw * gh), sum = new Float64Array(C);
      let count = 0;
      // Every page position once: the windows' cores first, then their halos.
      for (const boxes of [cores, wins]) {
        outs.forEach((o, k) => {
          const t = map(o), [, , h, w] = t.dims, d = t.data as Float32Array;
          const win = wins[k], r = boxes[k];
          const x0 = (r.x - win.x) / stride, y0 = (r.y - win.y) / stride;
          for (let y = Math.max(0, y0); y < Math.min(h, y0 + r.h / stride); y++) {
            for (let x = Math.max(0, x0); x < Math.min(w, x0 + r.w / stride); x++) {
              const at = (y + win.y / stride) * gw + x + win.x / stride;
              if (seen[at]) continue;
              seen[at] = 1;
              count++;
              for (let c = 0; c < C; c++) sum[c] += d[c * h * w + y * w + x];
            }
          }
        });
      }
      // The blank maps are constant (1×1, or larger where an upsampling follows): their first value per channel.
      const t = blankOut[g.blank.outputNames[i]] as ort.Tensor,
        plane = t.dims[2] * t.dims[3],
        d = t.data as Float32Array;
      const v = new Float32Array(C);
      for (let c = 0; c < C; c++) v[c] = (sum[c] + (gw * gh - count) * d[c * plane]) / (gw * gh);
      feeds[p.name] = new ort.Tensor("float32", v, [1, C, 1, 1]);
    });
  }
  const mask = new Uint8Array(img.width * img.height);
  for (const f of windows) {
    writeCore(mask, img.width, (await run(img, f.window))[session.outputNames[0]].data as Float32Array, f, threshold);
  }
  return mask;
}

/** Thresholds a window's output map over its core into a page-sized mask. */
export function writeCore(
  mask: Uint8Array,
  width: number,
  map: Float32Array,
  f: { window: Box; core: Box },
  threshold: number,
) {
  const { core, window: win } = f;
  for (let y = core.y; y < core.y + core.h; y++) {
    for (let x = core.x; x < core.x + core.w; x++) {
      mask[y * width + x] = map[(y - win.y) * win.w + (x - win.x)] > threshold ? 1 : 0;
    }
  }
}
