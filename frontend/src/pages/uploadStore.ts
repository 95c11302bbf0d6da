/**
 * The upload list lives here, not in the Upload page: uploads keep running while the user looks
 * at another page of the app, and coming back shows them. Leaving the app (reload, closing the
 * tab) while one runs asks first; a file picked again after that resumes (api/upload.ts).
 */
import { useSyncExternalStore } from "react";
import { CANCEL, pool, uploadFile, UploadCancelled, type Phase, type UploadResult } from "../api/upload";

export interface Item {
  id: number;
  name: string;
  size: number;
  sent: number;
  phase: Phase;
  note?: string;
  resumedFrom?: number;
  result?: UploadResult;
  error?: string;
}

const PARALLEL = 3; // files in flight at once: enough to hide latency, few enough to keep order visible
const EMPTY: Item[] = [];
let seq = 0;
const lists = new Map<number, Item[]>(); // by project
// Aborted by a sign-out: the files in flight stop and the queued ones never start, so nothing
// goes on uploading under the next user who signs in on this tab.
let controller = new AbortController();
/** One per file not finished yet: its Cancel aborts it with the reason CANCEL (api/upload.ts). */
const cancels = new Map<number, AbortController>();
const subs = new Set<() => void>();
const emit = () => subs.forEach((s) => s());

export const isRunning = (i: Item) => i.phase !== "done" && i.phase !== "failed" && i.phase !== "cancelled";
/** A file still before or in sending can be cancelled; once the server has it all it is processed. */
export const isCancellable = (i: Item) => isRunning(i) && i.phase !== "processing";

export function uploadsOf(pid: number): Item[] {
  return lists.get(pid) ?? EMPTY;
}
/** Files not finished yet, in one project or in all of them. */
export function runningCount(pid?: number): number {
  const all = pid === undefined ? [...lists.values()].flat() : uploadsOf(pid);
  return all.filter(isRunning).length;
}
export function subscribeUploads(fn: () => void): () => void {
  subs.add(fn);
  return () => void subs.delete(fn);
}
/** Clears the list (tests; the list otherwise lasts as long as the tab). */
export function resetUploads() {
  lists.clear();
  emit();
}

/** Sign-out: stop every upload and forget the list. The server keeps what it received (for 24 h)
 * and this browser keeps the sessions, so the same files picked after signing in resume. */
export const STOPPED_SIGNED_OUT = "Stopped: you were signed out. Sign in and pick the same files again to resume where it stopped.";

/** A sign-out: everything stops. This tab's own sign-out clears the list (the next user of the
 * tab starts afresh); a session that ended elsewhere (`keep`) leaves it on the page, each file
 * not finished marked stopped, for its user to pick the files again (it was wiped, round 15). */
export function stopAllUploads({ keep = false }: { keep?: boolean } = {}) {
  controller.abort();
  controller = new AbortController();
  cancels.forEach((c) => c.abort()); // no reason: stopped, not cancelled (the sessions are kept)
  cancels.clear();
  if (!keep) { resetUploads(); return; }
  for (const [pid, items] of lists) {
    lists.set(pid, items.map((i) => (isRunning(i) ? { ...i, phase: "failed", note: undefined, error: STOPPED_SIGNED_OUT } : i)));
  }
  emit();
}

/** The user's Cancel: stop sending this file, have the server drop what it received, and show
 * the file as cancelled (not failed). A file still waiting never starts. */
export function cancelUpload(pid: number, id: number) {
  const item = uploadsOf(pid).find((i) => i.id === id);
  if (!item || !isCancellable(item)) return;
  cancels.get(id)?.abort(CANCEL);
  cancels.delete(id);
  update(pid, id, { phase: "cancelled", note: undefined });
}
/** Cancel every file of the project not yet with the server whole; returns how many. */
export function cancelAllUploads(pid: number): number {
  const ids = uploadsOf(pid).filter(isCancellable).map((i) => i.id);
  ids.forEach((id) => cancelUpload(pid, id));
  return ids.length;
}

function update(pid: number, id: number, patch: Partial<Item>) {
  lists.set(pid, uploadsOf(pid).map((i) => (i.id === id ? { ...i, ...patch } : i)));
  emit();
}

/** Queue `files` for project `pid`; `upload` is the sender (api/upload.ts, replaced in tests). */
export function startUploads(pid: number, files: File[], upload = uploadFile): Promise<void> {
  if (!files.length) return Promise.resolve();
  const { signal } = controller; // the sign-out's
  const added: Item[] = files.map((f) => ({ id: ++seq, name: f.name, size: f.size, sent: 0, phase: "waiting" }));
  lists.set(pid, [...uploadsOf(pid), ...added]);
  // Each file's own controller, aborted by its Cancel or by a sign-out (stopAllUploads).
  for (const item of added) cancels.set(item.id, new AbortController());
  emit();
  const jobs = added.map((item, i) => ({ item, file: files[i] }));
  const cancelled = (id: number) => uploadsOf(pid).find((i) => i.id === id)?.phase === "cancelled";
  return pool(jobs, PARALLEL, async ({ item, file }) => {
    const own = cancels.get(item.id);
    if (signal.aborted || !own || own.signal.aborted) return;
    const mine = own.signal;
    try {
      const result = await upload(pid, file, (p) => !mine.aborted && update(pid, item.id, { phase: p.phase, sent: p.sent, note: p.note, resumedFrom: p.resumedFrom }), mine);
      if (signal.aborted) return;
      const failed = result.created.length === 0 && result.duplicates.length === 0 && result.errors.length > 0;
      // A cancel that came too late (the server had the whole file): its result is shown.
      update(pid, item.id, { phase: failed ? "failed" : "done", sent: file.size, note: undefined, result });
    } catch (e: any) {
      if (signal.aborted) return;
      if (e instanceof UploadCancelled || cancelled(item.id)) {
        update(pid, item.id, { phase: "cancelled", note: e instanceof UploadCancelled && !e.dropped ? e.message : undefined });
      } else {
        update(pid, item.id, { phase: "failed", note: undefined, error: e?.message ?? String(e) });
      }
    } finally {
      cancels.delete(item.id);
    }
  });
}

/** The project's upload list, re-rendered as it changes. */
export function useUploads(pid: number): Item[] {
  return useSyncExternalStore(subscribeUploads, () => uploadsOf(pid));
}
/** How many of the project's files are still going (for the tab's badge). */
export function useRunningUploads(pid: number): number {
  return useSyncExternalStore(subscribeUploads, () => runningCount(pid));
}

/** Reloading or closing the tab would stop the uploads: the browser asks first. */
export function warnBeforeUnload(e: BeforeUnloadEvent): string | undefined {
  if (runningCount() === 0) return undefined;
  e.preventDefault();
  const text = "Uploads are still running. Leave anyway? Pick the same files again later to resume them.";
  e.returnValue = text; // older browsers want it set
  return text;
}
if (typeof window !== "undefined") window.addEventListener("beforeunload", warnBeforeUnload);
