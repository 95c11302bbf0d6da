/**
 * Polygons on row-major 0/1 masks: fill (even-odd, pixel centres, so a polygon along pixel
 * corners covers exactly those pixels), the outer outline of a mask as a polygon, simplification,
 * and replacing one outline of a mask while keeping its holes and its other parts.
 */
export type Pt = [number, number];

/** The polygon's runs of pixels inside the image, row by row; `visit` returning true stops the walk. */
function spans(w: number, h: number, pts: Pt[], visit: (y: number, from: number, to: number) => boolean | void): void {
  if (pts.length < 3) return;
  let minY = Infinity, maxY = -Infinity;
  for (const [, y] of pts) { minY = Math.min(minY, y); maxY = Math.max(maxY, y); }
  const y0 = Math.max(0, Math.floor(minY)), y1 = Math.min(h - 1, Math.ceil(maxY));
  const xs: number[] = [];
  for (let y = y0; y <= y1; y++) {
    const yc = y + 0.5;
    xs.length = 0;
    for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
      const [ax, ay] = pts[j], [bx, by] = pts[i];
      if ((ay <= yc && yc < by) || (by <= yc && yc < ay)) xs.push(ax + ((yc - ay) * (bx - ax)) / (by - ay));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      // pixel x is inside when its centre x + 0.5 lies in [xs[k], xs[k+1])
      const from = Math.max(0, Math.ceil(xs[k] - 0.5)), to = Math.min(w - 1, Math.ceil(xs[k + 1] - 0.5) - 1);
      if (from <= to && visit(y, from, to)) return;
    }
  }
}

/** Fill the polygon into `mask` with `value` (1 adds, 0 cuts a hole). */
export function fillPolygon(mask: Uint8Array, w: number, h: number, pts: Pt[], value: 0 | 1): void {
  spans(w, h, pts, (y, from, to) => void mask.fill(value, y * w + from, y * w + to + 1));
}

/** Whether the polygon covers any pixel of a w×h image (one drawn wholly beside it covers none). */
export function coversAPixel(w: number, h: number, pts: Pt[]): boolean {
  let any = false;
  spans(w, h, pts, () => (any = true));
  return any;
}

export function polygonMask(w: number, h: number, pts: Pt[]): Uint8Array {
  const m = new Uint8Array(w * h);
  fillPolygon(m, w, h, pts, 1);
  return m;
}

const DX = [1, 0, -1, 0], DY = [0, 1, 0, -1]; // east, south, west, north

/**
 * The outer boundary of the first part of the mask (in raster order) along pixel corners,
 * traced with the part on the right (4-connected), then simplified. Null for an empty mask.
 */
export function outerContour(mask: Uint8Array, w: number, h: number, epsilon = 1): Pt[] | null {
  const start = mask.indexOf(1);
  if (start < 0) return null;
  const at = (x: number, y: number) => x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x] === 1;
  const sx = start % w, sy = Math.floor(start / w);
  const pts: Pt[] = [[sx, sy]];
  let cx = sx + 1, cy = sy, d = 0;
  const limit = 4 * (w + 1) * (h + 1);
  for (let n = 0; n < limit && !(cx === sx && cy === sy); n++) {
    // the two pixels ahead of the corner, right and left of the direction of travel
    const ar = d === 0 ? at(cx, cy) : d === 1 ? at(cx - 1, cy) : d === 2 ? at(cx - 1, cy - 1) : at(cx, cy - 1);
    const al = d === 0 ? at(cx, cy - 1) : d === 1 ? at(cx, cy) : d === 2 ? at(cx - 1, cy) : at(cx - 1, cy - 1);
    const nd = !ar ? (d + 1) % 4 : al ? (d + 3) % 4 : d;
    if (nd !== d) pts.push([cx, cy]);
    d = nd;
    cx += DX[d];
    cy += DY[d];
  }
  return simplify(pts, epsilon);
}

/** Douglas–Peucker on a closed polygon; keeps at least 3 points. */
export function simplify(pts: Pt[], epsilon: number): Pt[] {
  if (pts.length <= 3 || epsilon <= 0) return pts;
  // split the ring at its farthest point from the first one, simplify both chains
  let far = 0, best = -1;
  for (let i = 1; i < pts.length; i++) {
    const dd = (pts[i][0] - pts[0][0]) ** 2 + (pts[i][1] - pts[0][1]) ** 2;
    if (dd > best) { best = dd; far = i; }
  }
  const a = chain([...pts.slice(0, far + 1)], epsilon);
  const b = chain([...pts.slice(far), pts[0]], epsilon);
  const out = [...a.slice(0, -1), ...b.slice(0, -1)];
  return out.length >= 3 ? out : pts;
}

function chain(pts: Pt[], eps: number): Pt[] {
  if (pts.length <= 2) return pts;
  const [ax, ay] = pts[0], [bx, by] = pts[pts.length - 1];
  const len = Math.hypot(bx - ax, by - ay) || 1;
  let idx = 0, dmax = -1;
  for (let i = 1; i < pts.length - 1; i++) {
    const d = Math.abs((bx - ax) * (ay - pts[i][1]) - (ax - pts[i][0]) * (by - ay)) / len;
    if (d > dmax) { dmax = d; idx = i; }
  }
  if (dmax <= eps) return [pts[0], pts[pts.length - 1]];
  return [...chain(pts.slice(0, idx + 1), eps).slice(0, -1), ...chain(pts.slice(idx), eps)];
}

/**
 * The mask with one outline moved: what the old outline enclosed is replaced by what the new one
 * encloses, except the old holes stay holes; parts outside the old outline are kept.
 */
export function replaceOutline(mask: Uint8Array, w: number, h: number, oldPts: Pt[], newPts: Pt[]): Uint8Array {
  const oldIn = polygonMask(w, h, oldPts), newIn = polygonMask(w, h, newPts);
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++) {
    const hole = oldIn[i] === 1 && mask[i] === 0;
    out[i] = oldIn[i] === 1 ? (newIn[i] === 1 && !hole ? 1 : 0) : mask[i] === 1 || newIn[i] === 1 ? 1 : 0;
  }
  return out;
}

/** Index of the vertex within `radius` of (x, y), the nearest one; -1 when none. */
export function nearestVertex(pts: Pt[], x: number, y: number, radius: number): number {
  let best = -1, bd = radius * radius;
  pts.forEach(([px, py], i) => {
    const d = (px - x) ** 2 + (py - y) ** 2;
    if (d <= bd) { bd = d; best = i; }
  });
  return best;
}
