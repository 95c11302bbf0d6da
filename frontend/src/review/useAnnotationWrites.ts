/**
 * Writes to the open image's objects: review decisions, class changes and deletions. Writes to
 * one object are queued so each carries the version the previous one returned (never a version
 * someone else's change made after the action: see Write); every failure is
 * shown and loses nothing silently (a review the network or server failed stays on screen as
 * "not saved" and blocks moving on, like an unsaved mask). Each successful user action is
 * recorded for undo (useUndoHistory, wired in through `history`); an undo first waits for the
 * actions still running (`settled`).
 */
import { useEffect, useRef, useState, type RefObject } from "react";
import { checkProjectAccess, retryable } from "../api/access";
import { ApiError, del, get, onSignedIn, P, passwordFirstError, patch, post, signedOutError, type Annotation } from "../api/client";
import { currentNotes, dismiss, notify } from "../notify";
import { InFlight } from "./inflight";
import { ACCEPTED_DELETE_HINT, type Decision, type ReviewTarget } from "./ObjectList";
import { claimMessage, claimRefusal, reviewPlan } from "./rules";
import type { ClaimState } from "./useClaim";
import { reviewsOf, type UndoEntry } from "./useUndoHistory";

/** Set by the workspace once the undo history exists (it needs these writes itself). */
export interface HistoryHooks {
  /** `note`: the message that offers to undo this entry; it goes once the entry is undone. */
  record: (e: UndoEntry, note?: number) => void;
  /** Drop an entry recorded before its write, when the write failed. */
  discard: (e: UndoEntry) => void;
  /** Undo exactly this entry (a message's Undo button), not whatever is newest. */
  undoEntry: (e: UndoEntry) => unknown;
}

/** `fn` gets the version to send: the one the user's action was `based` on (default: the object's
 * version when the write is asked for), or a newer one only when this tab's own writes made it.
 * A Retry (or a queued write) after someone else's change therefore answers 409 instead of
 * overwriting it; it used the newest version seen, so a Retry saved over a newer change.
 * `rebase`: given the newer object of a 409, what to show when the other change left alone what
 * this write changes (the write is then sent once more on that version), or null: a conflict. */
export type Write = (ann: Annotation, what: string, fn: (version: number) => Promise<Annotation | void>, retry?: () => void,
  based?: number, rebase?: Rebase) => Promise<boolean>;
export type Rebase = (current: Annotation) => Annotation | null;

/** A review decision the server has not stored (offline, server down): shown, retried, guarded. */
export interface FailedReview {
  target: ReviewTarget;
  decision: Decision;
  retry: () => Promise<unknown>;
}

/** Why a role without review rights cannot accept or reject (a shortcut or accept-all). */
export const cannotReviewMessage = (role: string | null | undefined) =>
  `Your role (${role ?? "viewer"}) can't accept or reject in this project; a reviewer or admin decides.`;

/** Said when the open image itself is gone (a live event, or a 404 on it). */
export const IMAGE_GONE_MESSAGE = "This image was deleted by someone else.";

export function useAnnotationWrites(opts: {
  pid: number; imageId: number; canReview: boolean; role?: string | null; readOnly: boolean; claim: ClaimState; setClaim: (c: ClaimState) => void;
  annsRef: RefObject<Annotation[]>; updateAnns: (fn: (list: Annotation[]) => Annotation[]) => void;
  setSelId: (id: number | null) => void;
  /** The image is gone; `onImageGone` is told when a write finds that out. */
  gone?: boolean; onImageGone?: () => void;
}) {
  const { pid, imageId, canReview, role, readOnly, claim, setClaim, annsRef, updateAnns, setSelId } = opts;
  const chains = useRef(new Map<number, Promise<unknown>>());
  /** Versions this tab's own writes produced, per object (see Write). */
  const own = useRef(new Map<number, Set<number>>());
  const history = useRef<HistoryHooks>({ record: () => {}, discard: () => {}, undoEntry: () => {} });
  const inFlight = useRef(new InFlight());
  // Every write the network, the server or an ended session failed, by object and kind ("12:the
  // mask"): how to send it again. Each "Couldn't save … Retry" message resends all of them, and a
  // message is taken back only once every write it stood for went through. A Retry on the class's
  // message took back the mask's too (one list per object): the mask was never sent again, and
  // nothing on screen offered to.
  const pending = useRef(new Map<string, () => unknown>());
  /** The failure messages on screen and the writes each stands for. */
  const failureNotes = useRef(new Map<number, Set<string>>());
  /** Objects whose deletion is on its way: a second Delete on one is ignored (it 404ed). */
  const deleting = useRef(new Set<number>());
  /** Objects this annotator changed here: the server left them pending review. */
  const [edited, setEdited] = useState<Set<number>>(new Set());
  const [failed, setFailed] = useState<Map<number, FailedReview>>(new Map());

  useEffect(() => {
    chains.current.clear();
    own.current.clear();
    deleting.current.clear();
    pending.current.clear();
    failureNotes.current.clear();
    setFailed(new Map());
  }, [pid, imageId]);
  // Signed in again after the session ended, or the connection is back: what failed is sent again at once.
  useEffect(() => onSignedIn(() => retryAll()), []);
  useEffect(() => {
    const back = () => retryAll();
    window.addEventListener("online", back);
    return () => window.removeEventListener("online", back);
  }, []);
  const setFailedFor = (id: number, f: FailedReview | null) => setFailed((m) => {
    if (!f && !m.has(id)) return m;
    const n = new Map(m);
    if (f) n.set(id, f);
    else n.delete(id);
    return n;
  });
  /** Send again every write that failed and may still succeed (each message's Retry). */
  const retryAll = () => {
    const runs = [...pending.current.values()];
    pending.current.clear(); // each one that fails again is listed again
    for (const run of runs) void run();
  };
  /** Whether a failed write waits to be sent again (the "not saved yet" message offers Retry). */
  const canRetry = () => pending.current.size > 0;
  /** Kept for the callers that retried the failed reviews only: every failed write goes. */
  const retryFailedReviews = retryAll;
  /** A write of `key` went through (or can no longer be sent): its messages go once nothing else they stood for is left. */
  const settle = (key: string) => {
    pending.current.delete(key);
    for (const [note, keys] of failureNotes.current) {
      if (!keys.delete(key) || keys.size) continue;
      failureNotes.current.delete(note);
      dismiss(note);
    }
  };
  /** Say that `key` failed, with a Retry that resends every failed write. */
  const failedNote = (key: string, text: string, run: () => unknown) => {
    pending.current.set(key, run);
    const note = notify(text, "error", { label: "Retry", run: retryAll });
    // A message with the same words replaced an earlier one: the new one stands for its writes too.
    const shown = new Set(currentNotes().map((n) => n.id));
    const keys = new Set([key]);
    for (const [id, ks] of failureNotes.current) {
      if (shown.has(id)) continue;
      failureNotes.current.delete(id);
      ks.forEach((k) => keys.add(k));
    }
    failureNotes.current.set(note, keys);
  };

  const replace = (a: Annotation) => updateAnns((list) => list.map((x) => (x.id === a.id ? a : x)));
  const latest = (a: Annotation) => annsRef.current.find((x) => x.id === a.id) ?? a;
  const mine = (a: Annotation) => {
    const seen = own.current.get(a.id) ?? new Set<number>();
    own.current.set(a.id, seen.add(a.version));
  };
  /** The version to send for an action made on `based`: newer only if this tab wrote it. */
  const versionFor = (a: Annotation, based: number) => {
    const now = latest(a).version;
    return now === based || own.current.get(a.id)?.has(now) ? now : based;
  };
  const queued = <T,>(id: number, fn: () => Promise<T>): Promise<T> => {
    const run = (chains.current.get(id) ?? Promise.resolve()).then(fn);
    chains.current.set(id, run.catch(() => undefined));
    return run;
  };

  /** Say why a read-only user's action did nothing. */
  const refuseReadOnly = () => {
    if (opts.gone) return void notify(`${IMAGE_GONE_MESSAGE} Nothing on it can be changed; go on to the next image (n).`, "warn");
    notify(claim.state === "other" ? `${claim.by ?? "Another reviewer"} has this image open; it is read-only for you.` : "You can only view this project.", "warn");
  };

  /** Run a write for one object; 409 reloads the object with a clear message, nothing is lost silently.
   * "retryable": the network or the server failed, the same write may still succeed. */
  const attempt = async (ann: Annotation, what: string, fn: (version: number) => Promise<Annotation | void>, retry?: () => void,
    based = latest(ann).version, rebase?: Rebase): Promise<"ok" | "retryable" | "failed"> => {
    const key = `${ann.id}:${what}`;
    if (readOnly) {
      refuseReadOnly();
      return "failed";
    }
    try {
      const res = await queued(ann.id, () => fn(versionFor(ann, based)));
      if (res) {
        mine(res);
        replace(res);
      }
      if (res && !canReview && (res.class_review === "pending" || res.mask_review === "pending"))
        setEdited((s) => new Set(s).add(res.id));
      settle(key);
      return "ok";
    } catch (e) {
      const refused = claimRefusal(e);
      if (signedOutError(e) || passwordFirstError(e)) {
        // The session ended (here or in another tab): the app asks to sign in and, once signed
        // in (and the password set, after a reset), this write is sent again (as Retry does).
        const when = passwordFirstError(e) ? "you have set your password" : "you sign in";
        if (retry) {
          failedNote(key, `Your session ended, so ${what} wasn't saved yet. It is sent again once ${when} (or press Retry).`, retry);
          return "retryable";
        }
        notify(`Your session ended, so ${what} wasn't saved. Sign in again and redo it.`, "error");
        return "failed";
      }
      settle(key); // what follows can't be fixed by sending the same write again
      if (refused) {
        // The server holds the claim, whatever this page believed: show it locked, keep the edit local.
        setClaim({ state: "other", by: refused.by });
        notify(claimMessage(refused, what), "error");
      } else if (e instanceof ApiError && e.status === 409 && e.body?.current) {
        const current = e.body.current as Annotation;
        const rebased = rebase?.(current);
        if (rebased) {
          replace(rebased);
          return attempt(ann, what, fn, retry, current.version); // once: no rebase the second time
        }
        replace(current);
        notify(`This object was changed elsewhere (by someone else, or in another tab) while you worked: ${what} was not saved. `
          + "It now shows the newer version; check it and try again.", "error");
      } else if (e instanceof ApiError && e.status === 404) {
        // A 404 is also what every route of a project answers once you are no longer a member:
        // ask for the project before telling anyone that the object was deleted.
        const access = await checkProjectAccess(pid);
        if (access === "ok" && (await imageGone())) {
          opts.onImageGone?.();
          notify(`${IMAGE_GONE_MESSAGE} (${what} not saved)`, "error");
        } else if (access === "ok") {
          updateAnns((list) => list.filter((x) => x.id !== ann.id));
          notify(`This object was deleted by someone else (${what} not saved).`, "error");
        } else if (access === "unknown") {
          notify(`Couldn't save ${what}: ${(e as Error).message}`, "error");
        } // "lost": the project layout says so and offers the project list
      } else {
        // Retry only what a retry can fix: the network or the server failing, not a refusal.
        if (retry && retryable(e)) {
          failedNote(key, `Couldn't save ${what}: ${(e as Error).message}`, retry);
          return "retryable";
        }
        notify(`Couldn't save ${what}: ${(e as Error).message}`, "error");
        if (retryable(e)) return "retryable";
      }
      return "failed";
    }
  };
  const write: Write = (ann, what, fn, retry, based, rebase) =>
    inFlight.current.track(attempt(ann, what, fn, retry, based, rebase).then((r) => r === "ok"));
  /** After a 404 on an object: is the open image itself gone? */
  const imageGone = async () => {
    try {
      await get(`${P(pid)}/images/${imageId}/`);
      return false;
    } catch (e) {
      return e instanceof ApiError && e.status === 404;
    }
  };

  const review = (a: Annotation | null, asked: ReviewTarget, decision: Decision) => {
    if (!a) return;
    if (readOnly) return refuseReadOnly();
    if (!canReview) {
      notify(cannotReviewMessage(role), "warn");
      return;
    }
    // An object without a class: its class can't be accepted (the server answers 400).
    const plan = reviewPlan(latest(a), asked, decision);
    // Said once the write is through: "Accepted the mask only" beside its refusal contradicted it.
    if (plan.note && !plan.target) notify(plan.note, "warn");
    const target = plan.target;
    if (!target) return;
    const before = latest(a);
    const prev = { class_review: before.class_review as Decision, mask_review: before.mask_review as Decision };
    const changes = (target !== "mask" && prev.class_review !== decision) || (target !== "class" && prev.mask_review !== decision);
    const what = `the ${target === "both" ? "review" : target + " review"}`;
    const based = before.version;
    const run = (): Promise<boolean> => inFlight.current.track((async () => {
      // Recorded before the write so an immediate z finds it (the undo waits for this write).
      const entry: UndoEntry = { t: "review", id: a.id, ...prev };
      if (changes && !readOnly) history.current.record(entry);
      const outcome = await attempt(a, what, (version) =>
        post<Annotation>(`${P(pid)}/annotations/${a.id}/review/`, { version, target, decision }), run, based);
      if (outcome !== "ok" && changes) history.current.discard(entry);
      if (outcome === "ok" && plan.note) notify(plan.note, "info");
      // Kept on screen as "not saved" only when sending it again may work; a refusal is said and dropped.
      setFailedFor(a.id, outcome === "retryable" ? { target, decision, retry: run } : null);
      return outcome === "ok";
    })());
    return run();
  };

  const setClass = (a: Annotation, classId: number) => {
    const prev = latest(a).label_class ?? null;
    const review = reviewsOf(latest(a));
    const based = latest(a).version;
    const run = (): Promise<boolean> => inFlight.current.track((async () => {
      const entry: UndoEntry = { t: "class", id: a.id, classId: prev, review };
      if (prev !== classId && !readOnly) history.current.record(entry);
      const ok = await write(a, "the class", (version) => patch<Annotation>(`${P(pid)}/annotations/${a.id}/`, { version, label_class: classId }), run, based);
      if (!ok && prev !== classId) history.current.discard(entry);
      return ok;
    })());
    return run();
  };

  const remove = (a: Annotation | null): Promise<void> => {
    // A second Delete while the first is on its way would delete it again: a 404 said
    // "deleted by someone else".
    if (!a || deleting.current.has(a.id)) return Promise.resolve();
    if (readOnly) return Promise.resolve(refuseReadOnly());
    if (!canReview && (a.class_review === "accepted" || a.mask_review === "accepted")) {
      // The button is disabled for this; the Delete key sent it and the server's 403 read as an outage.
      notify(ACCEPTED_DELETE_HINT, "warn");
      return Promise.resolve();
    }
    // A deletion the network failed is offered again like any failed write (Retry, sign-in, back online).
    const run = (): Promise<void> => {
      if (deleting.current.has(a.id)) return Promise.resolve();
      deleting.current.add(a.id);
      return inFlight.current.track((async () => {
        try {
          const idx = annsRef.current.findIndex((x) => x.id === a.id);
          const ok = await write(a, "the deletion", (version) => del(`${P(pid)}/annotations/${a.id}/?version=${version}`), run);
          if (!ok) return;
          const snap = latest(a);
          const rest = annsRef.current.filter((x) => x.id !== a.id);
          updateAnns(() => rest);
          setSelId(rest[Math.min(idx, rest.length - 1)]?.id ?? null);
          setFailedFor(a.id, null);
          const entry: UndoEntry = { t: "recreate", snap };
          // The message's Undo takes back this deletion only, and goes once it is undone.
          const note = notify("Object deleted — press z to undo.", "info", { label: "Undo", run: () => void history.current.undoEntry(entry) });
          history.current.record(entry, note);
        } finally {
          deleting.current.delete(a.id);
        }
      })());
    };
    return run();
  };

  /** Resolves once every action started here (and what it records for undo) has finished. */
  const settled = () => inFlight.current.settled();

  return { write, replace, latest, review, setClass, remove, edited, refuseReadOnly, history, settled, failed, retryFailedReviews, retryAll, canRetry };
}
