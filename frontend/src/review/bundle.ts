/**
 * Everything one review needs, loaded in parallel: the image detail, the decoded pixels (plus a
 * screen-sized copy for smooth zoomed-out drawing) and one overlay bitmap per mask, rendered in
 * workers. Bundles are cached so the prefetched next image opens at once.
 */
import { get, P, type Annotation, type ImageDetail, type LabelClass } from "../api/client";
import { hexToRgb, overlayScale, renderOverlays, type OverlayJob } from "../canvas";

export interface Overlay {
  key: string;
  bitmap: ImageBitmap | null;
  box: { x: number; y: number; w: number; h: number } | null;
}

export interface Bundle {
  pid: number;
  id: number;
  detail: Promise<ImageDetail>;
  pixels: Promise<{ full: ImageBitmap; small: ImageBitmap | null }>;
  overlays: Map<number, Overlay>;
  overlaysDone: Promise<void> | null;
  startedAt: number;
}

const cache = new Map<string, Bundle>();
const LIMIT = 4;

export const NO_CLASS_COLOR = "#9ca3af";
export function colorOf(a: Annotation, classes: LabelClass[]): string {
  return classes.find((c) => c.id === a.label_class)?.color || NO_CLASS_COLOR;
}
export function overlayKey(a: Annotation, color: string): string {
  return `${color}|${a.mask_rle?.counts ?? ""}`;
}

async function loadPixels(pid: number, id: number) {
  // display=1: a TIFF (which browsers cannot draw) comes as PNG; other formats as stored.
  const res = await fetch(`${P(pid)}/images/${id}/file/?display=1`, { credentials: "same-origin" });
  if (!res.ok) throw new Error(`The image file couldn't be loaded (${res.status}).`);
  const full = await createImageBitmap(await res.blob());
  const long = Math.max(full.width, full.height);
  let small: ImageBitmap | null = null;
  if (long > 2048) {
    const k = 2048 / long;
    // At least 1 px a side: a 60000x1 photo scaled to 2048 wide is 0.03 px high, and 0 is refused.
    small = await createImageBitmap(full, {
      resizeWidth: Math.max(1, Math.round(full.width * k)), resizeHeight: Math.max(1, Math.round(full.height * k)), resizeQuality: "medium",
    });
  }
  return { full, small };
}

/** Render the overlays whose key changed; calls onEach as bitmaps arrive. */
export function syncOverlays(
  overlays: Map<number, Overlay>, anns: Annotation[], classes: LabelClass[], width: number, height: number,
  onEach?: () => void,
): Promise<void> {
  const scale = overlayScale(width, height);
  const jobs: OverlayJob[] = [];
  const live = new Set<number>();
  for (const a of anns) {
    live.add(a.id);
    const color = colorOf(a, classes);
    const key = overlayKey(a, color);
    const have = overlays.get(a.id);
    if (have?.key === key) continue;
    if (!a.mask_rle?.counts) continue;
    jobs.push({ key: `${a.id}#${key}`, counts: a.mask_rle.counts, h: a.mask_rle.size[0], w: a.mask_rle.size[1], color: hexToRgb(color), scale });
  }
  for (const [id, o] of overlays) if (!live.has(id)) { o.bitmap?.close(); overlays.delete(id); }
  return renderOverlays(jobs, (r) => {
    const hash = r.key.indexOf("#");
    const id = Number(r.key.slice(0, hash));
    const key = r.key.slice(hash + 1);
    const cur = anns.find((a) => a.id === id);
    if (!cur || overlayKey(cur, colorOf(cur, classes)) !== key) return r.bitmap?.close();
    overlays.get(id)?.bitmap?.close();
    overlays.set(id, { key, bitmap: r.bitmap, box: r.box });
    onEach?.();
  });
}

export function loadBundle(pid: number, id: number, classes: LabelClass[]): Bundle {
  const k = `${pid}:${id}`;
  const hit = cache.get(k);
  if (hit) return hit;
  const b: Bundle = {
    pid, id, startedAt: performance.now(),
    detail: get<ImageDetail>(`${P(pid)}/images/${id}/`),
    pixels: loadPixels(pid, id),
    overlays: new Map(),
    overlaysDone: null,
  };
  b.overlaysDone = b.detail.then((d) => syncOverlays(b.overlays, d.annotations, classes, d.width, d.height));
  b.detail.catch(() => cache.delete(k));
  b.pixels.catch(() => cache.delete(k));
  b.overlaysDone.catch(() => undefined);
  cache.set(k, b);
  while (cache.size > LIMIT) {
    const oldest = cache.keys().next().value as string;
    cache.delete(oldest); // bitmaps are left to the garbage collector: the page may still show them
  }
  return b;
}

export function dropBundle(pid: number, id: number) {
  cache.delete(`${pid}:${id}`);
}
