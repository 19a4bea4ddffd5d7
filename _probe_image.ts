import { decodeImage } from "./lib/image/mod.ts";
import { tiff, gradient, encodeGif, encodePng, encodeJpeg } from "./tests/fixtures/image/build.ts";
const w = 5, h = 3;
const rgba = gradient(w, h);
const grey = Uint8Array.from({ length: w * h }, (_, i) => i * 10);
const rgb = new Uint8Array(w * h * 3); for (let i = 0; i < w * h; i++) rgb.set(rgba.subarray(i * 4, i * 4 + 3), i * 3);
for (const [name, t] of [
  ["grey", tiff({ width: w, height: h, channels: 1, pixels: grey })],
  ["rgb", tiff({ width: w, height: h, channels: 3, pixels: rgb })],
  ["rgba", tiff({ width: w, height: h, channels: 4, pixels: rgba })],
  ["rgb-be", tiff({ width: w, height: h, channels: 3, pixels: rgb, bigEndian: true })],
  ["grey-long", tiff({ width: w, height: h, channels: 1, pixels: grey, longDims: true })],
  ["python", await Deno.readFile("/root/.pyenv/versions/3.7.16/lib/python3.7/test/imghdrdata/python.tiff")],
] as const) {
  try { const img = await decodeImage(t); console.log(name, img.width, img.height, Array.from(img.data.slice(0, 12))); } catch (e) { console.log(name, "ERR", e.status, e.message); }
}
const g = await encodeGif(gradient(64,64), 64, 64); 
for (const cut of [g.length, g.length - 1, g.length - 5, Math.floor(g.length/2), 30]) { try { const r = await decodeImage(g.slice(0, cut)); console.log("gif cut", cut, "OK", r.width); } catch (e) { console.log("gif cut", cut, e.status, e.message); } }
const p = await encodePng(gradient(64,64), 64, 64);
for (const cut of [33, 40, Math.floor(p.length/2), p.length - 20, p.length - 12]) { try { await decodeImage(p.slice(0, cut)); console.log("png cut", cut, "OK?!"); } catch (e) { console.log("png cut", cut, e.status, e.message); } }
for (const f of ["python.png", "python.jpg", "python.gif", "python.webp", "python.bmp"]) {
  const b = await Deno.readFile("/root/.pyenv/versions/3.7.16/lib/python3.7/test/imghdrdata/" + f);
  try { const img = await decodeImage(b); console.log(f, img.width, img.height, Array.from(img.data.slice(0, 8))); } catch (e) { console.log(f, "ERR", e.status, e.message); }
}
