/**
 * Pointer input on the stage: click selects the smallest mask under the pointer, drag pans
 * (Shift/middle/right-drag with any tool), the brush and eraser paint, the box tool asks SAM, the
 * click tool's clicks are SAM points (right/Shift: background; dragged, they pan), the wheel zooms.
 */
import { useMemo, type RefObject } from "react";
import type { Annotation, ImageDetail } from "../api/client";
import { countsFromString, hitTest, panBy, runsGeometry, toImage, zoomAt, type HitObject } from "../canvas";
import { notify } from "../notify";
import type { Tool } from "./StageBar";
import type { useClickRefine } from "./useClickRefine";
import type { useMaskEditor } from "./useMaskEditor";
import type { usePolygonTool } from "./usePolygonTool";
import type { useStage } from "./useStage";

export function useStagePointer(opts: {
  canvasRef: RefObject<HTMLCanvasElement | null>; stage: ReturnType<typeof useStage>; editor: ReturnType<typeof useMaskEditor>;
  detail: ImageDetail | null; anns: Annotation[]; sel: Annotation | null; tool: Tool; readOnly: boolean;
  refuseReadOnly: () => void; selectObject: (id: number | null) => void; polygon: ReturnType<typeof usePolygonTool>;
  refine: ReturnType<typeof useClickRefine>;
}) {
  const { canvasRef, stage, editor, detail, anns, sel, tool, readOnly, refuseReadOnly, selectObject, polygon, refine } = opts;
  const { viewRef, dragRef, cursorRef, requestDraw } = stage;

  const localXY = (ev: React.PointerEvent | React.WheelEvent) => {
    const r = canvasRef.current!.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top] as [number, number];
  };
  const hitObjects = useMemo<HitObject[]>(() => anns.map((a) => {
    const runs = countsFromString(a.mask_rle.counts);
    return { id: a.id, runs, ...runsGeometry(runs, a.mask_rle.size[0]) };
  }), [anns]);

  const onPointerDown = (ev: React.PointerEvent) => {
    if (!viewRef.current || !detail) return;
    (ev.target as Element).setPointerCapture(ev.pointerId);
    const [sx, sy] = localXY(ev);
    const [ix, iy] = toImage(viewRef.current, sx, sy);
    if (tool === "click" && ev.button !== 1) {
      if (readOnly) return refuseReadOnly();
      dragRef.current = { kind: "refine", sx, sy, lx: sx, ly: sy, moved: false, negative: ev.button === 2 || ev.shiftKey };
      return;
    }
    const pan = ev.button === 1 || ev.button === 2 || ev.shiftKey;
    if (!pan && (tool === "brush" || tool === "eraser")) {
      if (!sel) return notify("Select an object first (click it or press Tab).", "warn");
      if (readOnly) return refuseReadOnly();
      editor.startEdit(sel);
      dragRef.current = { kind: "paint", sx, sy, lx: ix, ly: iy, moved: false };
      editor.paintTo(ix, iy, ix, iy);
    } else if (!pan && tool === "polygon") {
      if (polygon.down(ix, iy, ev)) dragRef.current = { kind: "poly", sx, sy, lx: ix, ly: iy, moved: false };
    } else if (!pan && tool === "box") {
      if (readOnly) return refuseReadOnly();
      dragRef.current = { kind: "box", sx, sy, lx: ix, ly: iy, moved: false, box: [ix, iy, ix, iy] };
    } else {
      dragRef.current = { kind: pan ? "pan" : "click", sx, sy, lx: sx, ly: sy, moved: false };
    }
  };
  const onPointerMove = (ev: React.PointerEvent) => {
    if (!viewRef.current) return;
    const [sx, sy] = localXY(ev);
    const [ix, iy] = toImage(viewRef.current, sx, sy);
    cursorRef.current = [ix, iy];
    const d = dragRef.current;
    if (d) {
      if (Math.hypot(sx - d.sx, sy - d.sy) > 3) d.moved = true;
      if (d.kind === "paint") {
        editor.paintTo(d.lx, d.ly, ix, iy);
        d.lx = ix;
        d.ly = iy;
      } else if (d.kind === "poly") {
        polygon.move(ix, iy);
      } else if (d.kind === "box") {
        d.box = [d.box![0], d.box![1], ix, iy];
      } else if (d.moved) {
        d.kind = "pan"; // a dragged click (or refine click) pans
        viewRef.current = panBy(viewRef.current, sx - d.lx, sy - d.ly);
        d.lx = sx;
        d.ly = sy;
      }
    }
    requestDraw();
  };
  const onPointerUp = (ev: React.PointerEvent) => {
    const d = dragRef.current;
    dragRef.current = null;
    if (!d || !viewRef.current || !detail) return;
    if (d.kind === "paint") void editor.finishStroke();
    else if (d.kind === "poly") polygon.up();
    else if (d.kind === "box" && d.box) void editor.segmentBox(d.box);
    else if (d.kind === "refine" && !d.moved) {
      const [sx, sy] = localXY(ev);
      const [ix, iy] = toImage(viewRef.current, sx, sy);
      refine.click(ix, iy, !d.negative);
    }
    else if (d.kind === "click" && !d.moved) {
      const [sx, sy] = localXY(ev);
      const [ix, iy] = toImage(viewRef.current, sx, sy);
      const id = hitTest(hitObjects, detail.height, detail.width, ix, iy);
      selectObject(id);
    }
    requestDraw();
  };
  const onPointerLeave = () => {
    cursorRef.current = null;
    requestDraw();
  };
  const onWheel = (ev: React.WheelEvent) => {
    if (!viewRef.current) return;
    const [sx, sy] = localXY(ev);
    viewRef.current = zoomAt(viewRef.current, sx, sy, Math.exp(-ev.deltaY * 0.0015));
    requestDraw();
  };

  return { onPointerDown, onPointerMove, onPointerUp, onPointerLeave, onWheel };
}
