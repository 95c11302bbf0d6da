/**
 * Writes to the open image's objects: review decisions, class changes and deletions. Writes to
 * one object are queued so each carries the version the previous one returned; every failure is
 * shown and loses nothing silently. Each successful user action is recorded for undo
 * (useUndoHistory, wired in through `history`).
 */
import { useEffect, useRef, useState, type RefObject } from "react";
import { checkProjectAccess, retryable } from "../api/access";
import { ApiError, del, P, patch, post, type Annotation } from "../api/client";
import { notify } from "../notify";
import type { Decision, ReviewTarget } from "./ObjectList";
import { claimMessage, claimRefusal } from "./rules";
import type { ClaimState } from "./useClaim";
import { reviewsOf, type UndoEntry } from "./useUndoHistory";

/** Set by the workspace once the undo history exists (it needs these writes itself). */
export interface HistoryHooks {
  record: (e: UndoEntry) => void;
  /** Drop an entry recorded before its write, when the write failed. */
  discard: (e: UndoEntry) => void;
  undo: () => unknown;
}

export type Write = (ann: Annotation, what: string, fn: () => Promise<Annotation | void>, retry?: () => void) => Promise<boolean>;

/** Why a role without review rights cannot accept or reject (a shortcut or accept-all). */
export const cannotReviewMessage = (role: string | null | undefined) =>
  `Your role (${role ?? "viewer"}) can't accept or reject in this project; a reviewer or admin decides.`;

export function useAnnotationWrites(opts: {
  pid: number; imageId: number; canReview: boolean; role?: string | null; readOnly: boolean; claim: ClaimState; setClaim: (c: ClaimState) => void;
  annsRef: RefObject<Annotation[]>; updateAnns: (fn: (list: Annotation[]) => Annotation[]) => void;
  setSelId: (id: number | null) => void;
}) {
  const { pid, imageId, canReview, role, readOnly, claim, setClaim, annsRef, updateAnns, setSelId } = opts;
  const chains = useRef(new Map<number, Promise<unknown>>());
  const history = useRef<HistoryHooks>({ record: () => {}, discard: () => {}, undo: () => {} });
  /** Objects this annotator changed here: the server left them pending review. */
  const [edited, setEdited] = useState<Set<number>>(new Set());

  useEffect(() => {
    chains.current.clear();
  }, [pid, imageId]);

  const replace = (a: Annotation) => updateAnns((list) => list.map((x) => (x.id === a.id ? a : x)));
  const latest = (a: Annotation) => annsRef.current.find((x) => x.id === a.id) ?? a;
  const queued = <T,>(id: number, fn: () => Promise<T>): Promise<T> => {
    const run = (chains.current.get(id) ?? Promise.resolve()).then(fn);
    chains.current.set(id, run.catch(() => undefined));
    return run;
  };

  /** Say why a read-only user's action did nothing. */
  const refuseReadOnly = () => {
    notify(claim.state === "other" ? `${claim.by ?? "Another reviewer"} has this image open; it is read-only for you.` : "You can only view this project.", "warn");
  };

  /** Run a write for one object; 409 reloads the object with a clear message, nothing is lost silently. */
  const write: Write = async (ann, what, fn, retry) => {
    if (readOnly) {
      refuseReadOnly();
      return false;
    }
    try {
      const res = await queued(ann.id, fn);
      if (res) replace(res);
      if (res && !canReview && (res.class_review === "pending" || res.mask_review === "pending"))
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
        // A 404 is also what every route of a project answers once you are no longer a member:
        // ask for the project before telling anyone that the object was deleted.
        const access = await checkProjectAccess(pid);
        if (access === "ok") {
          updateAnns((list) => list.filter((x) => x.id !== ann.id));
          notify(`This object was deleted by someone else (${what} not saved).`, "error");
        } else if (access === "unknown") {
          notify(`Couldn't save ${what}: ${(e as Error).message}`, "error");
        } // "lost": the project layout says so and offers the project list
      } else {
        // Retry only what a retry can fix: the network or the server failing, not a refusal.
        const again = retry && retryable(e) ? { label: "Retry", run: retry } : undefined;
        notify(`Couldn't save ${what}: ${(e as Error).message}`, "error", again);
      }
      return false;
    }
  };

  const review = (a: Annotation | null, target: ReviewTarget, decision: Decision) => {
    if (!a) return;
    if (readOnly) return refuseReadOnly();
    if (!canReview) {
      notify(cannotReviewMessage(role), "warn");
      return;
    }
    const before = latest(a);
    const prev = { class_review: before.class_review as Decision, mask_review: before.mask_review as Decision };
    const changes = (target !== "mask" && prev.class_review !== decision) || (target !== "class" && prev.mask_review !== decision);
    const run = async () => {
      // Recorded before the write so an immediate z finds it (the undo queues behind this write).
      const entry: UndoEntry = { t: "review", id: a.id, ...prev };
      if (changes && !readOnly) history.current.record(entry);
      const ok = await write(a, `the ${target === "both" ? "review" : target + " review"}`, () =>
        post<Annotation>(`${P(pid)}/annotations/${a.id}/review/`, { version: latest(a).version, target, decision }), run);
      if (!ok && changes) history.current.discard(entry);
      return ok;
    };
    return run();
  };

  const setClass = (a: Annotation, classId: number) => {
    const prev = latest(a).label_class ?? null;
    const review = reviewsOf(latest(a));
    const run = async () => {
      const entry: UndoEntry = { t: "class", id: a.id, classId: prev, review };
      if (prev !== classId && !readOnly) history.current.record(entry);
      const ok = await write(a, "the class", () => patch<Annotation>(`${P(pid)}/annotations/${a.id}/`, { version: latest(a).version, label_class: classId }), run);
      if (!ok && prev !== classId) history.current.discard(entry);
      return ok;
    };
    return run();
  };

  const remove = async (a: Annotation | null) => {
    if (!a) return;
    const idx = annsRef.current.findIndex((x) => x.id === a.id);
    const ok = await write(a, "the deletion", () => del(`${P(pid)}/annotations/${a.id}/?version=${latest(a).version}`));
    if (ok) {
      const snap = latest(a);
      const rest = annsRef.current.filter((x) => x.id !== a.id);
      updateAnns(() => rest);
      setSelId(rest[Math.min(idx, rest.length - 1)]?.id ?? null);
      history.current.record({ t: "recreate", snap });
      notify("Object deleted — press z to undo.", "info", { label: "Undo", run: () => void history.current.undo() });
    }
  };

  return { write, replace, latest, review, setClass, remove, edited, refuseReadOnly, history };
}
