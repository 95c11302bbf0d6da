/**
 * Mask fixes on the selected object: brush/eraser strokes (each saved, each undoable through the
 * workspace history) and box → SAM 2 in an explicit mode: "new object" (the default; its class is
 * the gallery's proposal, or none) or "replace selected mask". A mask the server has not accepted
 * yet stays "unsaved" and blocks moving on.
 */
import { useEffect, useRef, useState, type RefObject } from "react";
import { ApiError, P, patch, post, type Annotation, type ImageDetail, type LabelClass, type Rle } from "../api/client";
import type { Candidate, SegmentResult as SegmentMask } from "../api/extra";
import { countsFromString, decode, encode, paintStroke, runsGeometry, type View } from "../canvas";
import { notify } from "../notify";
import { colorOf, type Bundle } from "./bundle";
import { claimMessage, claimRefusal } from "./rules";
import type { BoxMode, Tool } from "./StageBar";
import type { ClaimState } from "./useClaim";
import type { EditSession } from "./useStage";
import { reviewsOf } from "./useUndoHistory";
import type { useAnnotationWrites } from "./useAnnotationWrites";

/** The segment answer with the gallery's class proposal (backend/jobs/interactive.py). */
type SegmentResult = SegmentMask & {
  label_class?: number | null; class_name?: string | null; class_score?: number | null; class_margin?: number | null;
  candidates?: Candidate[]; gallery_size?: number; proposal?: string | null;
};

export function useMaskEditor(opts: {
  pid: number; imageId: number; detail: ImageDetail | null; sel: Annotation | null; classes: LabelClass[];
  tool: Tool; brushPx: number; readOnly: boolean; bundleRef: RefObject<Bundle | null>;
  editRef: RefObject<EditSession | null>; viewRef: RefObject<View | null>; requestDraw: () => void;
  writes: ReturnType<typeof useAnnotationWrites>; updateAnns: (fn: (list: Annotation[]) => Annotation[]) => void;
  setSelId: (id: number | null) => void; setClaim: (c: ClaimState) => void;
}) {
  const { pid, imageId, detail, sel, classes, tool, brushPx, readOnly, bundleRef, editRef, viewRef, requestDraw, writes, updateAnns, setSelId, setClaim } = opts;
  const { write, replace, latest } = writes;
  const [unsaved, setUnsaved] = useState<Map<number, Rle>>(new Map());
  const [boxMode, setBoxMode] = useState<BoxMode>("new");
  /** Box → SAM in flight (a cold worker takes ~10 s): the stage shows it and refuses another box. */
  const [segmenting, setSegmenting] = useState(false);
  const segmentingRef = useRef(false);

  useEffect(() => setUnsaved(new Map()), [pid, imageId]);
  const forget = (id: number) => setUnsaved((m) => { const n = new Map(m); n.delete(id); return n; });

  /** `before`: the mask this edit was drawn on. A conflict with a change that left that mask as
   * it was (a class picked in another tab) is no conflict for the mask: it is sent again on the
   * newer version (the stroke was thrown away, with undo gone). */
  const saveMask = async (a: Annotation, rle: Rle, before: Rle): Promise<boolean> => {
    setUnsaved((m) => new Map(m).set(a.id, rle));
    const based = latest(a).version; // a Retry sends the version this edit was made on
    const rebase = (cur: Annotation) => (cur.mask_rle.counts === before.counts ? { ...cur, mask_rle: rle } : null);
    const run = async () => {
      const ok = await write(a, "the mask", (version) => patch<Annotation>(`${P(pid)}/annotations/${a.id}/`, { version, mask_rle: rle }), run, based, rebase);
      if (ok) forget(a.id);
      else if (editRef.current?.annId === a.id) {
        // A conflict reloaded the object: drop the edit session so the current mask shows.
        const cur = latest(a);
        if (cur.mask_rle.counts !== rle.counts) { editRef.current = null; forget(a.id); }
      }
      requestDraw();
      return ok;
    };
    return run();
  };

  const startEdit = (a: Annotation): EditSession | null => {
    if (editRef.current?.annId === a.id) return editRef.current;
    if (!detail) return null;
    const [h, w] = a.mask_rle.size;
    const mask = decode(a.mask_rle);
    const scale = Math.min(1, 2048 / Math.max(w, h));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(w * scale));
    canvas.height = Math.max(1, Math.round(h * scale));
    const o = bundleRef.current?.overlays.get(a.id);
    const c2 = canvas.getContext("2d")!;
    if (o?.bitmap && o.box) c2.drawImage(o.bitmap, o.box.x * scale, o.box.y * scale, o.box.w * scale, o.box.h * scale);
    editRef.current = { annId: a.id, mask, canvas, scale };
    return editRef.current;
  };

  const paintTo = (x0: number, y0: number, x1: number, y1: number) => {
    const e = editRef.current;
    const a = sel;
    if (!e || !a || !detail) return;
    const r = brushPx / (viewRef.current?.scale ?? 1);
    const value = tool === "brush" ? 1 : 0;
    paintStroke(e.mask, detail.width, detail.height, x0, y0, x1, y1, r, value);
    const c2 = e.canvas.getContext("2d")!;
    c2.globalCompositeOperation = value ? "source-over" : "destination-out";
    c2.strokeStyle = colorOf(a, classes) + (value ? "b0" : "");
    c2.lineCap = "round";
    c2.lineWidth = 2 * r * e.scale;
    c2.beginPath();
    c2.moveTo(x0 * e.scale, y0 * e.scale);
    c2.lineTo(x1 * e.scale + 0.01, y1 * e.scale);
    c2.stroke();
    c2.globalCompositeOperation = "source-over";
    requestDraw();
  };

  const finishStroke = async () => {
    const e = editRef.current;
    const a = sel;
    if (!e || !a || !detail) return;
    const rle = encode(e.mask, detail.height, detail.width);
    const before = latest(a).mask_rle;
    const review = reviewsOf(latest(a));
    if (rle.counts === before.counts) return;
    if (runsGeometry(countsFromString(rle.counts), detail.height).area === 0) {
      notify("That would erase the whole mask — delete the object instead (Delete).", "warn");
      editRef.current = null;
      requestDraw();
      return;
    }
    replace({ ...latest(a), mask_rle: rle });
    // Recorded before the save so an immediate z finds it (the undo queues behind the save).
    const entry = { t: "mask" as const, id: a.id, rle: before, review };
    writes.history.current.record(entry);
    if (!(await saveMask(a, rle, before))) writes.history.current.discard(entry);
  };

  /** Save a whole new mask for an object (polygon edits), undoable like a stroke. */
  const applyMask = async (a: Annotation, mask: Uint8Array): Promise<boolean> => {
    if (!detail) return false;
    if (readOnly) { writes.refuseReadOnly(); return false; }
    const rle = encode(mask, detail.height, detail.width);
    const before = latest(a).mask_rle;
    const review = reviewsOf(latest(a));
    if (rle.counts === before.counts) return false;
    if (runsGeometry(countsFromString(rle.counts), detail.height).area === 0) {
      notify("That would erase the whole mask — delete the object instead (Delete).", "warn");
      return false;
    }
    if (editRef.current?.annId === a.id) editRef.current = null;
    replace({ ...latest(a), mask_rle: rle });
    const entry = { t: "mask" as const, id: a.id, rle: before, review };
    writes.history.current.record(entry);
    const ok = await saveMask(a, rle, before);
    if (!ok) writes.history.current.discard(entry);
    return ok;
  };

  const segmentBox = async (box: [number, number, number, number]) => {
    if (!detail) return;
    const clampX = (v: number) => Math.max(0, Math.min(detail.width, Math.round(v)));
    const clampY = (v: number) => Math.max(0, Math.min(detail.height, Math.round(v)));
    const [x0, y0, x1, y1] = [clampX(Math.min(box[0], box[2])), clampY(Math.min(box[1], box[3])), clampX(Math.max(box[0], box[2])), clampY(Math.max(box[1], box[3]))];
    if (x1 - x0 < 3 || y1 - y0 < 3) return;
    if (readOnly) return writes.refuseReadOnly();
    if (segmentingRef.current) return notify("SAM is still working on the previous box.", "warn");
    // The mode is read when the box is drawn: a later toggle does not change this request.
    const target = boxMode === "replace" ? sel : null;
    if (boxMode === "replace" && !target) return notify("Select the object whose mask SAM should replace, or switch to \"new object\" (t).", "warn");
    segmentingRef.current = true;
    setSegmenting(true);
    try {
      const res = await post<SegmentResult>(`${P(pid)}/images/${imageId}/segment/`, { box: [x0, y0, x1, y1] });
      if (target) {
        if (editRef.current?.annId === target.id) editRef.current = null;
        const before = latest(target).mask_rle;
        const review = reviewsOf(latest(target));
        replace({ ...latest(target), mask_rle: res.mask_rle });
        if (await saveMask(target, res.mask_rle, before)) writes.history.current.record({ t: "mask", id: target.id, rle: before, review });
      } else {
        // The proposal token makes the server attach its own copy of the gallery's evidence.
        const created = await post<Annotation>(`${P(pid)}/annotations/`, {
          image: imageId, label_class: res.label_class ?? null, mask_rle: res.mask_rle, proposal: res.proposal ?? null,
        });
        updateAnns((list) => [...list, created]);
        setSelId(created.id);
        writes.history.current.record({ t: "delete", id: created.id });
        notify(res.label_class ? `New object: ${res.class_name ?? "class"} proposed from the gallery (pending review).` : `New object added without a class: no gallery match. ${created.candidates?.length ? `Pick one with 1–${Math.min(9, created.candidates.length)} or /.` : "Press / to pick one."}`);
      }
    } catch (e) {
      const refused = claimRefusal(e);
      if (refused) {
        setClaim({ state: "other", by: refused.by });
        notify(claimMessage(refused, "the new object"), "error");
      } else if (e instanceof ApiError && e.status === 405) notify("Box → SAM mask isn't available on this server yet.", "warn");
      else notify(`SAM couldn't segment that box: ${(e as Error).message}`, "error");
    } finally {
      segmentingRef.current = false;
      setSegmenting(false);
    }
  };

  return { unsaved, startEdit, paintTo, finishStroke, segmentBox, applyMask, boxMode, setBoxMode, segmenting };
}
