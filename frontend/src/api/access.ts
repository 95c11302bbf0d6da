/**
 * Losing access to a project while a page of it is open (an admin removed you, or deleted the
 * project): every project route then answers 404 and the live socket is closed with 4403. A 404
 * on an object is told apart from that by asking for the project itself; the project layout
 * listens here and replaces the page with a notice and a way back to the project list. A deletion
 * is pushed live (`project.deleted`, naming who deleted it) before the socket closes.
 */
import { ApiError, get, P } from "./client";

export const LOST_ACCESS_MESSAGE = "You no longer have access to this project (you were removed from it, or it was deleted).";

/** How access was lost: `deletedBy` set (a username, or null when unknown) means the project was
 * deleted; absent, it may have been either (a 404, a 4403 close). */
export type LostAccess = { deletedBy?: string | null };

/** The words for a lost project: who deleted it when that is known, else the cautious both. */
export function lostAccessMessage(how: LostAccess, me?: string): string {
  if (how.deletedBy === undefined) return LOST_ACCESS_MESSAGE;
  if (how.deletedBy === null) return "This project was deleted.";
  return how.deletedBy === me ? "You deleted this project." : `This project was deleted by ${how.deletedBy}.`;
}

/** The 404 every project route answers once the project is out of reach (backend/projects/access.py). */
export const PROJECT_NOT_FOUND = "Project not found.";

const subs = new Set<(project: number, how: LostAccess) => void>();

export function reportLostAccess(project: number, how: LostAccess = {}) {
  subs.forEach((s) => s(project, how));
}
export function reportProjectDeleted(project: number, by: string | null) {
  reportLostAccess(project, { deletedBy: by });
}
export function onLostAccess(fn: (project: number, how: LostAccess) => void): () => void {
  subs.add(fn);
  return () => void subs.delete(fn);
}
/** After a 404 inside a project: "lost" (reported) when the project itself is gone for this user,
 * "ok" when it still opens (the object really is gone), "unknown" when the check itself failed. */
export async function checkProjectAccess(project: number): Promise<"ok" | "lost" | "unknown"> {
  try {
    await get(`${P(project)}/`);
    return "ok";
  } catch (e) {
    // Signed out (here or in another tab) is not a lost project: the app asks to sign in again.
    if (e instanceof ApiError && e.status === 403 && e.body?.code === "not_authenticated") return "unknown";
    if (e instanceof ApiError && (e.status === 404 || e.status === 403)) {
      reportLostAccess(project);
      return "lost";
    }
    return "unknown";
  }
}

/** Whether an error is worth retrying as is: the network or the server failed (not a refusal). */
export function retryable(e: unknown): boolean {
  return !(e instanceof ApiError) || e.status === 0 || e.status >= 500;
}
