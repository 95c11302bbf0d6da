import { describe, expect, it } from "vitest";
import { paintDisc, paintStroke, UndoStack } from "./brush";
import { decode, encode } from "./rle";
import { hitTest } from "./hittest";
import { countsFromString, runsGeometry } from "./rle";
import { fitView, toImage, zoomAt } from "./viewport";
import { rasterizeOverlay } from "./overlay";

const count = (m: Uint8Array) => m.reduce((a, v) => a + v, 0);

describe("brush and eraser", () => {
  it("paints a disc and erases it again", () => {
    const w = 40, h = 30, m = new Uint8Array(w * h);
    const box = paintDisc(m, w, h, 20, 15, 5, 1)!;
    expect(count(m)).toBeGreaterThan(60);
    expect(count(m)).toBeLessThan(100);
    expect(m[15 * w + 20]).toBe(1);
    expect(m[15 * w + 30]).toBe(0);
    expect(box.x).toBeGreaterThanOrEqual(14);
    paintDisc(m, w, h, 20, 15, 6, 0);
    expect(count(m)).toBe(0);
  });
  it("clips at the image border", () => {
    const w = 10, h = 10, m = new Uint8Array(w * h);
    paintDisc(m, w, h, 0, 0, 3, 1);
    expect(m[0]).toBe(1);
    expect(paintDisc(m, w, h, -20, -20, 3, 1)).toBeNull();
  });
  it("strokes leave no gaps and survive an RLE round trip", () => {
    const w = 100, h = 50, m = new Uint8Array(w * h);
    paintStroke(m, w, h, 5, 25, 95, 25, 2, 1);
    for (let x = 5; x <= 95; x++) expect(m[25 * w + x]).toBe(1);
    const rle = encode(m, h, w);
    expect(decode(rle)).toEqual(m);
    const { bbox } = runsGeometry(countsFromString(rle.counts), h);
    expect(bbox!.y).toBeGreaterThanOrEqual(22);
    paintStroke(m, w, h, 0, 25, 99, 25, 4, 0);
    expect(count(m)).toBe(0);
  });
  it("undo and redo restore snapshots", () => {
    const u = new UndoStack<string>(2);
    u.push("a");
    u.push("b");
    u.push("c"); // "a" falls off
    expect(u.undo("d")).toBe("c");
    expect(u.undo("c")).toBe("b");
    expect(u.undo("b")).toBeUndefined();
    expect(u.redo("b")).toBe("c");
  });
});

describe("hit-testing", () => {
  it("picks the smallest mask under the point", () => {
    const w = 50, h = 40;
    const big = new Uint8Array(w * h).fill(1);
    const small = new Uint8Array(w * h);
    paintDisc(small, w, h, 10, 10, 4, 1);
    const objs = [big, small].map((m, i) => {
      const runs = countsFromString(encode(m, h, w).counts);
      return { id: i + 1, runs, ...runsGeometry(runs, h) };
    });
    expect(hitTest(objs, h, w, 10, 10)).toBe(2);
    expect(hitTest(objs, h, w, 40, 30)).toBe(1);
    expect(hitTest(objs.slice(1), h, w, 40, 30)).toBeNull();
    expect(hitTest(objs, h, w, -1, 5)).toBeNull();
  });
});

describe("viewport and overlay", () => {
  it("fits, zooms about a point and maps back", () => {
    const v = fitView(4000, 3000, 1000, 800, 0);
    expect(v.scale).toBeCloseTo(0.25);
    const z = zoomAt(v, 500, 400, 2);
    const before = toImage(v, 500, 400), after = toImage(z, 500, 400);
    expect(after[0]).toBeCloseTo(before[0]);
    expect(after[1]).toBeCloseTo(before[1]);
  });
  it("rasterizes fill and outline at a reduced scale", () => {
    const w = 20, h = 20, m = new Uint8Array(w * h);
    for (let y = 4; y < 14; y++) for (let x = 2; x < 12; x++) m[y * w + x] = 1;
    const px = rasterizeOverlay(countsFromString(encode(m, h, w).counts), h, [255, 0, 0], 0.5, 100)!;
    expect(px.box).toEqual({ x: 2, y: 4, w: 10, h: 10 });
    expect([px.width, px.height]).toEqual([5, 5]);
    expect(px.rgba[3]).toBe(255); // corner = outline
    expect(px.rgba[(2 * 5 + 2) * 4 + 3]).toBe(100); // centre = fill
  });
});
