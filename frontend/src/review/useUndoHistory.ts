/**
 * One undo/redo stack for the open image: deletions, class changes, mask edits, review decisions
 * and new objects. Each entry is the write that takes the object back; undoing runs it as a normal
 * versioned write and pushes its own inverse onto the other stack. A deleted object comes back
 * under its own id through the API's restore (its scores, candidates and history stay its own;
 * it came back as a new human-drawn object, cut off from them), then its review states. Only a
 * server without restore gets a new row (new id), and every entry that named the old id is moved
 * to the new one so the stacks stay consistent.
 */
import { useEffect, useRef, useState, type RefObject } from "react";
import { ApiError, del, get, P, patch, post, type Annotation, type Page, type Rle } from "../api/client";
import { dismiss, notify } from "../notify";
import { claimMessage, claimRefusal } from "./rules";
import type { Decision } from "./ObjectList";
import type { ClaimState } from "./useClaim";
import type { useAnnotationWrites } from "./useAnnotationWrites";
import type { EditSession } from "./useStage";

export type UndoEntry =
  | { t: "recreate"; snap: Annotation }
  | { t: "delete"; id: number }
  | { t: "class"; id: number; classId: number | null; review?: Reviews }
  | { t: "mask"; id: number; rle: Rle; review?: Reviews }
  /** Class and mask together: what "Restore this version" changed (z undid an older edit instead). */
  | { t: "shape"; id: number; classId: number | null; rle: Rle; review?: Reviews }
  | { t: "review"; id: number; class_review: Decision; mask_review: Decision };

const LIMIT = 100;

/** Review states before a change: a reviewer's class or mask edit also accepts it on the server. */
export interface Reviews {
  class_review: Decision;
  mask_review: Decision;
}
export const reviewsOf = (a: Annotation): Reviews => ({ class_review: a.class_review as Decision, mask_review: a.mask_review as Decision });

/** Move every entry that names `from` to `to` (a re-created object has a new id). */
export function remapEntries(list: UndoEntry[], from: number, to: number): UndoEntry[] {
  return list.map((e) => {
    if (e.t === "recreate") return e.snap.id === from ? { ...e, snap: { ...e.snap, id: to } } : e;
    return e.id === from ? { ...e, id: to } : e;
  });
}

export function describe(e: UndoEntry): string {
  switch (e.t) {
    case "recreate": return "the deletion";
    case "delete": return "the new object";
    case "class": return "the class change";
    case "mask": return "the mask edit";
    case "shape": return "the restore";
    case "review": return "the review decision";
  }
}

export function useUndoHistory(opts: {
  pid: number; imageId: number; canReview: boolean; readOnly: boolean;
  writes: ReturnType<typeof useAnnotationWrites>; annsRef: RefObject<Annotation[]>;
  updateAnns: (fn: (list: Annotation[]) => Annotation[]) => void; setSelId: (id: number | null) => void;
  editRef: RefObject<EditSession | null>; setClaim: (c: ClaimState) => void;
  /** The image was done when opened (its objects all reviewed, or none to label). */
  openedDone?: () => boolean;
}) {
  const { pid, imageId, canReview, readOnly, writes, annsRef, updateAnns, setSelId, editRef, setClaim } = opts;
  const undoRef = useRef<UndoEntry[]>([]);
  const redoRef = useRef<UndoEntry[]>([]);
  const chain = useRef<Promise<unknown>>(Promise.resolve());
  /** The message offering to undo an entry ("Object deleted … [Undo]"): gone once it is undone. */
  const notes = useRef(new Map<UndoEntry, number>());
  const [, setSize] = useState(0);
  const changed = () => setSize((n) => n + 1);

  useEffect(() => {
    undoRef.current = [];
    redoRef.current = [];
    notes.current.clear();
    changed();
  }, [pid, imageId]);

  /** A user action succeeded: remember how to take it back (a new action clears redo). */
  const record = (e: UndoEntry, note?: number) => {
    undoRef.current = [...undoRef.current, e].slice(-LIMIT);
    redoRef.current = [];
    if (note !== undefined) notes.current.set(e, note);
    changed();
  };

  const forgetNote = (e: UndoEntry) => {
    const note = notes.current.get(e);
    if (note === undefined) return;
    notes.current.delete(e);
    dismiss(note);
  };

  const discard = (e: UndoEntry) => {
    undoRef.current = undoRef.current.filter((x) => x !== e);
    forgetNote(e);
    changed();
  };

  const find = (id: number) => annsRef.current.find((a) => a.id === id) ?? null;

  /** Run one entry; the inverse entry on success, null when it could not be applied. */
  const apply = async (e: UndoEntry): Promise<UndoEntry | null> => {
    if (e.t === "recreate") return recreate(e.snap);
    const a = find(e.id);
    if (!a) {
      notify(`Can't undo ${describe(e)}: the object is gone (someone else may have deleted it).`, "warn");
      return null;
    }
    if (e.t === "delete") {
      const ok = await writes.write(a, "the deletion", (v) => del(`${P(pid)}/annotations/${a.id}/?version=${v}`));
      if (!ok) return null;
      const snap = writes.latest(a);
      updateAnns((list) => list.filter((x) => x.id !== a.id));
      setSelId(annsRef.current[0]?.id ?? null);
      return { t: "recreate", snap };
    }
    if (e.t === "class") {
      const before = a.label_class ?? null;
      const review = reviewsOf(a);
      if (before === e.classId && (!e.review || (e.review.class_review === review.class_review && e.review.mask_review === review.mask_review))) {
        // "Undid the class change." was said with nothing written (the object already had that class)
        notify("Nothing was undone: the object already has that class.");
        setSelId(a.id);
        return null;
      }
      let ok = await writes.write(a, "the class", (v) => patch<Annotation>(`${P(pid)}/annotations/${a.id}/`, { version: v, label_class: e.classId }));
      if (ok && e.review && canReview) ok = await reviewTo(writes.latest(a), e.review.class_review, e.review.mask_review);
      setSelId(a.id);
      return ok ? { t: "class", id: a.id, classId: before, review } : null;
    }
    if (e.t === "mask") {
      const before = a.mask_rle;
      const review = reviewsOf(a);
      if (editRef.current?.annId === a.id) editRef.current = null; // the restored mask draws from its overlay
      let ok = await writes.write(a, "the mask", (v) => patch<Annotation>(`${P(pid)}/annotations/${a.id}/`, { version: v, mask_rle: e.rle }));
      if (ok && e.review && canReview) ok = await reviewTo(writes.latest(a), e.review.class_review, e.review.mask_review);
      setSelId(a.id);
      return ok ? { t: "mask", id: a.id, rle: before, review } : null;
    }
    if (e.t === "shape") {
      const back: UndoEntry = { t: "shape", id: a.id, classId: a.label_class ?? null, rle: a.mask_rle, review: reviewsOf(a) };
      if (editRef.current?.annId === a.id) editRef.current = null;
      let ok = await writes.write(a, "the restore", (v) => patch<Annotation>(`${P(pid)}/annotations/${a.id}/`, {
        version: v, label_class: e.classId, mask_rle: e.rle,
      }));
      if (ok && e.review && canReview) ok = await reviewTo(writes.latest(a), e.review.class_review, e.review.mask_review);
      setSelId(a.id);
      return ok ? back : null;
    }
    const before = { class_review: a.class_review as Decision, mask_review: a.mask_review as Decision };
    if (before.class_review === e.class_review && before.mask_review === e.mask_review) {
      notify(`Nothing was undone: the object's review is already ${e.class_review === e.mask_review ? e.class_review : `class ${e.class_review}, mask ${e.mask_review}`}.`);
      setSelId(a.id);
      return null;
    }
    const ok = await reviewTo(a, e.class_review, e.mask_review);
    setSelId(a.id);
    return ok ? { t: "review", id: a.id, ...before } : null;
  };

  const reviewTo = async (a: Annotation, cls: Decision, mask: Decision): Promise<boolean> => {
    const send = (target: "class" | "mask" | "both", decision: Decision) =>
      writes.write(a, "the review", (v) => post<Annotation>(`${P(pid)}/annotations/${a.id}/review/`, { version: v, target, decision }));
    const needClass = a.class_review !== cls, needMask = a.mask_review !== mask;
    if (needClass && needMask && cls === mask) return send("both", cls);
    let ok = true;
    if (needClass) ok = await send("class", cls);
    if (ok && needMask) ok = await send("mask", mask);
    return ok;
  };

  /** The object's deletion in its history (the last one): restoring it brings back its last state. */
  const deletionEvent = async (id: number): Promise<number | null> => {
    let url: string | null | undefined = `${P(pid)}/annotations/${id}/events/?page_size=200`;
    let found: number | null = null;
    for (let pages = 0; url && pages < 20; pages++) {
      const page: Page<{ id: number; action: string }> = await get(url);
      for (const ev of page.results) if (ev.action === "deleted") found = ev.id;
      url = page.next;
    }
    return found;
  };

  /** A deleted object back under its own id (restore), or null when this server has no restore. */
  const restore = async (snap: Annotation): Promise<Annotation | null> => {
    try {
      const event = await deletionEvent(snap.id);
      if (event === null) return null;
      // The deletion moved the version on by one (a restore by someone who never saw it is a 409).
      return await post<Annotation>(`${P(pid)}/annotations/${snap.id}/restore/`, { event, version: snap.version + 1 });
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405) && !err.body?.code) return null;
      throw err;
    }
  };

  /** Bring a deleted object back: under its own id when the server can, else a new row with its
   * mask and class; then its review states. */
  const recreate = async (snap: Annotation): Promise<UndoEntry | null> => {
    let created: Annotation;
    try {
      const restored = await restore(snap);
      if (restored) {
        // Back in its place in the list (it went to the end, as a new object would).
        updateAnns((list) => {
          const rest = list.filter((x) => x.id !== restored.id);
          const at = rest.findIndex((x) => x.id > restored.id);
          return at < 0 ? [...rest, restored] : [...rest.slice(0, at), restored, ...rest.slice(at)];
        });
        setSelId(restored.id);
        const wanted = { cls: snap.class_review as Decision, mask: snap.mask_review as Decision };
        if (canReview) await reviewTo(restored, wanted.cls, wanted.mask);
        return { t: "delete", id: restored.id };
      }
      created = await post<Annotation>(`${P(pid)}/annotations/`, { image: imageId, label_class: snap.label_class ?? null, mask_rle: snap.mask_rle });
    } catch (err) {
      const refused = claimRefusal(err);
      if (refused) {
        setClaim({ state: "other", by: refused.by });
        notify(claimMessage(refused, "the restored object"), "error");
      } else notify(`Couldn't bring the object back: ${(err as Error).message}`, "error");
      return null;
    }
    // Keep the evidence the object had (top-k candidates, scores) on screen.
    const shown = { ...created, candidates: created.candidates?.length ? created.candidates : snap.candidates, class_score: created.class_score ?? snap.class_score, class_margin: created.class_margin ?? snap.class_margin };
    updateAnns((list) => [...list, shown]);
    undoRef.current = remapEntries(undoRef.current, snap.id, created.id);
    redoRef.current = remapEntries(redoRef.current, snap.id, created.id);
    setSelId(created.id);
    const wanted = { cls: snap.class_review as Decision, mask: snap.mask_review as Decision };
    if (canReview && (wanted.cls !== "pending" || wanted.mask !== "pending")) await reviewTo(shown, wanted.cls, wanted.mask);
    return { t: "delete", id: created.id };
  };

  /** Undo (or redo) the newest entry, or exactly `only` (a message's Undo button) while it is on the stack. */
  const step = (redo: boolean, only?: UndoEntry) => {
    const run = async () => {
      if (readOnly) return writes.refuseReadOnly();
      // A z pressed while a review or deletion is on its way acts once it is done: before, it
      // compared with the object as it was and "undid" nothing, or found nothing recorded yet.
      await writes.settled();
      const from = redo ? redoRef : undoRef;
      const to = redo ? undoRef : redoRef;
      const entry = only ? from.current.find((x) => x === only) : from.current[from.current.length - 1];
      if (!entry) {
        if (only) return notify(`Nothing to undo: ${describe(only)} was already undone.`);
        return notify(redo ? "Nothing to redo." : "Nothing to undo.");
      }
      from.current = from.current.filter((x) => x !== entry);
      forgetNote(entry);
      changed();
      const inverse = await apply(entry);
      if (inverse && !redo && entry.t === "delete" && !annsRef.current.length && canReview && opts.openedDone?.()) {
        // The only object, drawn here and taken back: the image is as it was, done. It stayed "in review"
        // with nothing on it and left the Done count (black-box round 18); the accept says "nothing to label".
        await post(`${P(pid)}/images/${imageId}/accept-all/`, { seen: [] }).catch(() => undefined);
      }
      if (inverse) {
        to.current = [...to.current, inverse].slice(-LIMIT);
        // A redo is told by what it did again (the inverse now on the undo stack): redoing a new
        // object re-creates it, and "Redid the deletion." said the opposite.
        notify(redo ? `Redid ${describe(inverse)}.` : `Undid ${describe(entry)}.`);
      }
      changed();
    };
    // One at a time: an undo waits for the one before it (ids may change under it).
    const p = chain.current.then(run);
    chain.current = p.catch(() => undefined);
    return p;
  };

  return {
    record,
    discard,
    undo: () => step(false),
    redo: () => step(true),
    undoEntry: (e: UndoEntry) => step(false, e),
    canUndo: undoRef.current.length > 0,
    canRedo: redoRef.current.length > 0,
  };
}
