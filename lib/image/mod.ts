// Image I/O for thriftseg: sniff and decode uploads (with size limits checked
// from headers first), turn pixels into model tensors, crop and resize
// tiles, and encode class masks as PNG or RLE.

export type { DecodeLimits, ImageFormat, ImageInfo, MaskRle, PadMode, RgbaImage } from "./types.ts";
export { sniffImage } from "./sniff.ts";
export { checkImageHeader, decodeImage, DEFAULT_MAX_PIXELS, MAX_JPEG_SCANS, SUPPORTED_MEDIA_TYPES } from "./decode.ts";
export type { HeaderInfo } from "./_headers.ts";
export {
  cropCHW,
  type ScoreSummary,
  summariseBatch,
  summariseScores,
  type SummaryKind,
  toCHW,
  toGrey,
} from "./tensor.ts";
export { resizeCHW, resizeMaskNearest, squeezeWidth, stretchRows } from "./resize.ts";
export { encodeMaskPng } from "./png.ts";
export { decodeMaskRle, encodeMaskRle } from "./rle.ts";
export { type InputFormat, pixelWords, type PlanesInput, planesTensor, type Window, windowsTensor } from "./window.ts";
export { sharpAvailable } from "./_sharp.ts";
