import { describe, expect, it } from "vitest";
import { coversAPixel, fillPolygon, nearestVertex, outerContour, polygonMask, replaceOutline, simplify, type Pt } from "./polygon";

const count = (m: Uint8Array) => m.reduce((s, v) => s + v, 0);
function rect(w: number, h: number, x0: number, y0: number, x1: number, y1: number) {
  const m = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * w + x] = 1;
  return m;
}

describe("polygons on masks", () => {
  it("fills a polygon along pixel corners exactly", () => {
    const m = polygonMask(10, 8, [[2, 1], [7, 1], [7, 5], [2, 5]]);
    expect(m).toEqual(rect(10, 8, 2, 1, 7, 5));
  });
  it("cuts a hole with value 0", () => {
    const m = rect(10, 10, 0, 0, 10, 10);
    fillPolygon(m, 10, 10, [[3, 3], [6, 3], [6, 6], [3, 6]], 0);
    expect(count(m)).toBe(100 - 9);
    expect(m[4 * 10 + 4]).toBe(0);
  });
  it("traces the outline of a mask back to the same pixels", () => {
    const m = rect(12, 9, 2, 2, 9, 7);
    m[2 * 12 + 2] = 0; // a notch at a corner
    const outline = outerContour(m, 12, 9, 0)!;
    expect(polygonMask(12, 9, outline)).toEqual(m);
    expect(outerContour(new Uint8Array(4), 2, 2)).toBeNull();
  });
  it("traces a triangle-ish blob and simplifies to few vertices", () => {
    const w = 40, h = 40;
    const tri: Pt[] = [[5, 5], [35, 5], [5, 35]];
    const m = polygonMask(w, h, tri);
    const outline = outerContour(m, w, h, 1.5)!;
    expect(outline.length).toBeLessThan(12);
    const back = polygonMask(w, h, outline);
    let diff = 0;
    for (let i = 0; i < m.length; i++) diff += m[i] !== back[i] ? 1 : 0;
    expect(diff).toBeLessThan(count(m) * 0.08);
  });
  it("moves an outline vertex and keeps holes and other parts", () => {
    const w = 30, h = 20;
    const m = rect(w, h, 2, 2, 12, 12);
    m[6 * w + 6] = 0; // a hole
    for (let y = 15; y < 18; y++) for (let x = 20; x < 25; x++) m[y * w + x] = 1; // another part
    const oldPts: Pt[] = [[2, 2], [12, 2], [12, 12], [2, 12]];
    const newPts: Pt[] = [[2, 2], [16, 2], [12, 12], [2, 12]];
    const out = replaceOutline(m, w, h, oldPts, newPts);
    expect(out[6 * w + 6]).toBe(0);
    expect(out[16 * w + 22]).toBe(1);
    expect(out[3 * w + 14]).toBe(1);
    expect(count(out)).toBeGreaterThan(count(m));
  });
  it("finds the nearest vertex within a radius", () => {
    const pts: Pt[] = [[0, 0], [10, 0], [10, 10]];
    expect(nearestVertex(pts, 9, 1, 3)).toBe(1);
    expect(nearestVertex(pts, 5, 5, 2)).toBe(-1);
    expect(simplify(pts, 5)).toHaveLength(3);
  });

  it("tells a polygon that covers no pixel of the image", () => {
    expect(coversAPixel(40, 30, [[-20, -20], [-5, -20], [-5, -5]])).toBe(false); // beside the image
    expect(coversAPixel(40, 30, [[45, 0], [60, 0], [60, 30]])).toBe(false);
    expect(coversAPixel(40, 30, [[-10, -10], [5, -10], [5, 5], [-10, 5]])).toBe(true); // partly on it
    expect(coversAPixel(40, 30, [[-10, -10], [100, -10], [100, 100], [-10, 100]])).toBe(true); // around it
  });
});
