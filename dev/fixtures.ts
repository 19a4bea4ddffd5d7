// Development fixtures shared by tests/ and bench/: real images with real text in them, drawn with imagescript and
// the DejaVu font from npm. Not used by the server.

import { Image } from "imagescript";

const FONT_URL = new URL("../node_modules/dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf", import.meta.url);
let font: Uint8Array | null = null;

// imagescript's font renderer reaches for Deno.core.encode/decode, which
// Deno 2 no longer exposes; give it the standard codecs.
// deno-lint-ignore no-explicit-any
const denoNs = Deno as any;
if (!denoNs.core) {
  const enc = new TextEncoder(), dec = new TextDecoder();
  denoNs.core = { encode: (s: string) => enc.encode(s), decode: (b: Uint8Array) => dec.decode(b) };
}

/** A line of text to draw. */
export interface TextLine {
  text: string;
  x: number;
  y: number;
  /** Font scale in px. */
  size: number;
}

/** Draws dark text on a light background; returns the image and the text boxes. */
export async function textImage(
  width: number,
  height: number,
  lines: TextLine[],
  background = 0xf4f1eaff,
): Promise<{ image: Image; boxes: { x: number; y: number; w: number; h: number }[] }> {
  font ??= await Deno.readFile(FONT_URL);
  const image = new Image(width, height).fill(background);
  const boxes = [];
  for (const line of lines) {
    const glyphs = await Image.renderText(font, line.size, line.text, 0x202020ff);
    image.composite(glyphs, line.x, line.y);
    boxes.push({ x: line.x, y: line.y, w: glyphs.width, h: glyphs.height });
  }
  return { image, boxes };
}

/** The standard page used by the end-to-end tests: three lines at three sizes. */
export async function samplePage(width = 640, height = 640) {
  return await textImage(width, height, [
    { text: "THRIFTSEG 2026", x: 40, y: 60, size: 48 },
    { text: "spend compute where it matters", x: 40, y: 200, size: 28 },
    { text: "the quick brown fox jumps over", x: 40, y: 330, size: 20 },
  ]);
}
