/**
 * Mask fixes on the selected object: brush/eraser strokes, undo/redo (each step saved), and
 * box → SAM 2, which replaces the selected mask or adds a new object. A mask the server has not
 * accepted yet stays "unsaved" and blocks moving on.
 */
import { useEffect, useRef, useState, type RefObject } from "react";
import { ApiError, P, patch, post, type Annotation, type ImageDetail, type LabelClass, type Rle } from "../api/client";
import type { SegmentResult } from "../api/extra";
import { countsFromString, decode, encode, paintStroke, runsGeometry, UndoStack, type View } from "../canvas";
import { notify } from "../notify";
import { colorOf, type Bundle } from "./bundle";
import { claimMessage, claimRefusal } from "./rules";
import type { Tool } from "./StageBar";
import type { ClaimState } from "./useClaim";
import type { EditSession } from "./useStage";
import type { useAnnotationWrites } from "./useAnnotationWrites";

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
  const undoStacks = useRef(new Map<number, UndoStack<Rle>>());

  useEffect(() => setUnsaved(new Map()), [pid, imageId]);

  const stackOf = (id: number) => {
    let st = undoStacks.current.get(id);
    if (!st) undoStacks.current.set(id, (st = new UndoStack<Rle>(30)));
    return st;
  };
  const forget = (id: number) => setUnsaved((m) => { const n = new Map(m); n.delete(id); return n; });

  const saveMask = async (a: Annotation, rle: Rle) => {
    setUnsaved((m) => new Map(m).set(a.id, rle));
    const run = async () => {
      const ok = await write(a, "the mask", () => patch<Annotation>(`${P(pid)}/annotations/${a.id}/`, { version: latest(a).version, mask_rle: rle }), run);
      if (ok) forget(a.id);
      else if (editRef.current?.annId === a.id) {
        // A conflict reloaded the object: drop the edit session so the current mask shows.
        const cur = latest(a);
        if (cur.mask_rle.counts !== rle.counts) { editRef.current = null; forget(a.id); }
      }
      requestDraw();
    };
    await run();
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
    if (rle.counts === before.counts) return;
    if (runsGeometry(countsFromString(rle.counts), detail.height).area === 0) {
      notify("That would erase the whole mask — delete the object instead (Delete).", "warn");
      editRef.current = null;
      requestDraw();
      return;
    }
    stackOf(a.id).push(before);
    replace({ ...latest(a), mask_rle: rle });
    await saveMask(a, rle);
  };

  const undoEdit = async (redo = false) => {
    const a = sel;
    if (!a || !detail) return;
    const stack = stackOf(a.id);
    const cur = latest(a).mask_rle;
    const target = redo ? stack.redo(cur) : stack.undo(cur);
    if (!target) return notify(redo ? "Nothing to redo." : "Nothing to undo.");
    editRef.current = null; // the restored mask is drawn from its new overlay bitmap
    replace({ ...latest(a), mask_rle: target });
    await saveMask(a, target);
  };

  const segmentBox = async (box: [number, number, number, number]) => {
    if (!detail) return;
    const clampX = (v: number) => Math.max(0, Math.min(detail.width, Math.round(v)));
    const clampY = (v: number) => Math.max(0, Math.min(detail.height, Math.round(v)));
    const [x0, y0, x1, y1] = [clampX(Math.min(box[0], box[2])), clampY(Math.min(box[1], box[3])), clampX(Math.max(box[0], box[2])), clampY(Math.max(box[1], box[3]))];
    if (x1 - x0 < 3 || y1 - y0 < 3) return;
    if (readOnly) return writes.refuseReadOnly();
    try {
      notify("Asking SAM for a mask…");
      const res = await post<SegmentResult>(`${P(pid)}/images/${imageId}/segment/`, { box: [x0, y0, x1, y1] });
      if (sel) {
        editRef.current = null;
        stackOf(sel.id).push(latest(sel).mask_rle);
        replace({ ...latest(sel), mask_rle: res.mask_rle });
        await saveMask(sel, res.mask_rle);
      } else {
        const created = await post<Annotation>(`${P(pid)}/annotations/`, { image: imageId, label_class: classes.find((c) => c.active !== false)?.id ?? null, mask_rle: res.mask_rle });
        updateAnns((list) => [...list, created]);
        setSelId(created.id);
      }
    } catch (e) {
      const refused = claimRefusal(e);
      if (refused) {
        setClaim({ state: "other", by: refused.by });
        notify(claimMessage(refused, "the new object"), "error");
      } else if (e instanceof ApiError && (e.status === 404 || e.status === 405)) notify("Box → SAM mask isn't available on this server yet.", "warn");
      else notify(`SAM couldn't segment that box: ${(e as Error).message}`, "error");
    }
  };

  return { unsaved, startEdit, paintTo, finishStroke, undoEdit, segmentBox };
}
