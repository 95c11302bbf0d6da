/** Moving on from the open image: accept all and next, skip, back to the previous image. */
import { useRef, useState } from "react";
import { checkProjectAccess, retryable } from "../api/access";
import { ApiError, P, post, type Annotation, type ImageDetail } from "../api/client";
import { notify } from "../notify";
import { navigate } from "../router";
import { dropBundle } from "./bundle";
import { markSkipped, nextImageId, queueFilters } from "./queue";
import { claimMessage, claimRefusal } from "./rules";
import type { ClaimState } from "./useClaim";
import { cannotReviewMessage } from "./useAnnotationWrites";

/** Said whenever moving on would drop a mask edit the server has not accepted. */
export const UNSAVED_MESSAGE = "A mask edit is not saved yet — retry or undo it before moving on.";

/** "…in this project." + " Nothing was lost…" without doubling the full stop. */
const sentence = (s: string) => (/[.!?…]$/.test(s.trim()) ? s.trim() : `${s.trim()}.`);

export function useReviewNavigation(opts: {
  pid: number; imageId: number; detail: ImageDetail | null; anns: Annotation[]; readOnly: boolean;
  canReview?: boolean; role?: string | null;
  unsaved: Map<number, unknown>; refuseReadOnly: () => void; setClaim: (c: ClaimState) => void;
}) {
  const { pid, imageId, detail, anns, readOnly, unsaved, refuseReadOnly, setClaim } = opts;
  const canReview = opts.canReview ?? true;
  /** An unsaved mask blocks every way on from this image (Enter, n, p, the queue). */
  const blockedByUnsaved = (): boolean => {
    if (!unsaved.size) return false;
    notify(UNSAVED_MESSAGE, "error");
    return true;
  };
  const [busy, setBusy] = useState(false);
  const historyRef = useRef<number[]>([]);

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
      if (e instanceof ApiError && e.status === 404 && (await checkProjectAccess(pid)) === "lost") return;
      notify(`Couldn't find the next image: ${e.message}`, "error");
    }
  };
  const skip = () => {
    if (blockedByUnsaved()) return;
    markSkipped(pid, imageId);
    void nextImage();
  };
  /** Back to the image opened before this one; false when there is none. */
  const previous = (): boolean => {
    if (!historyRef.current.length) return false;
    if (blockedByUnsaved()) return true;
    const prev = historyRef.current.pop();
    if (prev) navigate(`/p/${pid}/review/${prev}`);
    return !!prev;
  };
  /** The queue page (it opens the next image with the chosen filters). */
  const toQueue = () => {
    if (blockedByUnsaved()) return;
    navigate(`/p/${pid}/review?filters`);
  };

  const acceptAllAndNext = async () => {
    if (busy || !detail) return;
    if (readOnly) return refuseReadOnly();
    if (!canReview) {
      notify(`${cannotReviewMessage(opts.role)} Press n for the next image.`, "warn");
      return;
    }
    if (blockedByUnsaved()) return;
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
      } else if (e instanceof ApiError && e.status === 404 && (await checkProjectAccess(pid)) === "lost") {
        // the project layout says the user lost access
      } else if (retryable(e)) {
        notify(`Couldn't accept this image: ${sentence(e.message)} Nothing was lost; try again.`, "error");
      } else notify(`Couldn't accept this image: ${sentence(e.message)}`, "error");
    } finally {
      setBusy(false);
    }
  };

  return { busy, skip, previous, toQueue, acceptAllAndNext };
}
