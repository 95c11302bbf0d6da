/**
 * The review workspace: image + mask overlays on one canvas (zoom/pan), the object list with
 * scores and top-k candidates, keyboard-first review, brush/eraser/box→SAM/click→SAM mask fixes, claims
 * with heartbeat and live updates from other reviewers. The parts live in the use* hooks beside it.
 */
import { useEffect, useRef, useState } from "react";
import { type Annotation, type ImageDetail } from "../api/client";
import { subscribe } from "../api/live";
import { currentNotes, dismiss, dismissWhere, notify } from "../notify";
import type { ProjectCtx } from "../pages/ProjectLayout";
import { addNavigationGuard, Link } from "../router";
import { useUnsavedGuard } from "../unsavedGuard";
import { HelpOverlay } from "./Help";
import { HistoryPanel } from "./HistoryPanel";
import { LockIcon } from "./icons";
import { ObjectList, retiredClass } from "./ObjectList";
import { StageBar, type Tool } from "./StageBar";
import { IMAGE_GONE_MESSAGE, useAnnotationWrites } from "./useAnnotationWrites";
import { dropBundle } from "./bundle";
import { useClickRefine } from "./useClickRefine";
import { heldByOther, useClaim } from "./useClaim";
import { useImageBundle } from "./useImageBundle";
import { useLiveAnnotations } from "./useLiveAnnotations";
import { useMaskEditor } from "./useMaskEditor";
import { useOpenElsewhere } from "./useOpenElsewhere";
import { useReviewKeys } from "./useReviewKeys";
import { UNSAVED_MESSAGE, UNSAVED_REVIEW_MESSAGE, unsavedMessage, useReviewNavigation } from "./useReviewNavigation";
import { useStage } from "./useStage";
import { useStagePointer } from "./useStagePointer";
import { usePolygonTool } from "./usePolygonTool";
import { reviewsOf, useUndoHistory } from "./useUndoHistory";

export function Workspace({ ctx, imageId }: { ctx: ProjectCtx; imageId: number }) {
  const pid = ctx.project.id;
  const classes = ctx.classes;
  const me = ctx.me.username;
  const [selId, setSelId] = useState<number | null>(null);
  const [tool, setTool] = useState<Tool>("select");
  const [brushPx, setBrushPx] = useState(16);
  const [showOverlays, setShowOverlays] = useState(true);
  const [help, setHelp] = useState(false);
  const [historyOpen, setHistoryOpen] = useState(false);
  const [search, setSearch] = useState<string | null>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const wrapRef = useRef<HTMLDivElement>(null);

  const [claim, setClaim] = useClaim(pid, imageId, ctx.canAnnotate);
  const openElsewhere = useOpenElsewhere(pid, imageId);
  // Deleted by someone else (live event, or a 404 on it): read-only, and every way on opens the next image.
  const [gone, setGone] = useState(false);
  const [goneBy, setGoneBy] = useState<string | null>(null);
  useEffect(() => { setGone(false); setGoneBy(null); }, [pid, imageId]);
  const onImageGone = (by?: string) => {
    setGone(true);
    if (by) setGoneBy(by);
    setClaim({ state: "none" }); // nothing left to release (it would only 404)
    dropBundle(pid, imageId);
  };
  const readOnly = gone || claim.state === "other" || !ctx.canAnnotate;
  // Done when opened: an object drawn there and taken back with z leaves it done again.
  const openedDone = useRef(false);
  const onOpened = (d: ImageDetail) => {
    openedDone.current = d.status === "done";
    if (heldByOther(d, me)) setClaim((c) => (c.state === "mine" ? c : { state: "other", by: d.claimed_by! }));
    setSelId(firstPending(d.annotations));
  };
  const { detail, setDetail, anns, annsRef, updateAnns, loadError, retryLoad, pixelsError, bundleRef, pixelsRef, pixelsFor } = useImageBundle(pid, imageId, classes, canvasRef, onOpened);
  useEffect(() => setSelId(null), [pid, imageId]);
  const selIndex = anns.findIndex((a) => a.id === selId);
  const sel = selIndex >= 0 ? anns[selIndex] : null;

  const stage = useStage({ canvasRef, wrapRef, pid, imageId, detail, anns, annsRef, classes, bundleRef, pixelsRef, pixelsFor, selId, showOverlays, tool, brushPx });
  const role = ctx.project.my_role ?? "viewer";
  const writes = useAnnotationWrites({ pid, imageId, canReview: ctx.canReview, role, readOnly, claim, setClaim, annsRef, updateAnns, setSelId, gone, onImageGone });
  const writesRef = useRef(writes);
  writesRef.current = writes;
  const history = useUndoHistory({
    pid, imageId, canReview: ctx.canReview, readOnly, writes, annsRef, updateAnns, setSelId, editRef: stage.editRef, setClaim,
    openedDone: () => openedDone.current,
  });
  writes.history.current = { record: history.record, discard: history.discard, undoEntry: history.undoEntry };
  const editor = useMaskEditor({
    pid, imageId, detail, sel, classes, tool, brushPx, readOnly, bundleRef, editRef: stage.editRef, viewRef: stage.viewRef,
    requestDraw: stage.requestDraw, writes, updateAnns, setSelId, setClaim,
  });
  const selectObject = (id: number | null) => {
    if (stage.editRef.current && stage.editRef.current.annId !== id) stage.editRef.current = null;
    setSelId(id);
  };
  const step = (delta: number) => {
    if (!anns.length) return;
    const i = selIndex < 0 ? (delta > 0 ? 0 : anns.length - 1) : (selIndex + delta + anns.length) % anns.length;
    selectObject(anns[i].id);
  };
  const polygon = usePolygonTool({ pid, imageId, detail, sel, tool, readOnly, stage, editor, writes, updateAnns, setSelId, setClaim });
  const refine = useClickRefine({ pid, imageId, detail, sel, tool, readOnly, stage, editor, writes, updateAnns, setSelId, setClaim });
  const pointer = useStagePointer({ canvasRef, stage, editor, detail, anns, sel, tool, readOnly, refuseReadOnly: writes.refuseReadOnly, selectObject, polygon, refine });
  // A read-only workspace keeps only the select/pan tool.
  const pickTool = (t: Tool) => (readOnly && t !== "select" ? writes.refuseReadOnly() : setTool(t));
  useEffect(() => { if (readOnly) setTool("select"); }, [readOnly]);
  const toggleBoxMode = () => {
    if (readOnly) return writes.refuseReadOnly();
    setTool("box");
    editor.setBoxMode((m) => (m === "new" ? "replace" : "new"));
  };
  const claimRef = useRef(claim);
  claimRef.current = claim;
  useLiveAnnotations({ pid, imageId, me, annsRef, updateAnns, setDetail, setClaim, onImageGone,
    holding: () => claimRef.current.state === "mine" });
  const nav = useReviewNavigation({
    pid, imageId, detail, anns, readOnly, canReview: ctx.canReview, role, unsaved: editor.unsaved, unsavedReviews: writes.failed,
    retryUnsaved: writes.canRetry, retryAll: writes.retryAll,
    refuseReadOnly: writes.refuseReadOnly, setClaim, gone, onImageGone, updateAnns, pictureMissing: !!pixelsError,
    pictureShown: () => !!pixelsRef.current,
    heldBy: claim.state === "other" ? claim.by ?? "Another reviewer" : null,
  });
  // An unsaved mask edit or review decision: leaving through another page asks first, and so does a reload or close.
  const unsavedNow = gone ? null : unsavedMessage(editor.unsaved.size, writes.failed.size);
  // Everything saved again: "… is not saved yet" is no longer true.
  useEffect(() => {
    if (!unsavedNow) dismissWhere((n) => n.text === UNSAVED_MESSAGE || n.text === UNSAVED_REVIEW_MESSAGE);
  }, [unsavedNow]);
  useUnsavedGuard(unsavedNow && `${unsavedNow}\n\nLeave this image anyway? The change will be lost.`);
  // A polygon being drawn or a Click → SAM mask not saved yet: every way off this image (n, p,
  // Enter, a tab, Back, a reload) asks first. They were dropped without a word. Read when asked,
  // so the drafts (kept in refs, drawn by the stage) need no re-render.
  useEffect(() => {
    const draftMessage = (): string | null => {
      if (gone || readOnly) return null;
      const vertices = stage.polyRef.current.draft?.length ?? 0;
      if (vertices) return `A polygon is being drawn (${vertices} point${vertices > 1 ? "s" : ""}): close it with Enter or discard it with Esc.`;
      if (stage.refineRef.current?.points.length) return "A Click → SAM mask is not saved yet: save it with Enter or discard it with Esc.";
      return null;
    };
    const off = addNavigationGuard(() => {
      const message = draftMessage();
      return message ? `${message}\n\nLeave this image anyway? It will be lost.` : null;
    });
    const onBeforeUnload = (e: BeforeUnloadEvent) => {
      // Also a change waiting to be sent again (offline, signed out, a password to set first): a reload
      // dropped it without a word (black-box round 18b).
      if (!draftMessage() && !writesRef.current.canRetry()) return;
      e.preventDefault();
      e.returnValue = "";
    };
    window.addEventListener("beforeunload", onBeforeUnload);
    return () => {
      off();
      window.removeEventListener("beforeunload", onBeforeUnload);
    };
  }, [gone, readOnly]);
  // Changes made elsewhere reach this page: a class deleted or renamed (the picker follows), this
  // user's role (a demoted reviewer kept accept and reject, and got contradictory messages).
  useEffect(() => subscribe(pid, (ev) => {
    if (ev.type === "classes.changed") void ctx.reloadClasses();
    else if (ev.type === "membership.changed") {
      // What the old role was told ("your role can't…") no longer holds; ProjectLayout reloads the role.
      currentNotes().filter((n) => /your role/i.test(n.text)).forEach((n) => dismiss(n.id));
    }
  }), [pid]);
  const setClass = async (a: Annotation | null, classId: number) => {
    if (!a) return;
    // A suggestion whose class was deactivated since: said here, not as a failed save.
    const retired = retiredClass(classId, classes);
    if (retired) { notify(retired, "info"); return; }
    await writes.setClass(a, classId);
    setSearch(null);
  };
  useReviewKeys({
    help, sel, setHelp, setSearch, setTool: pickTool, setBrushPx, setShowOverlays, step, setClass,
    acceptAllAndNext: nav.acceptAllAndNext, review: writes.review, remove: writes.remove,
    undo: history.undo, redo: history.redo, toggleBoxMode, polygonKey: polygon.key, refineKey: refine.key,
    toggleHistory: () => setHistoryOpen((o) => !o),
    fit: stage.fit, zoomCenter: stage.zoomCenter, skip: nav.skip, previous: nav.previous,
  });

  const readOnlyReason = gone
    ? `${goneBy ? `This image was deleted by ${goneBy}.` : IMAGE_GONE_MESSAGE} Nothing on it can be changed.`
    : !ctx.canAnnotate
    ? `Read-only: your role (${ctx.project.my_role ?? "viewer"}) can only view this project.`
    : `Read-only: ${claim.by ?? "another reviewer"} has this image open. You can look, but changes are off until they move on.`;
  const pending = anns.filter((a) => a.class_review === "pending" || a.mask_review === "pending").length;
  const searchResults = search === null ? [] : classes.filter((c) => c.active !== false && c.name.toLowerCase().includes(search.toLowerCase())).slice(0, 12);
  if (loadError)
    return (
      <main className="page">
        <p className="error" role="alert">{loadError}</p>
        <p className="row">
          {!loadError.startsWith("This image doesn't exist") && <button type="button" onClick={retryLoad} data-testid="retry-load">Try again</button>}
          <Link to={`/p/${pid}/review`}>Go to the next image in the queue</Link>
        </p>
      </main>
    );

  return (
    <div className={`workspace${readOnly ? " read-only" : ""}`} data-testid="workspace" data-read-only={readOnly ? "true" : "false"} data-gone={gone ? "true" : undefined}>
      <div className="stage">
        <StageBar tool={tool} brushPx={brushPx} showOverlays={showOverlays} readOnly={readOnly} onTool={pickTool} onFit={stage.fit}
          boxMode={editor.boxMode} onBoxMode={editor.setBoxMode} segmenting={editor.segmenting}
          refining={refine.busy} refineInfo={refine.info}
          canUndo={history.canUndo} canRedo={history.canRedo} onUndo={() => void history.undo()} onRedo={() => void history.redo()}
          onToggleOverlays={() => setShowOverlays((s) => !s)} onHelp={() => setHelp(true)} />
        {/* The bar and its hint row sit above the picture, not over it (one row each down to 1280 px). */}
        <div className="stage-view" ref={wrapRef}>
        <canvas
          ref={canvasRef}
          data-testid="review-canvas"
          className={readOnly ? "tool-read-only" : `tool-${tool}`}
          style={tool === "click" && !readOnly ? { cursor: "crosshair" } : undefined}
          title={readOnly ? readOnlyReason : undefined}
          onPointerDown={pointer.onPointerDown}
          onPointerMove={pointer.onPointerMove}
          onPointerUp={pointer.onPointerUp}
          onPointerLeave={pointer.onPointerLeave}
          onWheel={pointer.onWheel}
          onContextMenu={(e) => e.preventDefault()}
        />
        {!detail && <div className="stage-msg">Loading…</div>}
        {detail && pixelsError && (
          <div className="stage-msg stage-error" role="alert" data-testid="pixels-error">
            {pixelsError} The objects are listed, but nothing can be accepted unseen.
            <button type="button" onClick={retryLoad} data-testid="retry-pixels">Try again</button>
          </div>
        )}
        </div>
      </div>
      <aside className="side">
        <div className="side-head">
          <div>
            <b title={detail?.original_name}>{detail?.original_name ?? "…"}</b>
            <div className="muted small">
              #{imageId} · {detail ? `${detail.width}×${detail.height}` : ""} · <span data-testid="image-status">{detail?.status.replace("_", " ")}</span> · {pending} pending
            </div>
          </div>
          {readOnly && (
            <div className="lock read-only-banner" role="status" data-testid="locked">
              <LockIcon /> <span data-testid="read-only-reason">{readOnlyReason}</span>
              {gone && <button className="primary" onClick={nav.skip} data-testid="gone-next">Next image <kbd>Enter</kbd></button>}
            </div>
          )}
          {!readOnly && !ctx.canReview && <div className="muted small">Your role can't accept or reject.</div>}
          {openElsewhere && !gone && (
            <div className="lock" role="status" data-testid="open-elsewhere">
              This image is also open in another tab of yours. Changes made there show here; an edit made on an older state is refused, not saved over them.
            </div>
          )}
          {ctx.canReview || readOnly ? (
            <button className="primary wide" onClick={nav.acceptAllAndNext} disabled={nav.busy || readOnly || !detail || !ctx.canReview} data-testid="accept-all">
              {/* Read-only, Enter is "Next image" above (or nothing): no second Enter badge. */}
              Accept all &amp; next image {!readOnly && ctx.canReview && <kbd>Enter</kbd>}
            </button>
          ) : (
            <button className="primary wide" onClick={nav.acceptAllAndNext} disabled={nav.busy || !detail} data-testid="done-next"
              title={`Your role (${role}) can't accept or reject; a reviewer or admin does. Your changes are saved as you make them.`}>
              Done, next image <kbd>Enter</kbd>
            </button>
          )}
          <div className="row small">
            <button onClick={nav.skip}>Skip <kbd>n</kbd></button>
            <button onClick={() => setHistoryOpen((o) => !o)} aria-pressed={historyOpen} data-testid="history-toggle">History <kbd>i</kbd></button>
            <a href={`/p/${pid}/review?filters`} data-testid="queue-link" onClick={(e) => {
              if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
              e.preventDefault();
              nav.toQueue();
            }}>Queue</a>
          </div>
        </div>
        {search !== null && (
          <div className="class-search">
            <input autoFocus placeholder="Search classes… (Enter picks the first)" value={search} aria-label="search classes"
              onChange={(e) => setSearch(e.target.value)}
              onKeyDown={(e) => { if (e.key === "Enter" && searchResults[0]) void setClass(sel, searchResults[0].id); }} />
            <ul>
              {searchResults.length === 0 && search.trim() !== "" && (
                <li className="muted small" data-testid="class-search-empty">No active class matches “{search.trim()}”.</li>
              )}
              {searchResults.map((c) => (
                <li key={c.id}><button className="link" onClick={() => void setClass(sel, c.id)}><i className="swatch" style={{ background: c.color }} />{c.name}</button></li>
              ))}
            </ul>
          </div>
        )}
        {historyOpen && (
          <HistoryPanel pid={pid} imageId={imageId} sel={sel} anns={anns} classes={classes} readOnly={readOnly}
            refuseReadOnly={writes.refuseReadOnly} onClose={() => setHistoryOpen(false)}
            onRestored={(a, before) => {
              if (stage.editRef.current?.annId === a.id) stage.editRef.current = null;
              writes.replace(a);
              // z takes the restore back (class and mask as they were before it)
              history.record({ t: "shape", id: a.id, classId: before.label_class ?? null, rle: before.mask_rle, review: reviewsOf(before) });
            }} />
        )}
        <div className="object-list-wrap" aria-disabled={readOnly}>
        <ObjectList anns={anns} pid={pid} classes={classes} selId={selId} loaded={!!detail} canReview={ctx.canReview} readOnly={readOnly} unsaved={editor.unsaved}
          notSaved={writes.failed}
          edited={writes.edited} onSelect={selectObject} onReview={writes.review} onClass={setClass} onDelete={writes.remove} />
        </div>
      </aside>
      {help && <HelpOverlay onClose={() => setHelp(false)} />}
    </div>
  );
}

function firstPending(anns: Annotation[]): number | null {
  return (anns.find((a) => a.class_review === "pending" || a.mask_review === "pending") ?? anns[0])?.id ?? null;
}
