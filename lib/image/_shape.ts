// Argument checks shared by the tensor, resize and mask modules. Shape bugs
// in the planner would otherwise read past typed arrays as silent zeros.

/** Throw unless `value` is an integer >= `min`. */
export function checkInt(name: string, value: number, min = 0): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
}

/** Throw unless a buffer of `length` elements holds `c * h * w` of them. */
export function checkPlanar(
  length: number,
  c: number,
  h: number,
  w: number,
): void {
  checkInt("channels", c, 1);
  checkInt("height", h);
  checkInt("width", w);
  if (length !== c * h * w) {
    throw new RangeError(
      `buffer has ${length} elements, expected ${c}x${h}x${w} = ${c * h * w}`,
    );
  }
}
