/** The review queue: the server's /images/next/ when it exists, else the image list as a fallback. */
import { ApiError, get, P, qs, type ImageRow, type Page } from "../api/client";

export interface QueueFilters {
  status: string;
  label_class: string;
}
const KEY = (pid: number) => `razmetka.queue.${pid}`;
export function queueFilters(pid: number): QueueFilters {
  try {
    return { status: "", label_class: "", ...JSON.parse(sessionStorage.getItem(KEY(pid)) || "{}") };
  } catch {
    return { status: "", label_class: "" };
  }
}
export function setQueueFilters(pid: number, f: QueueFilters) {
  sessionStorage.setItem(KEY(pid), JSON.stringify(f));
}

let hasNextRoute: boolean | undefined;
/** Images skipped in this session, per project: the queue does not offer them again. */
const skipped = new Map<number, Set<number>>();
export function markSkipped(pid: number, id: number) {
  if (!skipped.has(pid)) skipped.set(pid, new Set());
  skipped.get(pid)!.add(id);
}
/** How many images this session set aside (skipped, or left with objects without a class). */
export function skippedCount(pid: number): number {
  return skipped.get(pid)?.size ?? 0;
}
/** Offer the set-aside images again. */
export function clearSkipped(pid: number) {
  skipped.delete(pid);
}
/** A queue filtered by status (a QA pass over "done" images) keeps the images it reviewed: the images
 *  this session moved on from are not offered again in that pass (Enter went 2 → 3 → 2 → 3 over seven
 *  done images). Without a status filter, reviewed images leave the queue by themselves. */
const passed = new Map<string, Set<number>>();
const passKey = (pid: number, f: QueueFilters) => `${pid}|${f.status}|${f.label_class}`;
/** How many images this session went through in the pass over `f` (0 without a status filter). */
export function passedCount(pid: number, f: QueueFilters): number {
  return f.status ? passed.get(passKey(pid, f))?.size ?? 0 : 0;
}
/** Go through the images of the pass over `f` again. */
export function clearPass(pid: number, f: QueueFilters) {
  passed.delete(passKey(pid, f));
}
function passedIn(pid: number, f: QueueFilters, after: number | null): Set<number> {
  if (!f.status) return new Set();
  const key = passKey(pid, f);
  if (!passed.has(key)) passed.set(key, new Set());
  if (after !== null) passed.get(key)!.add(after);
  return passed.get(key)!;
}

/** Next image id to review after `after` (skipping `skip`), or null when the queue is empty.
 *  `claim`: the reviewer moves there now, so the server claims it in the same request; a
 *  look-ahead must not (a claim releases the user's other claims: the open image's). */
export async function nextImageId(
  pid: number, f: QueueFilters, after: number | null, skip: Set<number> = new Set(), { claim = false } = {},
): Promise<number | null> {
  const done = passedIn(pid, f, after);
  if (hasNextRoute !== false) {
    try {
      const exclude = [...new Set([...done, ...(after === null ? [] : [after]), ...skip, ...(skipped.get(pid) ?? [])])].slice(-200);
      // claim=1: found and claimed in one request, so two reviewers pressing Enter at once get two
      // images (the server claims only for a role that can annotate).
      const img = await get<ImageRow | undefined>(`${P(pid)}/images/next/${qs({ status: f.status, label_class: f.label_class, after: exclude.join(","), claim: claim ? "1" : undefined })}`);
      hasNextRoute = true;
      if (!img) return null;
      if (!skip.has(img.id)) return img.id;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405) && e.body?.code !== "not_found_image") hasNextRoute = false;
      else throw e;
    }
  }
  const statuses = f.status ? [f.status] : ["prelabeled", "in_review"];
  for (const status of statuses) {
    const page = await get<Page<ImageRow>>(`${P(pid)}/images/${qs({ status, label_class: f.label_class, ordering: "id", page_size: 200 })}`);
    const rows = page.results.filter((r) => r.id !== after && !skip.has(r.id) && !done.has(r.id) && !skipped.get(pid)?.has(r.id) && !r.claimed_by);
    const later = rows.find((r) => after === null || r.id > after);
    if (later) return later.id;
    if (rows.length) return rows[0].id;
  }
  return null;
}
