/** Moving on from the open image: accept all and next, skip, back to the previous image. */
import { useEffect, useRef, useState } from "react";
import { checkProjectAccess, retryable } from "../api/access";
import { ApiError, P, post, type Annotation, type ImageDetail } from "../api/client";
import { dismiss, notify } from "../notify";
import { navigate } from "../router";
import { dropBundle } from "./bundle";
import { markSkipped, nextImageId, queueFilters } from "./queue";
import { claimMessage, claimRefusal } from "./rules";
import type { ClaimState } from "./useClaim";
import { afterMove, stepBack } from "./trail";
import { IMAGE_GONE_MESSAGE } from "./useAnnotationWrites";

/** Said whenever moving on would drop a mask edit the server has not accepted. */
export const UNSAVED_MESSAGE = "A mask edit is not saved yet — retry or undo it before moving on.";
/** The same for a review decision the network or server failed to save. */
export const UNSAVED_REVIEW_MESSAGE = "A review decision is not saved yet — retry it before moving on.";

/** What leaving would lose, or null. */
export function unsavedMessage(masks: number, reviews: number): string | null {
  return masks ? UNSAVED_MESSAGE : reviews ? UNSAVED_REVIEW_MESSAGE : null;
}

/** "…in this project." + " Nothing was lost…" without doubling the full stop. */
const sentence = (s: string) => (/[.!?…]$/.test(s.trim()) ? s.trim() : `${s.trim()}.`);

export function useReviewNavigation(opts: {
  pid: number; imageId: number; detail: ImageDetail | null; anns: Annotation[]; readOnly: boolean;
  canReview?: boolean; role?: string | null;
  unsaved: Map<number, unknown>; refuseReadOnly: () => void; setClaim: (c: ClaimState) => void;
  /** Review decisions that failed to save (they block like an unsaved mask). */
  unsavedReviews?: Map<number, unknown>;
  /** Sends every failed write again, when one waits (the "not saved yet" message's Retry). */
  retryUnsaved?: () => boolean;
  retryAll?: () => void;
  /** The image was deleted: nothing here can be lost, every way on just opens the next image. */
  gone?: boolean; onImageGone?: () => void;
  /** Someone else holds the image: Enter moves on instead of saying it is read-only. */
  heldBy?: string | null;
  /** The picture did not load: accept-all would accept what nobody saw. */
  pictureMissing?: boolean;
  /** The picture is drawn: until then accept-all refuses (quick presses accepted images shown for 130 ms, before a pixel). */
  pictureShown?: () => boolean;
  /** Puts objects the server says changed (a refused accept-all) into the list shown. */
  updateAnns?: (fn: (list: Annotation[]) => Annotation[]) => void;
}) {
  const { pid, imageId, detail, anns, unsaved, refuseReadOnly, setClaim } = opts;
  const gone = !!opts.gone;
  const readOnly = opts.readOnly && !gone;
  const canReview = opts.canReview ?? true;
  /** An unsaved mask or review blocks every way on from this image (Enter, n, p, the queue). */
  const blockedByUnsaved = (): boolean => {
    const message = gone ? null : unsavedMessage(unsaved.size, opts.unsavedReviews?.size ?? 0);
    if (!message) return false;
    // "Retry or undo it" with no Retry anywhere (its message dismissed, or taken back by another
    // write's success) left the reviewer stuck on the image: the message carries one.
    const retry = opts.retryAll && opts.retryUnsaved?.() ? { label: "Retry", run: opts.retryAll } : undefined;
    notify(message, "error", retry);
    return true;
  };
  const [busy, setBusy] = useState(false);
  // Two Enters in one tick both saw `busy` false: the second accept-all's 409 then put the image
  // left's objects into the next one's list.
  const accepting = useRef(false);
  const openImage = useRef(imageId);
  openImage.current = imageId;
  // The images seen before this one, whichever way they were left (n, Enter, Back/Forward, links).
  const trail = useRef<number[]>([]);
  const shown = useRef<number | null>(null);
  const goingBack = useRef<{ id: number; rest: number[] } | null>(null);
  // An accept-all that failed and may still succeed: its message, and the image it was for.
  const failedAccept = useRef<{ note: number; imageId: number } | null>(null);
  const latestAccept = useRef<() => Promise<void>>(async () => {});
  useEffect(() => {
    const back = () => {
      const failed = failedAccept.current;
      if (failed && failed.imageId === openImage.current) void latestAccept.current();
    };
    window.addEventListener("online", back);
    return () => window.removeEventListener("online", back);
  }, []);
  useEffect(() => {
    // Another image opened: the failed accept was for the one left.
    if (failedAccept.current && failedAccept.current.imageId !== imageId) {
      dismiss(failedAccept.current.note);
      failedAccept.current = null;
    }
  }, [imageId]);
  useEffect(() => {
    const back = goingBack.current?.id === imageId ? goingBack.current : null;
    goingBack.current = null;
    trail.current = back ? back.rest : afterMove(trail.current, shown.current, imageId, false);
    shown.current = imageId;
  }, [imageId]);

  const goTo = (id: number | null) => {
    navigate(id === null ? `/p/${pid}/review` : `/p/${pid}/review/${id}`);
  };
  const nextImage = async () => {
    try {
      goTo(await nextImageId(pid, queueFilters(pid), imageId, new Set([imageId]), { claim: true }));
    } catch (e: any) {
      if (e instanceof ApiError && e.status === 404 && (await checkProjectAccess(pid)) === "lost") return;
      notify(`Couldn't find the next image: ${e.message}`, "error");
    }
  };
  const skip = () => {
    if (blockedByUnsaved()) return;
    markSkipped(pid, imageId);
    void nextImage();
  };
  /** Back to the image seen before this one, or say there is none. */
  const previous = (): boolean => {
    const back = stepBack(trail.current, imageId);
    if (back.id === null) {
      notify("No previous image: this is the first image you opened here.");
      return true;
    }
    if (blockedByUnsaved()) return true;
    goingBack.current = { id: back.id, rest: back.rest };
    navigate(`/p/${pid}/review/${back.id}`);
    return true;
  };
  /** The queue page (it opens the next image with the chosen filters). */
  const toQueue = () => {
    if (blockedByUnsaved()) return;
    navigate(`/p/${pid}/review?filters`);
  };

  const acceptAllAndNext = async () => {
    if (busy || accepting.current) return;
    if (gone) return void nextImage(); // nothing to accept: Enter still moves on
    if (!detail) return;
    if (readOnly && opts.heldBy) {
      markSkipped(pid, imageId);
      notify(`${opts.heldBy} has this image open; opened the next one.`);
      return void nextImage();
    }
    if (readOnly) return refuseReadOnly();
    if (!canReview) {
      // An annotator's "done here": the edits are saved (pending a reviewer's decision); on to
      // the next image, not offered again this session. Enter did nothing for them.
      if (blockedByUnsaved()) return;
      markSkipped(pid, imageId);
      notify("Next image. Nothing here is accepted: a reviewer does that (your edits are saved as you make them).");
      return void nextImage();
    }
    if (blockedByUnsaved()) return;
    if (opts.pictureMissing) {
      notify("The picture did not load: accepting objects nobody has seen is refused. Try again, or skip (n).", "warn");
      return;
    }
    if (opts.pictureShown && !opts.pictureShown()) {
      notify("The picture is still loading: accept once you have seen it.", "warn");
      return;
    }
    if (!anns.length && detail.status === "new") {
      // Not pre-annotated yet: there is nothing to accept, and "done" would say a model looked.
      markSkipped(pid, imageId);
      notify("This image has not been pre-annotated yet, so there is nothing to accept; it stays new.", "warn");
      return void nextImage();
    }
    accepting.current = true;
    setBusy(true);
    if (failedAccept.current) dismiss(failedAccept.current.note);
    failedAccept.current = null;
    try {
      // What this screen shows: an object changed or added since then refuses the accept (409).
      // With no objects it marks the image done (reviewed: nothing to label); it stayed
      // pre-labeled and Enter went back and forth between two empty images.
      await post(`${P(pid)}/images/${imageId}/accept-all/`, { seen: anns.map((a) => [a.id, a.version]) });
      const unclassified = anns.filter((a) => a.label_class === null && a.class_review === "pending").length;
      if (unclassified) {
        // The image stays in the queue with them: not offered again this session (Enter went back and forth between two such images).
        markSkipped(pid, imageId);
        notify(`${unclassified} object${unclassified > 1 ? "s have" : " has"} no class and stay${unclassified > 1 ? "" : "s"} pending; this image is set aside for now (the queue page offers it again).`, "warn");
      }
      dropBundle(pid, imageId);
      await nextImage();
    } catch (e: any) {
      const refused = claimRefusal(e);
      if (refused) {
        setClaim({ state: "other", by: refused.by });
        notify(claimMessage(refused, "the acceptance"), "error");
      } else if (e instanceof ApiError && e.status === 409 && Array.isArray(e.body?.current)) {
        // Someone changed or added objects since this screen showed them: show them, accept nothing.
        const current = (e.body.current as Annotation[]).filter((c) => c.image === imageId && openImage.current === imageId);
        opts.updateAnns?.((list) => [...list.map((a) => current.find((c) => c.id === a.id) ?? a),
          ...current.filter((c) => !list.some((a) => a.id === c.id))]);
        dropBundle(pid, imageId);
        notify(`${sentence(e.message)} They are shown now.`, "error");
      } else if (e instanceof ApiError && e.status === 404 && (await checkProjectAccess(pid)) === "lost") {
        // the project layout says the user lost access
      } else if (e instanceof ApiError && e.status === 404) {
        // The image itself was deleted meanwhile: say so and go on, not "Image not found" and stay.
        opts.onImageGone?.();
        dropBundle(pid, imageId);
        notify(`${IMAGE_GONE_MESSAGE} Opened the next image.`, "warn");
        await nextImage();
      } else if (retryable(e)) {
        // Offline or a server hiccup: Retry on the message, and sent again by itself once the
        // connection is back (black-box round 17: the accept was the one write with neither).
        const note = notify(`Couldn't accept this image: ${sentence(e.message)} Nothing was lost: Retry, or it is sent again once the connection is back.`, "error",
          { label: "Retry", run: () => void latestAccept.current() });
        failedAccept.current = { note, imageId };
      } else notify(`Couldn't accept this image: ${sentence(e.message)}`, "error");
    } finally {
      accepting.current = false;
      setBusy(false);
    }
  };

  latestAccept.current = acceptAllAndNext;
  return { busy, skip, previous, toQueue, acceptAllAndNext };
}
