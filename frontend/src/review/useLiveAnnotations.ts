/** Other reviewers' changes to the open image, from the project websocket. */
import { useEffect, useRef, type Dispatch, type RefObject, type SetStateAction } from "react";
import { checkProjectAccess } from "../api/access";
import { ApiError, get, P, type Annotation, type ImageDetail } from "../api/client";
import { subscribe } from "../api/live";
import { notify } from "../notify";
import { heldByOther, type ClaimState } from "./useClaim";

/** A job (or a big import) rewrote the open image's proposals: objects vanished and appeared
 * under the reviewer without a word (black-box round 15). Say what changed, and by what. */
export function replacedText(before: Pick<Annotation, "id">[], after: Pick<Annotation, "id">[], job?: number): string | null {
  const now = new Set(after.map((a) => a.id));
  const was = new Set(before.map((a) => a.id));
  const removed = before.filter((a) => !now.has(a.id)).length;
  const added = after.filter((a) => !was.has(a.id)).length;
  if (!removed && !added) return null;
  const parts = [removed && `${removed} removed`, added && `${added} added`].filter(Boolean).join(", ");
  return job
    ? `Pre-annotation job #${job} replaced this image's untouched proposals (${parts}); edits people made are kept.`
    : `An import or a re-score changed this image's objects (${parts}).`;
}

function sayReplaced(before: Annotation[], after: Annotation[], job?: number) {
  const text = replacedText(before, after, job);
  if (text) notify(text, "info");
}

/** What someone else's change to an object of the open image did, in words. */
export function changedText(by: string, before: Annotation | undefined, after: Annotation): string {
  if (!before) return `${by} added an object to this image (${after.class_name ?? "no class"}).`;
  if (before.label_class !== after.label_class)
    return `${by} changed an object's class: ${before.class_name ?? "no class"} → ${after.class_name ?? "no class"}.`;
  if (JSON.stringify(before.mask_rle) !== JSON.stringify(after.mask_rle)) return `${by} changed the mask of an object (${after.class_name ?? "no class"}).`;
  return `${by} reviewed an object on this image (${after.class_name ?? "no class"}).`;
}

export function useLiveAnnotations(opts: {
  pid: number; imageId: number; me: string;
  annsRef: RefObject<Annotation[]>; updateAnns: (fn: (list: Annotation[]) => Annotation[]) => void;
  setDetail: Dispatch<SetStateAction<ImageDetail | null>>;
  setClaim: Dispatch<SetStateAction<ClaimState>>;
  /** Someone deleted the open image (`image.deleted`, backend/images/services.py). */
  onImageGone?: (by?: string) => void;
  /** This user holds the open image: a change someone else makes (an admin's forced edit) is told. */
  holding?: () => boolean;
}) {
  const { pid, imageId, me, annsRef, updateAnns, setDetail, setClaim } = opts;
  // The image open now: an answer that arrives after the reviewer moved on belongs to the image
  // left (its objects were appended to the next image's list, and could be deleted from there).
  const open = useRef(imageId);
  open.current = imageId;
  useEffect(() => subscribe(pid, (ev) => {
    const e = ev as any;
    // A change too big to announce per object (a large re-scoring or import) names its images.
    const bulkHere = ev.type === "annotations.bulk" && Array.isArray(e.images) && e.images.includes(imageId);
    if (ev.type === "resync" || bulkHere) {
      // Live events were missed: take the server's current status, objects and claim.
      get<ImageDetail>(`${P(pid)}/images/${imageId}/`).then((fresh) => {
        if (open.current !== imageId) return;
        if (bulkHere) sayReplaced(annsRef.current ?? [], fresh.annotations, e.job);
        setDetail(fresh);
        updateAnns((list) => fresh.annotations.map((a) => {
          const local = list.find((x) => x.id === a.id);
          return local && local.version > a.version ? local : a;
        }));
        const other = heldByOther(fresh, me);
        setClaim((c) => (other ? (c.state === "mine" ? c : { state: "other", by: fresh.claimed_by! }) : c.state === "other" ? { state: "pending" } : c));
      }).catch(async (err) => {
        // Missed events may include the image's deletion.
        if (err instanceof ApiError && err.status === 404 && (await checkProjectAccess(pid)) === "ok") opts.onImageGone?.();
      });
      return;
    }
    if (e.image !== imageId) return;
    if (ev.type === "image.deleted") {
      opts.onImageGone?.(typeof e.by === "string" && e.by !== me ? e.by : undefined);
      return;
    }
    if (ev.type === "annotation.changed") {
      const local = annsRef.current.find((a) => a.id === e.annotation);
      const byOther = typeof e.by === "string" && e.by !== me && !!opts.holding?.();
      if (e.action === "deleted") {
        if (byOther && local) notify(`${e.by} deleted an object on this image (${local.class_name ?? "no class"}).`, "warn");
        updateAnns((list) => list.filter((a) => a.id !== e.annotation));
        return;
      }
      if (local && local.version >= e.version) return;
      get<Annotation>(`${P(pid)}/annotations/${e.annotation}/`)
        .then((a) => {
          if (open.current !== imageId || a.image !== imageId) return;
          // Said, not only shown: a class switched under the reviewer was accepted unnoticed (black-box round 18).
          if (byOther) notify(changedText(e.by, local, a), "warn");
          updateAnns((list) => (list.some((x) => x.id === a.id) ? list.map((x) => (x.id === a.id && x.version < a.version ? a : x)) : [...list, a]));
        })
        .catch(() => undefined);
    } else if (ev.type === "image.status") {
      setDetail((d) => (d ? { ...d, status: e.status, version: e.version } : d));
    } else if (ev.type === "image.claimed" && e.claimed_by !== me) {
      setClaim({ state: "other", by: e.claimed_by });
    } else if (ev.type === "image.released") {
      setClaim((c) => (c.state === "other" ? { state: "pending" } : c));
    }
  }), [pid, imageId]);
}
