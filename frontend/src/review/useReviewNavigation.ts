/** Moving on from the open image: accept all and next, skip, back to the previous image. */
import { useRef, useState } from "react";
import { P, post, type Annotation, type ImageDetail } from "../api/client";
import { notify } from "../notify";
import { navigate } from "../router";
import { dropBundle } from "./bundle";
import { markSkipped, nextImageId, queueFilters } from "./queue";
import { claimMessage, claimRefusal } from "./rules";
import type { ClaimState } from "./useClaim";

export function useReviewNavigation(opts: {
  pid: number; imageId: number; detail: ImageDetail | null; anns: Annotation[]; readOnly: boolean;
  unsaved: Map<number, unknown>; refuseReadOnly: () => void; setClaim: (c: ClaimState) => void;
}) {
  const { pid, imageId, detail, anns, readOnly, unsaved, refuseReadOnly, setClaim } = opts;
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
      notify(`Couldn't find the next image: ${e.message}`, "error");
    }
  };
  const skip = () => {
    markSkipped(pid, imageId);
    void nextImage();
  };
  /** Back to the image opened before this one; false when there is none. */
  const previous = (): boolean => {
    const prev = historyRef.current.pop();
    if (prev) navigate(`/p/${pid}/review/${prev}`);
    return !!prev;
  };

  const acceptAllAndNext = async () => {
    if (busy || !detail) return;
    if (readOnly) return refuseReadOnly();
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

  return { busy, skip, previous, acceptAllAndNext };
}
