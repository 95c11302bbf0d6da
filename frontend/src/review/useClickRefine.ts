/**
 * The click → SAM tool: left click adds a point on the object, right click or Shift+click one on
 * the background. Every click sends all points of the draft (and the selected object, whose mask
 * is SAM's starting point) to the gpu worker, which keeps the image's SAM embedding, so answers
 * come in a decoder pass; only the latest request's answer is shown. Enter (or `o`) saves the
 * mask — the selected object's through the versioned PATCH as one undo step, or a new unclassified
 * object when nothing was selected — and Esc discards it. Nothing is written before that.
 */
import { useEffect, useRef, useState } from "react";
import { ApiError, P, post, type Annotation, type ImageDetail, type Rle } from "../api/client";
import type { components } from "../api/schema";
import { countsFromString, decode, rasterizeOverlay, runsGeometry, type Pt } from "../canvas";
import { notify } from "../notify";
import { claimMessage, claimRefusal } from "./rules";
import type { Tool } from "./StageBar";
import type { useAnnotationWrites } from "./useAnnotationWrites";
import type { ClaimState } from "./useClaim";
import type { useMaskEditor } from "./useMaskEditor";
import type { useStage } from "./useStage";

/** The refine answer (backend/jobs/interactive.refine_now); the schema leaves `mask_rle` loose. */
export type RefineResult = Omit<components["schemas"]["RefineResult"], "mask_rle"> & { mask_rle: Rle };

/** What the stage draws for the tool: the points and the latest answer's mask. */
export interface RefineDraft {
  annId: number | null;
  points: Pt[];
  labels: number[];
  result: RefineResult | null;
  overlay: { canvas: HTMLCanvasElement; x: number; y: number; w: number; h: number } | null;
}

const MAX_POINTS = 64;
const PREVIEW_RGB: [number, number, number] = [34, 211, 238];

export function useClickRefine(opts: {
  pid: number; imageId: number; detail: ImageDetail | null; sel: Annotation | null; tool: Tool; readOnly: boolean;
  stage: ReturnType<typeof useStage>; editor: ReturnType<typeof useMaskEditor>; writes: ReturnType<typeof useAnnotationWrites>;
  updateAnns: (fn: (list: Annotation[]) => Annotation[]) => void; setSelId: (id: number | null) => void; setClaim: (c: ClaimState) => void;
}) {
  const { pid, imageId, detail, sel, tool, readOnly, stage, editor, writes, updateAnns, setSelId, setClaim } = opts;
  const { refineRef, requestDraw } = stage;
  const seq = useRef(0);
  const inflight = useRef<Promise<void> | null>(null);
  const [busy, setBusy] = useState(false);
  const [info, setInfo] = useState<{ points: number; cached: boolean | null; ms: number | null }>({ points: 0, cached: null, ms: null });

  const reset = () => {
    seq.current++; // answers still on their way are dropped
    inflight.current = null;
    refineRef.current = null;
    setBusy(false);
    setInfo({ points: 0, cached: null, ms: null });
    requestDraw();
  };
  // A draft belongs to one object of one image and to this tool: anything else ends it.
  useEffect(reset, [pid, imageId, tool === "click"]);
  useEffect(() => {
    if (refineRef.current && refineRef.current.annId !== (sel?.id ?? null)) reset();
  }, [sel?.id]);

  const show = (draft: RefineDraft, res: RefineResult) => {
    const [h] = res.mask_rle.size;
    const scale = Math.min(1, 2048 / Math.max(res.mask_rle.size[0], res.mask_rle.size[1]));
    const px = rasterizeOverlay(countsFromString(res.mask_rle.counts), h, PREVIEW_RGB, scale, 130);
    draft.result = res;
    draft.overlay = null;
    if (px) {
      const canvas = document.createElement("canvas");
      canvas.width = px.width;
      canvas.height = px.height;
      canvas.getContext("2d")!.putImageData(new ImageData(px.rgba as Uint8ClampedArray<ArrayBuffer>, px.width, px.height), 0, 0);
      draft.overlay = { canvas, x: px.box.x, y: px.box.y, w: px.box.w, h: px.box.h };
    }
  };

  /** A click on the stage in image coordinates; `positive` false = a background point. */
  const click = (x: number, y: number, positive: boolean) => {
    if (!detail) return;
    if (readOnly) return writes.refuseReadOnly();
    if (x < 0 || y < 0 || x > detail.width || y > detail.height) return;
    let draft = refineRef.current;
    if (!draft) draft = refineRef.current = { annId: sel?.id ?? null, points: [], labels: [], result: null, overlay: null };
    if (draft.points.length >= MAX_POINTS) return notify(`At most ${MAX_POINTS} points — save (Enter) or discard (Esc).`, "warn");
    draft.points = [...draft.points, [Math.round(x * 10) / 10, Math.round(y * 10) / 10]];
    draft.labels = [...draft.labels, positive ? 1 : 0];
    requestDraw();
    send(draft);
  };

  const send = (draft: RefineDraft) => {
    const mine = ++seq.current;
    const sent = draft.points.length;
    setBusy(true);
    setInfo((i) => ({ ...i, points: sent }));
    const body: Record<string, unknown> = { points: draft.points, labels: draft.labels };
    if (draft.annId !== null) body.annotation = draft.annId;
    const run = post<RefineResult>(`${P(pid)}/images/${imageId}/refine/`, body).then((res) => {
      if (mine !== seq.current || refineRef.current !== draft) return; // a newer click or a discard won
      show(draft, res);
      setInfo({ points: sent, cached: res.cached, ms: res.round_trip_ms });
    }, (e) => {
      if (mine !== seq.current || refineRef.current !== draft) return;
      // Drop the point whose answer failed, so the markers match the mask on screen.
      draft.points = draft.points.slice(0, sent - 1);
      draft.labels = draft.labels.slice(0, sent - 1);
      setInfo((i) => ({ ...i, points: draft.points.length }));
      const refused = claimRefusal(e);
      if (refused) {
        setClaim({ state: "other", by: refused.by });
        notify(claimMessage(refused, "the refined mask"), "error");
      } else if (e instanceof ApiError && e.status === 404) notify("Click → SAM isn't available for this image (the object or the endpoint is gone).", "error");
      else notify(`SAM couldn't refine the mask: ${(e as Error).message}`, "error");
    }).finally(() => {
      if (mine === seq.current) setBusy(false);
      requestDraw();
    });
    inflight.current = run;
  };

  /** Remove the last point (Backspace) and ask again, or end the draft when none is left. */
  const undoPoint = () => {
    const draft = refineRef.current;
    if (!draft) return;
    if (draft.points.length <= 1) return reset();
    draft.points = draft.points.slice(0, -1);
    draft.labels = draft.labels.slice(0, -1);
    send(draft);
  };

  /** Save the shown mask (after the latest answer arrives): the selected object's new mask, or a new object. */
  const commit = async () => {
    const draft = refineRef.current;
    if (!draft || !detail) return;
    if (readOnly) return writes.refuseReadOnly();
    if (inflight.current) await inflight.current;
    if (refineRef.current !== draft) return;
    const res = draft.result;
    if (!res) return notify("No mask to save yet — click on the object first.", "warn");
    if (runsGeometry(countsFromString(res.mask_rle.counts), detail.height).area === 0) {
      return notify("SAM found nothing there — add a point on the object, or Esc to discard.", "warn");
    }
    if (draft.annId !== null) {
      const target = writes.latest({ id: draft.annId } as Annotation);
      if (!target?.mask_rle) return reset();
      const ok = await editor.applyMask(target, decode(res.mask_rle));
      if (ok || target.mask_rle.counts === res.mask_rle.counts) reset();
      return;
    }
    try {
      const created = await post<Annotation>(`${P(pid)}/annotations/`, { image: imageId, label_class: null, mask_rle: res.mask_rle });
      reset();
      updateAnns((list) => [...list, created]);
      setSelId(created.id);
      writes.history.current.record({ t: "delete", id: created.id });
      notify("New object from your clicks — give it a class (/ to search, 1–9).");
    } catch (e) {
      const refused = claimRefusal(e);
      if (refused) {
        setClaim({ state: "other", by: refused.by });
        notify(claimMessage(refused, "the new object"), "error");
      } else notify(`Couldn't save the new object: ${(e as Error).message}`, "error");
    }
  };

  /** Keys while a draft exists; true when the key was used. */
  const key = (k: string): boolean => {
    if (tool !== "click" || !refineRef.current) return false;
    if (k === "Enter" || k === "o") void commit();
    else if (k === "Escape") reset();
    else if (k === "Backspace" || k === "Delete") undoPoint();
    else return false;
    return true;
  };

  return { click, commit, discard: reset, key, busy, info };
}

/** Green + (object) and red − (background) markers, sized for the current zoom. */
export function drawRefineDraft(c: CanvasRenderingContext2D, draft: RefineDraft, scale: number) {
  const r = 7 / scale;
  c.lineWidth = 2 / scale;
  draft.points.forEach(([x, y], i) => {
    const positive = draft.labels[i] === 1;
    c.fillStyle = positive ? "#16a34a" : "#dc2626";
    c.strokeStyle = "#fff";
    c.beginPath();
    c.arc(x, y, r, 0, Math.PI * 2);
    c.fill();
    c.stroke();
    c.beginPath();
    c.moveTo(x - r * 0.55, y);
    c.lineTo(x + r * 0.55, y);
    if (positive) {
      c.moveTo(x, y - r * 0.55);
      c.lineTo(x, y + r * 0.55);
    }
    c.stroke();
  });
}
