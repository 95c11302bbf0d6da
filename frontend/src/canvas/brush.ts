/** Brush and eraser edits on a row-major 0/1 mask, plus an undo stack of encoded snapshots. */
import type { Box } from "./rle";

/** Paint a filled disc of radius r at (cx, cy) with value (1 brush, 0 eraser). Returns the touched box. */
export function paintDisc(mask: Uint8Array, w: number, h: number, cx: number, cy: number, r: number, value: 0 | 1): Box | null {
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(w - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(h - 1, Math.ceil(cy + r));
  if (x0 > x1 || y0 > y1) return null;
  const r2 = r * r;
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= r2) mask[y * w + x] = value;
    }
  }
  return { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

/** Paint discs along the segment (ax, ay) → (bx, by), spaced so the stroke has no gaps. */
export function paintStroke(
  mask: Uint8Array, w: number, h: number, ax: number, ay: number, bx: number, by: number, r: number, value: 0 | 1,
): Box | null {
  const dist = Math.hypot(bx - ax, by - ay);
  const steps = Math.max(1, Math.ceil(dist / Math.max(0.5, r / 2)));
  let box: Box | null = null;
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    box = unionBox(box, paintDisc(mask, w, h, ax + (bx - ax) * t, ay + (by - ay) * t, r, value));
  }
  return box;
}

export function unionBox(a: Box | null, b: Box | null): Box | null {
  if (!a) return b;
  if (!b) return a;
  const x = Math.min(a.x, b.x), y = Math.min(a.y, b.y);
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y };
}

/** Bounded undo/redo of immutable snapshots (encoded RLE strings are small). */
export class UndoStack<T> {
  private past: T[] = [];
  private future: T[] = [];
  constructor(private limit = 50) {}
  push(state: T): void {
    this.past.push(state);
    if (this.past.length > this.limit) this.past.shift();
    this.future = [];
  }
  undo(current: T): T | undefined {
    const prev = this.past.pop();
    if (prev !== undefined) this.future.push(current);
    return prev;
  }
  redo(current: T): T | undefined {
    const next = this.future.pop();
    if (next !== undefined) this.past.push(current);
    return next;
  }
  get canUndo(): boolean {
    return this.past.length > 0;
  }
  clear(): void {
    this.past = [];
    this.future = [];
  }
}
