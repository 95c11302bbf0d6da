/**
 * The server's review rules as the workspace shows them: a write to an image someone else holds
 * is a 409 `claimed` naming the holder, and an annotator's edit waits for a reviewer.
 */
import type { Annotation } from "../api/client";
import type { Decision, ReviewTarget } from "./ObjectList";

export interface ClaimRefusal {
  by: string;
  until: string | null;
}

/** The holder named by a 409 `claimed` answer, or null for any other error. */
export function claimRefusal(e: unknown): ClaimRefusal | null {
  const err = e as { status?: number; body?: { code?: string; claimed_by?: string; expires_at?: string } } | null;
  if (!err || err.status !== 409 || err.body?.code !== "claimed") return null;
  return { by: err.body.claimed_by || "another reviewer", until: err.body.expires_at ?? null };
}

/** "boris holds this image until 14:05; the class was not saved…" in the user's local time. */
export function claimMessage(r: ClaimRefusal, what: string): string {
  const until = r.until && !Number.isNaN(Date.parse(r.until))
    ? ` until ${new Date(r.until).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`
    : "";
  return `${r.by} holds this image${until}; ${what || "your change"} was not saved. It is read-only for you until they move on.`;
}

/** An object a person edited that still waits for a reviewer's decision. */
export function awaitsReview(a: Pick<Annotation, "class_review" | "mask_review" | "source">, editedHere: boolean): boolean {
  const pending = a.class_review === "pending" || a.mask_review === "pending";
  return pending && (editedHere || a.source === "human");
}

/** Why a class cannot be accepted yet (the server refuses it with a 400). */
export const NO_CLASS_HINT = "This object has no class yet. Choose a class before accepting it (1–9 or /).";

/** What a review key sends for an object without a class: accepting its class is refused by the
 * server, so `c` sends nothing and `a` accepts the mask only (the whole request failed before). */
export function reviewPlan(a: Pick<Annotation, "label_class">, target: ReviewTarget, decision: Decision): { target: ReviewTarget | null; note?: string } {
  if (decision !== "accepted" || target === "mask" || (a.label_class !== null && a.label_class !== undefined)) return { target };
  if (target === "class") return { target: null, note: NO_CLASS_HINT };
  return { target: "mask", note: `Accepted the mask only. ${NO_CLASS_HINT}` };
}
