/**
 * COCO compressed RLE, bit-for-bit like pycocotools (maskApi.c rleToString / rleFrString).
 *
 * Masks are column-major run lengths starting with a run of zeros. The string form stores each
 * count (delta-coded against the count two places back, for i > 2) as 5-bit groups with a
 * continuation bit (0x20) and a sign bit (0x10) on the last group, offset by 48 ('0').
 * Arithmetic uses plain numbers (not 32-bit shifts) so counts up to 2^53 survive.
 */
export interface Rle {
  size: [number, number]; // [height, width]
  counts: string;
}

/** Parse a compressed counts string into run lengths (rleFrString). */
export function countsFromString(s: string): Uint32Array {
  const out = new Uint32Array(s.length);
  let m = 0;
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    let c = 0;
    while (more) {
      if (p >= s.length) throw new Error("Truncated RLE counts string");
      c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && (c & 0x10)) x -= 2 ** (5 * k);
    }
    if (m > 2) x += out[m - 2];
    if (x < 0) throw new Error("Corrupt RLE counts string (negative run)");
    out[m++] = x;
  }
  return out.slice(0, m);
}

/** Serialize run lengths into the compressed string (rleToString). */
export function countsToString(cnts: ArrayLike<number>): string {
  const parts: number[] = [];
  for (let i = 0; i < cnts.length; i++) {
    let x = cnts[i];
    if (i > 2) x -= cnts[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f; // low 5 bits (two's complement for negatives, as in C)
      x = Math.floor(x / 32); // arithmetic shift right by 5
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      parts.push(c + 48);
    }
  }
  let s = "";
  const CHUNK = 8192;
  for (let i = 0; i < parts.length; i += CHUNK) s += String.fromCharCode(...parts.slice(i, i + CHUNK));
  return s;
}

/** Run lengths of a row-major 0/1 mask (h×w), column-major as COCO wants. */
export function countsFromMask(mask: ArrayLike<number>, h: number, w: number): Uint32Array {
  const runs: number[] = [];
  let prev = 0;
  let run = 0;
  for (let x = 0; x < w; x++) {
    for (let i = x, y = 0; y < h; y++, i += w) {
      const v = mask[i] ? 1 : 0;
      if (v !== prev) {
        runs.push(run);
        run = 0;
        prev = v;
      }
      run++;
    }
  }
  runs.push(run);
  return Uint32Array.from(runs);
}

/** Decode to a row-major Uint8Array (index y*w + x) of 0/1. */
export function decode(rle: Rle): Uint8Array {
  const [h, w] = rle.size;
  const runs = countsFromString(rle.counts);
  const out = new Uint8Array(h * w);
  let p = 0;
  for (let i = 0; i < runs.length; i++) {
    const n = runs[i];
    if (i & 1) {
      for (let q = p; q < p + n; q++) {
        const x = (q / h) | 0;
        out[(q - x * h) * w + x] = 1;
      }
    }
    p += n;
  }
  if (p !== h * w) throw new Error(`RLE covers ${p} pixels, expected ${h * w}`);
  return out;
}

export function encode(mask: ArrayLike<number>, h: number, w: number): Rle {
  return { size: [h, w], counts: countsToString(countsFromMask(mask, h, w)) };
}

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Tight bbox [x, y, w, h] and area straight from the runs; null bbox for an empty mask. */
export function runsGeometry(runs: ArrayLike<number>, h: number): { bbox: Box | null; area: number } {
  let xmin = Infinity, xmax = -1, ymin = Infinity, ymax = -1, area = 0, p = 0;
  for (let i = 0; i < runs.length; i++) {
    const n = runs[i];
    if (i & 1 && n > 0) {
      area += n;
      const s = p, e = p + n - 1;
      const cs = Math.floor(s / h), ce = Math.floor(e / h);
      if (cs < xmin) xmin = cs;
      if (ce > xmax) xmax = ce;
      if (cs === ce) {
        ymin = Math.min(ymin, s - cs * h);
        ymax = Math.max(ymax, e - ce * h);
      } else {
        ymin = 0;
        ymax = h - 1;
      }
    }
    p += n;
  }
  if (area === 0) return { bbox: null, area: 0 };
  return { bbox: { x: xmin, y: ymin, w: xmax - xmin + 1, h: ymax - ymin + 1 }, area };
}

/** Decode only the bbox crop: row-major data of size box.w × box.h. */
export function decodeCrop(runs: ArrayLike<number>, h: number, box: Box): Uint8Array {
  const out = new Uint8Array(box.w * box.h);
  let p = 0;
  for (let i = 0; i < runs.length; i++) {
    const n = runs[i];
    if (i & 1 && n > 0) {
      let q = p;
      const end = p + n;
      while (q < end) {
        const x = Math.floor(q / h);
        const y0 = q - x * h;
        const y1 = Math.min(h, y0 + (end - q)); // exclusive, within this column
        const cx = x - box.x;
        for (let y = y0; y < y1; y++) out[(y - box.y) * box.w + cx] = 1;
        q += y1 - y0;
      }
    }
    p += n;
  }
  return out;
}

/** Is pixel (x, y) inside the mask? Walks the runs; no decode. */
export function runsContain(runs: ArrayLike<number>, h: number, w: number, x: number, y: number): boolean {
  if (x < 0 || y < 0 || x >= w || y >= h) return false;
  const target = Math.floor(x) * h + Math.floor(y);
  let p = 0;
  for (let i = 0; i < runs.length; i++) {
    p += runs[i];
    if (target < p) return (i & 1) === 1;
  }
  return false;
}
