// Shape arithmetic shared by the op rules: broadcasting, window sizes, and
// evaluation of small tensors (the int64 vectors of shape subgraphs) so that a
// Reshape or Resize fed by Shape→Gather→Concat gets concrete numbers.

import { OnnxShapeError } from "./errors.ts";

/** Multidirectional (numpy) broadcast of several shapes. */
export function broadcastShapes(shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i];
      const o = out[off + i];
      if (d === o || d === 1) continue;
      if (o === 1) out[off + i] = d;
      else throw new OnnxShapeError(`shapes [${shapes.map((x) => x.join(",")).join("] [")}] do not broadcast`);
    }
  }
  return out;
}

/** Resolves a possibly negative axis against a rank, failing when out of range. */
export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) {
    throw new OnnxShapeError(`axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

/** Row-major strides of a shape. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** 0..n-1 */
export function range(n: number): number[] {
  const r = new Array<number>(n);
  for (let i = 0; i < n; i++) r[i] = i;
  return r;
}

/**
 * Picks elements of a row-major tensor by a list of source indices per axis;
 * the result has shape idx.map(l => l.length). Slice, Gather, Split and
 * broadcasting are all this one operation on small tensors.
 */
export function selectValues(shape: readonly number[], values: readonly number[], idx: readonly number[][]): number[] {
  const st = strides(shape);
  const out: number[] = [];
  const rank = shape.length;
  const walk = (axis: number, base: number): void => {
    if (axis === rank) {
      out.push(values[base]);
      return;
    }
    for (const i of idx[axis]) walk(axis + 1, base + i * st[axis]);
  };
  walk(0, 0);
  return out;
}

/** Values of `shape` broadcast to `outShape`. */
export function broadcastValues(
  shape: readonly number[],
  values: readonly number[],
  outShape: readonly number[],
): number[] {
  const padded = [...new Array(outShape.length - shape.length).fill(1), ...shape];
  return selectValues(padded, values, outShape.map((d, i) => (padded[i] === 1 ? new Array(d).fill(0) : range(d))));
}

/** Values of a tensor permuted by `perm` (Transpose). */
export function transposeValues(
  shape: readonly number[],
  values: readonly number[],
  perm: readonly number[],
): number[] {
  const st = strides(shape);
  const outShape = perm.map((p) => shape[p]);
  const out: number[] = [];
  const walk = (axis: number, base: number): void => {
    if (axis === perm.length) {
      out.push(values[base]);
      return;
    }
    for (let i = 0; i < outShape[axis]; i++) walk(axis + 1, base + i * st[perm[axis]]);
  };
  walk(0, 0);
  return out;
}

/** Shape of the window ops: how a padded, strided, dilated window tiles an axis. */
export interface WindowAxis {
  size: number;
  kernel: number;
  stride: number;
  dilation: number;
  padBegin: number;
  padEnd: number;
}

/**
 * Output length of Conv/pooling along one axis. SAME_* pads so that
 * out = ceil(in / stride); ceil_mode drops a last window that would start in
 * the end padding, as PyTorch and onnxruntime do.
 */
export function windowOutput(a: WindowAxis, autoPad: string, ceilMode: boolean): number {
  const effective = (a.kernel - 1) * a.dilation + 1;
  switch (autoPad) {
    case "SAME_UPPER":
    case "SAME_LOWER":
      return Math.ceil(a.size / a.stride);
    case "VALID":
      return Math.floor((a.size - effective) / a.stride) + 1;
    case "NOTSET":
    case "": {
      const span = a.size + a.padBegin + a.padEnd - effective;
      if (!ceilMode) return Math.floor(span / a.stride) + 1;
      let out = Math.ceil(span / a.stride) + 1;
      if ((out - 1) * a.stride >= a.size + a.padBegin) out--;
      return out;
    }
    default:
      throw new OnnxShapeError(`unknown auto_pad "${autoPad}"`);
  }
}
