import { describe, expect, it } from "vitest";
import fixtures from "./__fixtures__/pycocotools_rle.json";
import {
  countsFromString, countsToString, decode, decodeCrop, encode, runsContain, runsGeometry,
} from "./rle";

interface Fixture {
  name: string;
  size: [number, number];
  counts: string;
  area: number;
  bbox: [number, number, number, number];
  ones: number[] | null;
}
const cases = fixtures as Fixture[];

describe("RLE against pycocotools fixtures", () => {
  for (const f of cases) {
    it(`decodes ${f.name} exactly`, () => {
      const [h, w] = f.size;
      const mask = decode({ size: f.size, counts: f.counts });
      expect(mask.length).toBe(h * w);
      const ones: number[] = [];
      mask.forEach((v, i) => v && ones.push(i));
      expect(ones.length).toBe(f.area);
      if (f.ones) expect(ones).toEqual(f.ones);
    });
    it(`round-trips ${f.name}: encode(decode(x)) == x`, () => {
      const [h, w] = f.size;
      expect(encode(decode({ size: f.size, counts: f.counts }), h, w).counts).toBe(f.counts);
      expect(countsToString(countsFromString(f.counts))).toBe(f.counts);
    });
    it(`geometry of ${f.name} matches pycocotools toBbox/area`, () => {
      const { bbox, area } = runsGeometry(countsFromString(f.counts), f.size[0]);
      expect(area).toBe(f.area);
      if (area === 0) expect(bbox).toBeNull();
      else expect([bbox!.x, bbox!.y, bbox!.w, bbox!.h]).toEqual(f.bbox);
    });
    it(`crop decode and point lookup agree with full decode for ${f.name}`, () => {
      const [h, w] = f.size;
      const runs = countsFromString(f.counts);
      const full = decode({ size: f.size, counts: f.counts });
      const { bbox } = runsGeometry(runs, h);
      if (!bbox) return;
      const crop = decodeCrop(runs, h, bbox);
      let mismatches = 0;
      for (let y = 0; y < bbox.h; y++)
        for (let x = 0; x < bbox.w; x++) if (crop[y * bbox.w + x] !== full[(y + bbox.y) * w + x + bbox.x]) mismatches++;
      expect(mismatches).toBe(0);
      const step = Math.max(1, Math.floor((h * w) / 3000));
      for (let i = 0; i < h * w; i += step) {
        if (runsContain(runs, h, w, i % w, Math.floor(i / w)) !== (full[i] === 1)) mismatches++;
      }
      expect(mismatches).toBe(0);
    });
  }

  it("encodes masks built in the browser like pycocotools", () => {
    const ring = cases.find((c) => c.name === "ring_300x400")!;
    const [h, w] = ring.size;
    const m = new Uint8Array(h * w);
    for (let y = 10; y < 290; y++) for (let x = 5; x < 395; x++) m[y * w + x] = 1;
    for (let y = 100; y < 200; y++) for (let x = 100; x < 300; x++) m[y * w + x] = 0;
    expect(encode(m, h, w).counts).toBe(ring.counts);
  });

  it("rejects corrupt strings with a clear error", () => {
    expect(() => decode({ size: [2, 2], counts: "3" })).toThrow(/expected 4/);
  });
});
