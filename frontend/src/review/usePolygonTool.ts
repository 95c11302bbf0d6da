/**
 * The polygon tool: click vertices, close on the first vertex or Enter (Esc cancels, Backspace
 * drops the last vertex). A plain polygon is a new object (sent as the API's `polygons`); with Alt
 * held at the first click it cuts a hole in the selected mask, with Ctrl it adds to it. With an
 * object selected and no polygon in progress, its outline's vertices can be dragged, and
 * Alt+click deletes one; the mask is re-rasterized keeping its holes and other parts.
 */
import { useEffect, useRef } from "react";
import { retryable } from "../api/access";
import { ApiError, newKey, P, postOnce, type Annotation, type ImageDetail } from "../api/client";
import { coversAPixel, decode, fillPolygon, nearestVertex, outerContour, replaceOutline, type Pt } from "../canvas";
import { dismiss, notify } from "../notify";
import { claimMessage, claimRefusal } from "./rules";
import type { Tool } from "./StageBar";
import type { useAnnotationWrites } from "./useAnnotationWrites";
import type { ClaimState } from "./useClaim";
import type { useMaskEditor } from "./useMaskEditor";
import type { useStage } from "./useStage";

const HANDLE_PX = 8;

export function usePolygonTool(opts: {
  pid: number; imageId: number; detail: ImageDetail | null; sel: Annotation | null; tool: Tool; readOnly: boolean;
  stage: ReturnType<typeof useStage>; editor: ReturnType<typeof useMaskEditor>; writes: ReturnType<typeof useAnnotationWrites>;
  updateAnns: (fn: (list: Annotation[]) => Annotation[]) => void; setSelId: (id: number | null) => void; setClaim: (c: ClaimState) => void;
}) {
  const { pid, imageId, detail, sel, tool, readOnly, stage, editor, writes, updateAnns, setSelId, setClaim } = opts;
  const { polyRef, viewRef, requestDraw } = stage;
  /** The outline as traced from the saved mask: what a vertex edit replaces. */
  const baseRef = useRef<Pt[] | null>(null);
  const dragVertex = useRef<number>(-1);
  const modeRef = useRef<"new" | "hole" | "add">("new");
  // The new object's Idempotency-Key, kept with its outline: sent again (Enter after a failure),
  // the server answers the object the first try made if that one did arrive.
  const createKey = useRef<{ pts: Pt[]; key: string; note?: number } | null>(null);
  /** The outline kept for a resend is gone (sent, dropped with Esc, another tool or image): its
   * "press Enter to send it again" goes too, or Enter, as it said, accepted the whole image. */
  const forgetResend = () => {
    if (createKey.current?.note !== undefined) dismiss(createKey.current.note);
    createKey.current = null;
  };
  useEffect(() => forgetResend, [imageId]); // eslint-disable-line react-hooks/exhaustive-deps

  // The selected object's outline, traced again whenever its mask changes.
  useEffect(() => {
    const p = polyRef.current;
    if (tool !== "polygon" || !sel || !detail) {
      p.outline = null;
      baseRef.current = null;
    } else {
      const eps = Math.max(1, Math.max(detail.width, detail.height) / 600);
      const pts = outerContour(decode(sel.mask_rle), detail.width, detail.height, eps);
      p.outline = pts ? pts.map((q) => [...q] as Pt) : null;
      baseRef.current = pts;
    }
    if (tool !== "polygon") {
      p.draft = null;
      forgetResend();
    }
    requestDraw();
  }, [tool, sel?.id, sel?.mask_rle.counts, detail?.id]);

  const radius = () => HANDLE_PX / (viewRef.current?.scale ?? 1);

  /** Pointer down on the stage with the polygon tool; true when a vertex drag started. */
  const down = (x: number, y: number, ev: { altKey: boolean; ctrlKey: boolean; metaKey: boolean }): boolean => {
    if (readOnly) { writes.refuseReadOnly(); return false; }
    const p = polyRef.current;
    if (p.draft) {
      if (p.draft.length >= 3 && nearestVertex([p.draft[0]], x, y, radius()) === 0) void close();
      else p.draft = [...p.draft, [x, y]];
      requestDraw();
      return false;
    }
    const hit = p.outline ? nearestVertex(p.outline, x, y, radius()) : -1;
    if (hit >= 0 && ev.altKey) {
      if (p.outline!.length <= 3) { notify("An outline needs at least 3 vertices — delete the object instead.", "warn"); return false; }
      p.outline = p.outline!.filter((_, i) => i !== hit);
      void commitOutline();
      return false;
    }
    if (hit >= 0) {
      dragVertex.current = hit;
      return true;
    }
    modeRef.current = ev.altKey ? "hole" : ev.ctrlKey || ev.metaKey ? "add" : "new";
    if (modeRef.current !== "new" && !sel) {
      notify("Select the object to cut a hole in (Alt) or add to (Ctrl) first.", "warn");
      return false;
    }
    p.draft = [[x, y]];
    p.hole = modeRef.current === "hole";
    requestDraw();
    return false;
  };

  const move = (x: number, y: number) => {
    const p = polyRef.current;
    if (dragVertex.current < 0 || !p.outline || !detail) return;
    const clamped: Pt = [Math.max(0, Math.min(detail.width, x)), Math.max(0, Math.min(detail.height, y))];
    p.outline = p.outline.map((q, i) => (i === dragVertex.current ? clamped : q));
    requestDraw();
  };

  const up = () => {
    if (dragVertex.current < 0) return;
    dragVertex.current = -1;
    void commitOutline();
  };

  const commitOutline = async () => {
    const p = polyRef.current;
    if (!sel || !detail || !p.outline || !baseRef.current) return;
    const mask = replaceOutline(decode(sel.mask_rle), detail.width, detail.height, baseRef.current, p.outline);
    const ok = await editor.applyMask(sel, mask);
    if (!ok) p.outline = baseRef.current.map((q) => [...q] as Pt); // back to the saved outline
    requestDraw();
  };

  const close = async () => {
    const p = polyRef.current;
    const pts = p.draft;
    if (!pts || pts.length < 3 || !detail) return notify("A polygon needs at least 3 vertices.", "warn");
    // Drawn on the margin beside the picture: the server refuses it in its own words. It stays drawn to mend.
    if (!coversAPixel(detail.width, detail.height, pts)) {
      return notify("The polygon lies outside the image. Draw it over the image (Backspace drops the last vertex, Esc the outline).", "warn");
    }
    p.draft = null;
    requestDraw();
    const mode = modeRef.current;
    if (mode !== "new") {
      if (!sel) return;
      const mask = decode(sel.mask_rle);
      fillPolygon(mask, detail.width, detail.height, pts, mode === "hole" ? 0 : 1);
      await editor.applyMask(sel, mask);
      return;
    }
    if (createKey.current?.pts !== pts) {
      forgetResend();
      createKey.current = { pts, key: newKey() };
    } else if (createKey.current.note !== undefined) dismiss(createKey.current.note);
    try {
      const created = await postOnce<Annotation>(`${P(pid)}/annotations/`,
        { image: imageId, label_class: null, polygons: [pts.flat().map((v) => Math.round(v * 10) / 10)] }, createKey.current.key);
      forgetResend();
      updateAnns((list) => [...list.filter((a) => a.id !== created.id), created]);
      setSelId(created.id);
      writes.history.current.record({ t: "delete", id: created.id });
      notify("New object from the polygon — give it a class (/ to search).");
    } catch (e) {
      const refused = claimRefusal(e);
      if (refused) {
        setClaim({ state: "other", by: refused.by });
        notify(claimMessage(refused, "the new object"), "error");
      } else if (retryable(e) && !polyRef.current.draft && tool === "polygon") {
        // The outline was dropped with the failure: it stays drawn, and Enter sends it again.
        polyRef.current.draft = pts;
        requestDraw();
        createKey.current!.note = notify(`Couldn't save the polygon: ${e instanceof ApiError ? e.message : String(e)} `
          + "It is still drawn: press Enter to send it again (Esc drops it).", "error");
      } else notify(`Couldn't save the polygon: ${e instanceof ApiError ? e.message : String(e)}`, "error");
    }
  };

  /** Keys while a polygon is being drawn; true when the key was used. */
  const key = (k: string): boolean => {
    const p = polyRef.current;
    if (tool !== "polygon" || !p.draft) return false;
    if (k === "Enter") void close();
    else if (k === "Escape") {
      p.draft = null;
      forgetResend();
    }
    else if (k === "Backspace" || k === "Delete") p.draft = p.draft.length > 1 ? p.draft.slice(0, -1) : null;
    else return false;
    requestDraw();
    return true;
  };

  return { down, move, up, key };
}
