/** A small pool of overlay workers; falls back to the main thread where workers are unavailable. */
import type { OverlayJob, OverlayResult } from "./overlay.worker";
import { countsFromString } from "./rle";
import { rasterizeOverlay } from "./overlay";

export type { OverlayJob, OverlayResult };

let pool: Worker[] | null = null;
let batchSeq = 0;
const waiting = new Map<number, { left: number; onResult: (r: OverlayResult) => void; done: () => void }>();

function workers(): Worker[] {
  if (pool) return pool;
  const n = Math.max(1, Math.min(2, (navigator.hardwareConcurrency || 2)));
  pool = [];
  for (let i = 0; i < n; i++) {
    const w = new Worker(new URL("./overlay.worker.ts", import.meta.url), { type: "module" });
    w.onmessage = (ev: MessageEvent<{ batch: number; result: OverlayResult }>) => {
      const entry = waiting.get(ev.data.batch);
      if (!entry) {
        ev.data.result.bitmap?.close();
        return;
      }
      entry.onResult(ev.data.result);
      if (--entry.left === 0) {
        waiting.delete(ev.data.batch);
        entry.done();
      }
    };
    pool.push(w);
  }
  return pool;
}

/** Render overlays; results stream in through onResult. Resolves when all are done. */
export function renderOverlays(jobs: OverlayJob[], onResult: (r: OverlayResult) => void): Promise<void> {
  if (!jobs.length) return Promise.resolve();
  if (typeof Worker === "undefined") return renderOnMainThread(jobs, onResult);
  const ws = workers();
  const batch = ++batchSeq;
  return new Promise((resolve) => {
    waiting.set(batch, { left: jobs.length, onResult, done: resolve });
    // Split big masks evenly: deal jobs round-robin, largest strings first.
    const sorted = [...jobs].sort((a, b) => b.counts.length - a.counts.length);
    const shares: OverlayJob[][] = ws.map(() => []);
    sorted.forEach((job, i) => shares[i % ws.length].push(job));
    shares.forEach((share, i) => share.length && ws[i].postMessage({ batch, jobs: share }));
  });
}

async function renderOnMainThread(jobs: OverlayJob[], onResult: (r: OverlayResult) => void) {
  for (const job of jobs) {
    const px = rasterizeOverlay(countsFromString(job.counts), job.h, job.color, job.scale, job.alpha);
    if (!px) onResult({ key: job.key, bitmap: null, box: null, area: 0 });
    else {
      const bitmap = await createImageBitmap(new ImageData(px.rgba as Uint8ClampedArray<ArrayBuffer>, px.width, px.height));
      onResult({ key: job.key, bitmap, box: px.box, area: px.area });
    }
  }
}
