/** Which object is under a point: the smallest mask containing it (so small parts on top win). */
import { runsContain, type Box } from "./rle";

export interface HitObject {
  id: number;
  runs: ArrayLike<number>;
  bbox: Box | null;
  area: number;
}

export function hitTest(objects: HitObject[], h: number, w: number, x: number, y: number): number | null {
  let best: HitObject | null = null;
  for (const o of objects) {
    const b = o.bbox;
    if (!b || x < b.x || y < b.y || x >= b.x + b.w || y >= b.y + b.h) continue;
    if (best && o.area >= best.area) continue;
    if (runsContain(o.runs, h, w, x, y)) best = o;
  }
  return best ? best.id : null;
}
