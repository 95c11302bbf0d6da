/**
 * The review workspace: image + mask overlays on one canvas (zoom/pan), the object list with
 * scores and top-k candidates, keyboard-first review, brush/eraser/box→SAM mask fixes, claims
 * with heartbeat and live updates from other reviewers.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, del, get, P, patch, post, type Annotation, type ImageDetail, type Rle } from "../api/client";
import type { Claim, SegmentResult } from "../api/extra";
import { subscribe } from "../api/live";
import {
  countsFromString, decode, encode, fitView, hitTest, paintStroke, panBy, runsGeometry, toImage, UndoStack, zoomAt,
  type HitObject, type View,
} from "../canvas";
import { notify } from "../notify";
import type { ProjectCtx } from "../pages/ProjectLayout";
import { Link, navigate } from "../router";
import { colorOf, dropBundle, loadBundle, syncOverlays, type Bundle } from "./bundle";
import { markSkipped, nextImageId, queueFilters } from "./queue";
import { HelpOverlay } from "./Help";
import { awaitsReview, claimMessage, claimRefusal } from "./rules";

type Tool = "select" | "brush" | "eraser" | "box";
interface EditSession {
  annId: number;
  mask: Uint8Array;
  canvas: HTMLCanvasElement; // preview at overlay scale
  scale: number;
}
declare global {
  interface Window {
    __razmetka?: { imageId: number; overlayMs: number; imageMs: number; overlays: number };
    __razmetkaDrawMs?: number[];
  }
}

const HEARTBEAT_MS = 30000;

export function Workspace({ ctx, imageId }: { ctx: ProjectCtx; imageId: number }) {
  const pid = ctx.project.id;
  const classes = ctx.classes;
  const [detail, setDetail] = useState<ImageDetail | null>(null);
  const [anns, setAnns] = useState<Annotation[]>([]);
  const [selId, setSelId] = useState<number | null>(null);
  const [tool, setTool] = useState<Tool>("select");
  const [brushPx, setBrushPx] = useState(16);
  const [showOverlays, setShowOverlays] = useState(true);
  const [help, setHelp] = useState(false);
  const [search, setSearch] = useState<string | null>(null);
  const [loadError, setLoadError] = useState("");
  const [claim, setClaim] = useState<{ state: "mine" | "other" | "none" | "pending"; by?: string }>({ state: "pending" });
  const [busy, setBusy] = useState(false);
  const [unsaved, setUnsaved] = useState<Map<number, Rle>>(new Map());
  /** Objects this annotator changed here: the server left them pending review. */
  const [edited, setEdited] = useState<Set<number>>(new Set());
  const [, setFrame] = useState(0);

  const canvasRef = useRef<HTMLCanvasElement>(null);
  const wrapRef = useRef<HTMLDivElement>(null);
  const bundleRef = useRef<Bundle | null>(null);
  const pixelsRef = useRef<{ full: ImageBitmap; small: ImageBitmap | null } | null>(null);
  const viewRef = useRef<View | null>(null);
  const editRef = useRef<EditSession | null>(null);
  const dragRef = useRef<{ kind: "pan" | "paint" | "box" | "click"; sx: number; sy: number; lx: number; ly: number; moved: boolean; box?: [number, number, number, number] } | null>(null);
  const cursorRef = useRef<[number, number] | null>(null);
  const annsRef = useRef<Annotation[]>([]);
  /** The object list, updated synchronously so queued writes always read the newest version. */
  const updateAnns = (fn: (list: Annotation[]) => Annotation[]) => {
    annsRef.current = fn(annsRef.current);
    setAnns(annsRef.current);
  };
  const chains = useRef(new Map<number, Promise<unknown>>());
  const historyRef = useRef<number[]>([]);
  const rafRef = useRef(0);

  const readOnly = claim.state === "other" || !ctx.canAnnotate;
  const sorted = anns;
  const selIndex = sorted.findIndex((a) => a.id === selId);
  const sel = selIndex >= 0 ? sorted[selIndex] : null;

  // ---------------------------------------------------------------- drawing
  const draw = useCallback(() => {
    rafRef.current = 0;
    const canvas = canvasRef.current;
    const d = bundleRef.current && detail;
    if (!canvas || !d) return;
    const started = performance.now();
    const ctx2 = canvas.getContext("2d")!;
    const dpr = window.devicePixelRatio || 1;
    ctx2.setTransform(1, 0, 0, 1, 0, 0);
    ctx2.fillStyle = "#1f2329";
    ctx2.fillRect(0, 0, canvas.width, canvas.height);
    let v = viewRef.current;
    if (!v) v = viewRef.current = fitView(d.width, d.height, canvas.width / dpr, canvas.height / dpr);
    ctx2.setTransform(v.scale * dpr, 0, 0, v.scale * dpr, v.tx * dpr, v.ty * dpr);
    const px = pixelsRef.current;
    if (px) {
      ctx2.imageSmoothingEnabled = v.scale < 2;
      const img = px.small && v.scale * dpr < px.small.width / d.width ? px.small : px.full;
      ctx2.drawImage(img, 0, 0, d.width, d.height);
    }
    ctx2.imageSmoothingEnabled = false;
    const overlays = bundleRef.current!.overlays;
    const edit = editRef.current;
    if (showOverlays) {
      for (const a of annsRef.current) {
        const selected = a.id === selId;
        ctx2.globalAlpha = a.mask_review === "rejected" ? 0.25 : selected ? 1 : selId !== null ? 0.6 : 0.85;
        if (edit && edit.annId === a.id) {
          ctx2.drawImage(edit.canvas, 0, 0, d.width, d.height);
          continue;
        }
        const o = overlays.get(a.id);
        if (o?.bitmap && o.box) ctx2.drawImage(o.bitmap, o.box.x, o.box.y, o.box.w, o.box.h);
      }
      ctx2.globalAlpha = 1;
    }
    const s = annsRef.current.find((a) => a.id === selId);
    if (s?.bbox) {
      const [x, y, w, h] = s.bbox;
      ctx2.lineWidth = 2 / v.scale;
      ctx2.setLineDash([6 / v.scale, 4 / v.scale]);
      ctx2.strokeStyle = "#fff";
      ctx2.strokeRect(x, y, w, h);
      ctx2.setLineDash([]);
    }
    const drag = dragRef.current;
    if (drag?.box) {
      const [x0, y0, x1, y1] = drag.box;
      ctx2.lineWidth = 2 / v.scale;
      ctx2.strokeStyle = "#facc15";
      ctx2.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    }
    const cur = cursorRef.current;
    if (cur && (tool === "brush" || tool === "eraser")) {
      ctx2.lineWidth = 1.5 / v.scale;
      ctx2.strokeStyle = tool === "brush" ? "#fff" : "#f87171";
      ctx2.beginPath();
      ctx2.arc(cur[0], cur[1], brushPx / v.scale, 0, Math.PI * 2);
      ctx2.stroke();
    }
    const times = (window.__razmetkaDrawMs ??= []);
    times.push(performance.now() - started);
    if (times.length > 200) times.shift();
  }, [detail, selId, showOverlays, tool, brushPx]);

  const requestDraw = useCallback(() => {
    if (!rafRef.current) rafRef.current = requestAnimationFrame(draw);
  }, [draw]);
  useEffect(() => requestDraw(), [requestDraw, anns]);

  useEffect(() => {
    const wrap = wrapRef.current, canvas = canvasRef.current;
    if (!wrap || !canvas) return;
    const ro = new ResizeObserver(() => {
      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.max(1, Math.round(wrap.clientWidth * dpr));
      canvas.height = Math.max(1, Math.round(wrap.clientHeight * dpr));
      requestDraw();
    });
    ro.observe(wrap);
    return () => ro.disconnect();
  }, [requestDraw]);

  // ---------------------------------------------------------------- loading
  useEffect(() => {
    let cancelled = false;
    const t0 = performance.now();
    setLoadError("");
    setDetail(null);
    updateAnns(() => []);
    chains.current.clear();
    setSelId(null);
    editRef.current = null;
    pixelsRef.current = null;
    viewRef.current = null;
    setUnsaved(new Map());
    const b = loadBundle(pid, imageId, classes);
    bundleRef.current = b;
    if (canvasRef.current) delete canvasRef.current.dataset.overlaysReady;
    b.detail
      .then((d) => {
        if (cancelled) return;
        setDetail(d);
        updateAnns(() => d.annotations);
        if (d.claimed_by && d.claimed_by !== ctx.me.username && d.claim_expires_at && Date.parse(d.claim_expires_at) > Date.now())
          setClaim((c) => (c.state === "mine" ? c : { state: "other", by: d.claimed_by! }));
        setSelId(firstPending(d.annotations));
        return b.overlaysDone!.then(() => {
          if (cancelled) return;
          const overlayMs = performance.now() - t0;
          window.__razmetka = { ...(window.__razmetka ?? { imageMs: 0 }), imageId, overlayMs, overlays: b.overlays.size };
          if (canvasRef.current) canvasRef.current.dataset.overlaysReady = String(imageId);
          setFrame((f) => f + 1);
        });
      })
      .catch((e) => !cancelled && setLoadError(e instanceof ApiError && e.status === 404 ? "This image doesn't exist (it may have been deleted)." : `Couldn't open the image: ${e.message}`));
    b.pixels
      .then((px) => {
        if (cancelled) return;
        pixelsRef.current = px;
        window.__razmetka = { ...(window.__razmetka ?? { overlayMs: 0, overlays: 0, imageId }), imageMs: performance.now() - t0 };
        if (canvasRef.current) canvasRef.current.dataset.imageReady = String(imageId);
        setFrame((f) => f + 1);
      })
      .catch((e) => !cancelled && notify(e.message, "error"));
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
  }, [pid, imageId]);

  // Re-render overlays whose mask or class color changed.
  useEffect(() => {
    const b = bundleRef.current;
    if (!b || !detail) return;
    syncOverlays(b.overlays, anns, classes, detail.width, detail.height, requestDraw).then(requestDraw);
  }, [anns, classes, detail, requestDraw]);

  // Prefetch the next image once this one is on screen.
  useEffect(() => {
    if (!detail) return;
    const t = setTimeout(() => {
      nextImageId(pid, queueFilters(pid), imageId, new Set([imageId]))
        .then((id) => id && loadBundle(pid, id, classes))
        .catch(() => undefined);
    }, 300);
    return () => clearTimeout(t);
  }, [detail?.id]);

  // ---------------------------------------------------------------- claim + heartbeat
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const url = `${P(pid)}/images/${imageId}/claim/`;
    const beat = async () => {
      try {
        const c = await post<Claim>(url);
        if (!stopped) setClaim({ state: "mine", by: c.claimed_by });
      } catch (e) {
        if (stopped) return;
        if (e instanceof ApiError && e.status === 409) setClaim({ state: "other", by: e.body?.claimed_by });
        else if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
          setClaim({ state: "none" });
          return; // the server has no claims: stop
        }
      }
      if (!stopped) timer = window.setTimeout(beat, HEARTBEAT_MS);
    };
    beat();
    const release = () => {
      fetch(url, { method: "DELETE", credentials: "same-origin", keepalive: true, headers: { "X-CSRFToken": csrf() } }).catch(() => undefined);
    };
    window.addEventListener("pagehide", release);
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      window.removeEventListener("pagehide", release);
      setClaim((c) => {
        if (c.state === "mine") release();
        return { state: "pending" };
      });
    };
  }, [pid, imageId]);

  // ---------------------------------------------------------------- live updates
  useEffect(() => subscribe(pid, (ev) => {
    const e = ev as any;
    if (ev.type === "resync") {
      // Live events were missed: take the server's current status, objects and claim.
      get<ImageDetail>(`${P(pid)}/images/${imageId}/`).then((fresh) => {
        setDetail(fresh);
        updateAnns((list) => fresh.annotations.map((a) => {
          const local = list.find((x) => x.id === a.id);
          return local && local.version > a.version ? local : a;
        }));
        const other = !!fresh.claimed_by && fresh.claimed_by !== ctx.me.username && !!fresh.claim_expires_at && Date.parse(fresh.claim_expires_at) > Date.now();
        setClaim((c) => (other ? (c.state === "mine" ? c : { state: "other", by: fresh.claimed_by! }) : c.state === "other" ? { state: "pending" } : c));
      }).catch(() => undefined);
      return;
    }
    if (e.image !== imageId) return;
    if (ev.type === "annotation.changed") {
      const local = annsRef.current.find((a) => a.id === e.annotation);
      if (e.action === "deleted") {
        updateAnns((list) => list.filter((a) => a.id !== e.annotation));
        return;
      }
      if (local && local.version >= e.version) return;
      get<Annotation>(`${P(pid)}/annotations/${e.annotation}/`)
        .then((a) => updateAnns((list) => (list.some((x) => x.id === a.id) ? list.map((x) => (x.id === a.id && x.version < a.version ? a : x)) : [...list, a])))
        .catch(() => undefined);
    } else if (ev.type === "image.status") {
      setDetail((d) => (d ? { ...d, status: e.status, version: e.version } : d));
    } else if (ev.type === "image.claimed" && e.claimed_by !== ctx.me.username) {
      setClaim({ state: "other", by: e.claimed_by });
    } else if (ev.type === "image.released") {
      setClaim((c) => (c.state === "other" ? { state: "pending" } : c));
    }
  }), [pid, imageId]);

  // ---------------------------------------------------------------- saving
  const replace = (a: Annotation) => updateAnns((list) => list.map((x) => (x.id === a.id ? a : x)));
  /** Writes to one object run one after another, each with the version the previous one returned. */
  const queued = <T,>(id: number, fn: () => Promise<T>): Promise<T> => {
    const run = (chains.current.get(id) ?? Promise.resolve()).then(fn);
    chains.current.set(id, run.catch(() => undefined));
    return run;
  };

  /** Run a write for one object; 409 reloads the object with a clear message, nothing is lost silently. */
  const write = async (ann: Annotation, what: string, fn: () => Promise<Annotation | void>, retry?: () => void): Promise<boolean> => {
    if (readOnly) {
      notify(claim.state === "other" ? `${claim.by ?? "Another reviewer"} has this image open; it is read-only for you.` : "You can only view this project.", "warn");
      return false;
    }
    try {
      const res = await queued(ann.id, fn);
      if (res) replace(res);
      if (res && !ctx.canReview && (res.class_review === "pending" || res.mask_review === "pending"))
        setEdited((s) => new Set(s).add(res.id));
      return true;
    } catch (e) {
      const refused = claimRefusal(e);
      if (refused) {
        // The server holds the claim, whatever this page believed: show it locked, keep the edit local.
        setClaim({ state: "other", by: refused.by });
        notify(claimMessage(refused, what), "error");
      } else if (e instanceof ApiError && e.status === 409 && e.body?.current) {
        replace(e.body.current as Annotation);
        notify(`Someone else changed this object while you were working (${what} not saved). It has been reloaded — check it and try again.`, "error");
      } else if (e instanceof ApiError && e.status === 404) {
        updateAnns((list) => list.filter((x) => x.id !== ann.id));
        notify(`This object was deleted by someone else (${what} not saved).`, "error");
      } else {
        notify(`Couldn't save ${what}: ${(e as Error).message}`, "error", retry ? { label: "Retry", run: retry } : undefined);
      }
      return false;
    }
  };

  const review = (a: Annotation | null, target: "class" | "mask" | "both", decision: "accepted" | "rejected" | "pending") => {
    if (!a) return;
    const run = () => write(a, `the ${target === "both" ? "review" : target + " review"}`, () =>
      post<Annotation>(`${P(pid)}/annotations/${a.id}/review/`, { version: latest(a).version, target, decision }), run);
    return run();
  };
  const latest = (a: Annotation) => annsRef.current.find((x) => x.id === a.id) ?? a;

  const setClass = async (a: Annotation | null, classId: number) => {
    if (!a) return;
    const run = () => write(a, "the class", () => patch<Annotation>(`${P(pid)}/annotations/${a.id}/`, { version: latest(a).version, label_class: classId }), run);
    await run();
    setSearch(null);
  };

  const remove = async (a: Annotation | null) => {
    if (!a) return;
    const idx = annsRef.current.findIndex((x) => x.id === a.id);
    const ok = await write(a, "the deletion", () => del(`${P(pid)}/annotations/${a.id}/?version=${latest(a).version}`));
    if (ok) {
      const rest = annsRef.current.filter((x) => x.id !== a.id);
      updateAnns(() => rest);
      setSelId(rest[Math.min(idx, rest.length - 1)]?.id ?? null);
      notify("Object deleted.");
    }
  };

  const saveMask = async (a: Annotation, rle: Rle) => {
    setUnsaved((m) => new Map(m).set(a.id, rle));
    const run = async () => {
      const ok = await write(a, "the mask", () => patch<Annotation>(`${P(pid)}/annotations/${a.id}/`, { version: latest(a).version, mask_rle: rle }), run);
      if (ok) setUnsaved((m) => { const n = new Map(m); n.delete(a.id); return n; });
      else if (editRef.current?.annId === a.id) {
        // A conflict reloaded the object: drop the edit session so the current mask shows.
        const cur = latest(a);
        if (cur.mask_rle.counts !== rle.counts) { editRef.current = null; setUnsaved((m) => { const n = new Map(m); n.delete(a.id); return n; }); }
      }
      requestDraw();
    };
    await run();
  };

  const goTo = (id: number | null) => {
    if (id === null) {
      navigate(`/p/${pid}/review`);
      return;
    }
    historyRef.current.push(imageId);
    navigate(`/p/${pid}/review/${id}`);
  };
  const nextImage = async () => {
    try {
      goTo(await nextImageId(pid, queueFilters(pid), imageId, new Set([imageId])));
    } catch (e: any) {
      notify(`Couldn't find the next image: ${e.message}`, "error");
    }
  };
  const acceptAllAndNext = async () => {
    if (busy || !detail) return;
    if (readOnly) return void write(anns[0] ?? ({} as Annotation), "", async () => undefined);
    if (unsaved.size) {
      notify("A mask edit is not saved yet — retry or undo it before moving on.", "error");
      return;
    }
    setBusy(true);
    try {
      if (anns.length) await post(`${P(pid)}/images/${imageId}/accept-all/`, {});
      const unclassified = anns.filter((a) => a.label_class === null && a.class_review === "pending").length;
      if (unclassified) notify(`${unclassified} object(s) have no class and stay pending.`, "warn");
      dropBundle(pid, imageId);
      await nextImage();
    } catch (e: any) {
      const refused = claimRefusal(e);
      if (refused) {
        setClaim({ state: "other", by: refused.by });
        notify(claimMessage(refused, "the acceptance"), "error");
      } else notify(`Couldn't accept this image: ${e.message}. Nothing was lost; try again.`, "error");
    } finally {
      setBusy(false);
    }
  };

  // ---------------------------------------------------------------- mask editing
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

  const undoStacks = useRef(new Map<number, UndoStack<Rle>>());
  const stackOf = (id: number) => {
    let st = undoStacks.current.get(id);
    if (!st) undoStacks.current.set(id, (st = new UndoStack<Rle>(30)));
    return st;
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
    if (readOnly) return void write(sel ?? ({} as Annotation), "", async () => undefined);
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

  // ---------------------------------------------------------------- pointer
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
    const pan = ev.button === 1 || ev.button === 2 || ev.shiftKey;
    if (!pan && (tool === "brush" || tool === "eraser")) {
      if (!sel) return notify("Select an object first (click it or press Tab).", "warn");
      if (readOnly) return void write(sel, "", async () => undefined);
      startEdit(sel);
      dragRef.current = { kind: "paint", sx, sy, lx: ix, ly: iy, moved: false };
      paintTo(ix, iy, ix, iy);
    } else if (!pan && tool === "box") {
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
        paintTo(d.lx, d.ly, ix, iy);
        d.lx = ix;
        d.ly = iy;
      } else if (d.kind === "box") {
        d.box = [d.box![0], d.box![1], ix, iy];
      } else if (d.moved) {
        d.kind = "pan";
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
    if (d.kind === "paint") void finishStroke();
    else if (d.kind === "box" && d.box) void segmentBox(d.box);
    else if (d.kind === "click" && !d.moved) {
      const [sx, sy] = localXY(ev);
      const [ix, iy] = toImage(viewRef.current, sx, sy);
      const id = hitTest(hitObjects, detail.height, detail.width, ix, iy);
      selectObject(id);
    }
    requestDraw();
  };
  const onWheel = (ev: React.WheelEvent) => {
    if (!viewRef.current) return;
    const [sx, sy] = localXY(ev);
    viewRef.current = zoomAt(viewRef.current, sx, sy, Math.exp(-ev.deltaY * 0.0015));
    requestDraw();
  };

  const selectObject = (id: number | null) => {
    if (editRef.current && editRef.current.annId !== id) editRef.current = null;
    setSelId(id);
  };
  const step = (delta: number) => {
    if (!sorted.length) return;
    const i = selIndex < 0 ? (delta > 0 ? 0 : sorted.length - 1) : (selIndex + delta + sorted.length) % sorted.length;
    selectObject(sorted[i].id);
  };
  const zoomCenter = (f: number) => {
    const c = canvasRef.current;
    if (!c || !viewRef.current) return;
    const dpr = window.devicePixelRatio || 1;
    viewRef.current = zoomAt(viewRef.current, c.width / dpr / 2, c.height / dpr / 2, f);
    requestDraw();
  };
  const fit = () => {
    viewRef.current = null;
    requestDraw();
  };

  // ---------------------------------------------------------------- keyboard
  const keyRef = useRef<(e: KeyboardEvent) => void>(() => {});
  keyRef.current = (e: KeyboardEvent) => {
    const t = e.target as HTMLElement;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) {
      if (e.key === "Escape") { setSearch(null); (t as HTMLInputElement).blur(); }
      return;
    }
    if (help && e.key !== "?" && e.key !== "Escape") return;
    const k = e.key;
    const ctrl = e.ctrlKey || e.metaKey;
    let handled = true;
    if (k === "?") setHelp((h) => !h);
    else if (k === "Escape") { setHelp(false); setSearch(null); setTool("select"); }
    else if (k === "Enter") void acceptAllAndNext();
    else if (k === "Tab") step(e.shiftKey ? -1 : 1);
    else if (k === "j" || k === "ArrowDown") step(1);
    else if (k === "k" || k === "ArrowUp") step(-1);
    else if (ctrl && (k === "z" || k === "Z")) void undoEdit(e.shiftKey);
    else if (ctrl) handled = false;
    else if (k === "a") void review(sel, "both", "accepted");
    else if (k === "r") void review(sel, "both", "rejected");
    else if (k === "c") void review(sel, "class", "accepted");
    else if (k === "C") void review(sel, "class", "rejected");
    else if (k === "m") void review(sel, "mask", "accepted");
    else if (k === "M") void review(sel, "mask", "rejected");
    else if (k === "u") void review(sel, "both", "pending");
    else if (/^[1-9]$/.test(k)) {
      const cand = sel?.candidates?.[Number(k) - 1];
      if (cand) void setClass(sel, cand.class_id);
      else handled = false;
    } else if (k === "/") setSearch("");
    else if (k === "Delete" || k === "Backspace") void remove(sel);
    else if (k === "v") setTool("select");
    else if (k === "b") setTool("brush");
    else if (k === "e") setTool("eraser");
    else if (k === "x") setTool("box");
    else if (k === "[") setBrushPx((b) => Math.max(2, Math.round(b / 1.25)));
    else if (k === "]") setBrushPx((b) => Math.min(200, Math.round(b * 1.25)));
    else if (k === "z") void undoEdit(false);
    else if (k === "Z") void undoEdit(true);
    else if (k === "f" || k === "0") fit();
    else if (k === "+" || k === "=") zoomCenter(1.25);
    else if (k === "-") zoomCenter(0.8);
    else if (k === "h") setShowOverlays((s) => !s);
    else if (k === "n") { markSkipped(pid, imageId); void nextImage(); }
    else if (k === "p") { const prev = historyRef.current.pop(); if (prev) navigate(`/p/${pid}/review/${prev}`); else handled = false; }
    else handled = false;
    if (handled) e.preventDefault();
  };
  useEffect(() => {
    const h = (e: KeyboardEvent) => keyRef.current(e);
    window.addEventListener("keydown", h);
    return () => window.removeEventListener("keydown", h);
  }, []);
  useEffect(() => () => { if (rafRef.current) cancelAnimationFrame(rafRef.current); }, []);

  // ---------------------------------------------------------------- render
  const pending = anns.filter((a) => a.class_review === "pending" || a.mask_review === "pending").length;
  const searchResults = search === null ? [] : classes.filter((c) => c.active !== false && c.name.toLowerCase().includes(search.toLowerCase())).slice(0, 12);
  if (loadError) return <main className="page"><p className="error" role="alert">{loadError}</p><Link to={`/p/${pid}/review`}>Go to the next image in the queue</Link></main>;

  return (
    <div className="workspace" data-testid="workspace">
      <div className="stage" ref={wrapRef}>
        <canvas
          ref={canvasRef}
          data-testid="review-canvas"
          className={`tool-${tool}`}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onPointerLeave={() => { cursorRef.current = null; requestDraw(); }}
          onWheel={onWheel}
          onContextMenu={(e) => e.preventDefault()}
        />
        <div className="stage-bar">
          {(["select", "brush", "eraser", "box"] as Tool[]).map((t) => (
            <button key={t} className={tool === t ? "active" : ""} onClick={() => setTool(t)} title={TOOL_HELP[t]}>
              {TOOL_LABEL[t]}
            </button>
          ))}
          {(tool === "brush" || tool === "eraser") && <span className="small">size {brushPx}px ([ / ])</span>}
          <span className="spacer" />
          <button onClick={fit} title="Fit (f)">Fit</button>
          <button onClick={() => setShowOverlays((s) => !s)} title="Hide/show masks (h)">{showOverlays ? "Hide masks" : "Show masks"}</button>
          <button onClick={() => setHelp(true)} title="Keyboard shortcuts (?)">?</button>
        </div>
        {!detail && <div className="stage-msg">Loading…</div>}
      </div>
      <aside className="side">
        <div className="side-head">
          <div>
            <b title={detail?.original_name}>{detail?.original_name ?? "…"}</b>
            <div className="muted small">
              #{imageId} · {detail ? `${detail.width}×${detail.height}` : ""} · <span data-testid="image-status">{detail?.status.replace("_", " ")}</span> · {pending} pending
            </div>
          </div>
          {claim.state === "other" && <div className="lock" role="status" data-testid="locked">🔒 Open by {claim.by ?? "another reviewer"} — read-only</div>}
          {!ctx.canReview && <div className="muted small">Your role can't accept or reject.</div>}
          <button className="primary wide" onClick={acceptAllAndNext} disabled={busy || readOnly || !detail} data-testid="accept-all">
            Accept all &amp; next image <kbd>Enter</kbd>
          </button>
          <div className="row small">
            <button onClick={() => { markSkipped(pid, imageId); void nextImage(); }}>Skip <kbd>n</kbd></button>
            <Link to={`/p/${pid}/review`}>Queue</Link>
          </div>
        </div>
        {search !== null && (
          <div className="class-search">
            <input autoFocus placeholder="Search classes… (Enter picks the first)" value={search} aria-label="search classes"
              onChange={(e) => setSearch(e.target.value)}
              onKeyDown={(e) => { if (e.key === "Enter" && searchResults[0]) void setClass(sel, searchResults[0].id); }} />
            <ul>
              {searchResults.map((c) => (
                <li key={c.id}><button className="link" onClick={() => void setClass(sel, c.id)}><i className="swatch" style={{ background: c.color }} />{c.name}</button></li>
              ))}
            </ul>
          </div>
        )}
        <ol className="objects" data-testid="objects">
          {anns.length === 0 && detail && <li className="muted">No objects on this image. Draw a box (x) to add one.</li>}
          {sorted.map((a, i) => (
            <ObjectRow key={a.id} a={a} index={i} pid={pid} selected={a.id === selId} color={colorOf(a, classes)} unsaved={unsaved.has(a.id)}
              awaiting={!ctx.canReview && awaitsReview(a, edited.has(a.id))}
              onSelect={() => selectObject(a.id)} onReview={(t, d) => review(a, t, d)} onClass={(cid) => setClass(a, cid)} onDelete={() => remove(a)} />
          ))}
        </ol>
      </aside>
      {help && <HelpOverlay onClose={() => setHelp(false)} />}
    </div>
  );
}

const TOOL_LABEL: Record<Tool, string> = { select: "Select / pan (v)", brush: "Brush (b)", eraser: "Eraser (e)", box: "Box → SAM (x)" };
const TOOL_HELP: Record<Tool, string> = {
  select: "Click an object to select it; drag to pan; wheel to zoom",
  brush: "Paint onto the selected mask",
  eraser: "Erase from the selected mask",
  box: "Drag a box: SAM 2 makes a mask (replaces the selected object's mask, or adds a new object)",
};

function firstPending(anns: Annotation[]): number | null {
  return (anns.find((a) => a.class_review === "pending" || a.mask_review === "pending") ?? anns[0])?.id ?? null;
}

function csrf(): string {
  const m = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : "";
}

function fmt(x: number | null | undefined, digits = 2) {
  return x === null || x === undefined ? "—" : x.toFixed(digits);
}

function ObjectRow(props: {
  a: Annotation; index: number; pid: number; selected: boolean; color: string; unsaved: boolean; awaiting: boolean;
  onSelect: () => void; onReview: (t: "class" | "mask", d: "accepted" | "rejected" | "pending") => void;
  onClass: (id: number) => void; onDelete: () => void;
}) {
  const { a, selected } = props;
  const ref = useRef<HTMLLIElement>(null);
  useEffect(() => {
    if (selected) ref.current?.scrollIntoView({ block: "nearest" });
  }, [selected]);
  const state = (s: string) => (s === "accepted" ? "✓" : s === "rejected" ? "✗" : "•");
  return (
    <li ref={ref} className={`object ${selected ? "selected" : ""}`} onClick={props.onSelect} data-testid={`object-${a.id}`} data-class={a.class_name}
      data-class-review={a.class_review} data-mask-review={a.mask_review}>
      <div className="object-head">
        <i className="swatch" style={{ background: props.color }} />
        <b className={a.class_review === "rejected" ? "strike" : ""}>{a.class_name || "(no class)"}</b>
        <span className="muted small">score {fmt(a.class_score)} · margin {fmt(a.class_margin)}</span>
        <span className="spacer" />
        {props.unsaved && <span className="badge badge-failed" title="Not saved">unsaved</span>}
        {props.awaiting && (
          <span className="badge badge-in_review" data-testid={`awaiting-${a.id}`} title="Your change is saved; a reviewer has to accept it before it is exported">
            edited · pending review
          </span>
        )}
        <span className="muted small">{a.source}</span>
      </div>
      <div className="object-review">
        <span className={`rv rv-${a.class_review}`}>class {state(a.class_review)}</span>
        <button className="small" title="Accept class (c)" onClick={(e) => { e.stopPropagation(); props.onReview("class", "accepted"); }}>✓ class</button>
        <button className="small" title="Reject class (Shift+C)" onClick={(e) => { e.stopPropagation(); props.onReview("class", "rejected"); }}>✗</button>
        <span className={`rv rv-${a.mask_review}`}>mask {state(a.mask_review)}</span>
        <button className="small" title="Accept mask (m)" onClick={(e) => { e.stopPropagation(); props.onReview("mask", "accepted"); }}>✓ mask</button>
        <button className="small" title="Reject mask (Shift+M)" onClick={(e) => { e.stopPropagation(); props.onReview("mask", "rejected"); }}>✗</button>
        <span className="spacer" />
        <button className="small danger" title="Delete object (Delete)" onClick={(e) => { e.stopPropagation(); props.onDelete(); }}>Delete</button>
      </div>
      {selected && a.candidates && a.candidates.length > 0 && (
        <div className="candidates">
          {a.candidates.slice(0, 9).map((c, i) => (
            <button key={`${c.class_id}-${i}`} className={`candidate ${c.class_id === a.label_class ? "current" : ""}`} data-testid={`candidate-${c.name}`}
              title={`Set class to ${c.name} (${i + 1})`} onClick={(e) => { e.stopPropagation(); props.onClass(c.class_id); }}>
              {c.exemplar_id ? <img src={`${P(props.pid)}/gallery/${c.exemplar_id}/file/`} alt="" loading="lazy" /> : null}
              <span className="cand-name"><kbd>{i + 1}</kbd> {c.name}</span>
              <span className="small muted">{fmt(c.score)}</span>
            </button>
          ))}
        </div>
      )}
    </li>
  );
}

