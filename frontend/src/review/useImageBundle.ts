/**
 * The open image: its detail, its object list and its pixels and overlays (from the bundle cache),
 * reloaded whenever the image changes; the next image in the queue is prefetched once this one shows.
 */
import { useEffect, useRef, useState, type RefObject } from "react";
import { checkProjectAccess } from "../api/access";
import { ApiError, get, P, type Annotation, type ImageDetail, type LabelClass } from "../api/client";
import { loadBundle, type Bundle } from "./bundle";
import { nextImageId, queueFilters } from "./queue";

declare global {
  interface Window {
    __razmetka?: { imageId: number; overlayMs: number; imageMs: number; overlays: number };
  }
}

export type Pixels = { full: ImageBitmap; small: ImageBitmap | null };

export function useImageBundle(
  pid: number, imageId: number, classes: LabelClass[], canvasRef: RefObject<HTMLCanvasElement | null>,
  onOpened: (d: ImageDetail) => void,
) {
  const [detail, setDetail] = useState<ImageDetail | null>(null);
  const [anns, setAnns] = useState<Annotation[]>([]);
  const [loadError, setLoadError] = useState("");
  const [attempt, setAttempt] = useState(0); // "Try again" after a failed load: a failed bundle is not cached
  const retryLoad = () => setAttempt((n) => n + 1);
  // The picture itself failed (its objects loaded): said on the stage with Try again, and Enter
  // refuses to accept what nobody has seen (it accepted both objects of a blank stage).
  const [pixelsError, setPixelsError] = useState("");
  const [, setFrame] = useState(0);
  /** The image whose pixels have arrived (the stage draws again then: see useStage). */
  const [pixelsFor, setPixelsFor] = useState<number | null>(null);
  const bundleRef = useRef<Bundle | null>(null);
  const pixelsRef = useRef<Pixels | null>(null);
  const annsRef = useRef<Annotation[]>([]);
  /** The object list, updated synchronously so queued writes always read the newest version. */
  const updateAnns = (fn: (list: Annotation[]) => Annotation[]) => {
    annsRef.current = fn(annsRef.current);
    setAnns(annsRef.current);
  };

  useEffect(() => {
    let cancelled = false;
    const t0 = performance.now();
    setLoadError("");
    setPixelsError("");
    setDetail(null);
    updateAnns(() => []);
    pixelsRef.current = null;
    setPixelsFor(null);
    const b = loadBundle(pid, imageId, classes);
    bundleRef.current = b;
    if (canvasRef.current) delete canvasRef.current.dataset.overlaysReady;
    b.detail
      .then((d) => {
        if (cancelled) return;
        setDetail(d);
        updateAnns(() => d.annotations);
        onOpened(d);
        return b.overlaysDone!.then(() => {
          if (cancelled) return;
          const overlayMs = performance.now() - t0;
          window.__razmetka = { ...(window.__razmetka ?? { imageMs: 0 }), imageId, overlayMs, overlays: b.overlays.size };
          if (canvasRef.current) canvasRef.current.dataset.overlaysReady = String(imageId);
          setFrame((f) => f + 1);
        });
      })
      .catch(async (e) => {
        if (cancelled) return;
        // A 404 is also every project route's answer once you are no longer a member.
        if (e instanceof ApiError && e.status === 404 && (await checkProjectAccess(pid)) === "lost") return;
        if (!cancelled) setLoadError(e instanceof ApiError && e.status === 404 ? "This image doesn't exist (it may have been deleted)." : `Couldn't open the image: ${e.message}`);
      });
    b.pixels
      .then((px) => {
        if (cancelled) return;
        pixelsRef.current = px;
        window.__razmetka = { ...(window.__razmetka ?? { overlayMs: 0, overlays: 0, imageId }), imageMs: performance.now() - t0 };
        setPixelsFor(imageId); // data-image-ready is set by the draw that shows them (useStage)
      })
      .catch(async (e) => {
        if (cancelled) return;
        // A detail that failed already says why on the page (a 404, or the project notice): one message, not two.
        if (await b.detail.then(() => false, () => true)) return;
        if (!cancelled) setPixelsError(e.message);
      });
    // Show the cached copy at once, then reconcile with the server's current state.
    if (performance.now() - b.startedAt > 1500) {
      get<ImageDetail>(`${P(pid)}/images/${imageId}/`).then((fresh) => {
        if (cancelled) return;
        setDetail(fresh);
        updateAnns(() => fresh.annotations);
      }).catch(() => undefined);
    }
    return () => {
      cancelled = true;
    };
  }, [pid, imageId, attempt]);

  // Prefetch the next image once this one is on screen: a look, not a claim (claiming it
  // released this image's claim, and the queue handed the open image to a second reviewer).
  useEffect(() => {
    if (!detail) return;
    const t = setTimeout(() => {
      nextImageId(pid, queueFilters(pid), imageId, new Set([imageId]))
        .then((id) => id && loadBundle(pid, id, classes))
        .catch(() => undefined);
    }, 300);
    return () => clearTimeout(t);
  }, [detail?.id]);

  return { detail, setDetail, anns, annsRef, updateAnns, loadError, retryLoad, pixelsError, bundleRef, pixelsRef, pixelsFor };
}
