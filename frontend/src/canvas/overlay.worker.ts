/// <reference lib="webworker" />
/** Decodes RLE masks off the main thread and hands back one ImageBitmap per mask. */
import { countsFromString } from "./rle";
import { rasterizeOverlay } from "./overlay";

export interface OverlayJob {
  key: string;
  counts: string;
  h: number;
  w: number;
  color: [number, number, number];
  scale: number;
  alpha?: number;
}
export interface OverlayResult {
  key: string;
  bitmap: ImageBitmap | null;
  box: { x: number; y: number; w: number; h: number } | null;
  area: number;
  error?: string;
}

self.onmessage = async (ev: MessageEvent<{ batch: number; jobs: OverlayJob[] }>) => {
  const { batch, jobs } = ev.data;
  for (const job of jobs) {
    let result: OverlayResult;
    try {
      const runs = countsFromString(job.counts);
      const px = rasterizeOverlay(runs, job.h, job.color, job.scale, job.alpha);
      if (!px) result = { key: job.key, bitmap: null, box: null, area: 0 };
      else {
        const bitmap = await createImageBitmap(new ImageData(px.rgba as Uint8ClampedArray<ArrayBuffer>, px.width, px.height));
        result = { key: job.key, bitmap, box: px.box, area: px.area };
      }
    } catch (e) {
      result = { key: job.key, bitmap: null, box: null, area: 0, error: String(e) };
    }
    (self as unknown as Worker).postMessage({ batch, result }, result.bitmap ? [result.bitmap] : []);
  }
};
