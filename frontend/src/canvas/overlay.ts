/** Rasterize one mask crop into RGBA pixels at a given scale: translucent fill, opaque outline. */
import { decodeCrop, runsGeometry, type Box } from "./rle";

export interface OverlayPixels {
  box: Box; // in image pixels
  width: number; // of the pixel buffer
  height: number;
  rgba: Uint8ClampedArray;
  area: number;
}

export function hexToRgb(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || "");
  const n = m ? parseInt(m[1], 16) : 0x3b82f6;
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export function rasterizeOverlay(
  runs: ArrayLike<number>, h: number, color: [number, number, number], scale: number, fillAlpha = 110,
): OverlayPixels | null {
  const { bbox, area } = runsGeometry(runs, h);
  if (!bbox) return null;
  const crop = decodeCrop(runs, h, bbox);
  const s = Math.min(1, scale);
  const ow = Math.max(1, Math.round(bbox.w * s)), oh = Math.max(1, Math.round(bbox.h * s));
  const rgba = new Uint8ClampedArray(ow * oh * 4);
  const sx = new Int32Array(ow);
  for (let x = 0; x < ow; x++) sx[x] = Math.min(bbox.w - 1, Math.floor(((x + 0.5) * bbox.w) / ow));
  const [r, g, b] = color;
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= ow || y >= oh ? 0 : crop[rowOf(y) * bbox.w + sx[x]]);
  const rows = new Int32Array(oh);
  for (let y = 0; y < oh; y++) rows[y] = Math.min(bbox.h - 1, Math.floor(((y + 0.5) * bbox.h) / oh));
  function rowOf(y: number) {
    return rows[y];
  }
  for (let y = 0; y < oh; y++) {
    const row = rows[y] * bbox.w;
    for (let x = 0; x < ow; x++) {
      if (!crop[row + sx[x]]) continue;
      const edge = !at(x - 1, y) || !at(x + 1, y) || !at(x, y - 1) || !at(x, y + 1);
      const o = (y * ow + x) * 4;
      rgba[o] = r;
      rgba[o + 1] = g;
      rgba[o + 2] = b;
      rgba[o + 3] = edge ? 255 : fillAlpha;
    }
  }
  return { box: bbox, width: ow, height: oh, rgba, area };
}

/** Overlay resolution: full resolution up to `maxSide` pixels on the long side, scaled down beyond. */
export function overlayScale(imageW: number, imageH: number, maxSide = 2048): number {
  return Math.min(1, maxSide / Math.max(imageW, imageH));
}
