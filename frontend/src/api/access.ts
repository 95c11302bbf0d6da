/**
 * Losing access to a project while a page of it is open (an admin removed you, or deleted the
 * project): every project route then answers 404 and the live socket is closed with 4403. A 404
 * on an object is told apart from that by asking for the project itself; the project layout
 * listens here and replaces the page with a notice and a way back to the project list.
 */
import { ApiError, get, P } from "./client";

export const LOST_ACCESS_MESSAGE = "You no longer have access to this project (you were removed from it, or it was deleted).";

const subs = new Set<(project: number) => void>();

export function reportLostAccess(project: number) {
  subs.forEach((s) => s(project));
}
export function onLostAccess(fn: (project: number) => void): () => void {
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
