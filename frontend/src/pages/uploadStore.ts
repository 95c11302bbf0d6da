/**
 * The upload list lives here, not in the Upload page: uploads keep running while the user looks
 * at another page of the app, and coming back shows them. Leaving the app (reload, closing the
 * tab) while one runs asks first; a file picked again after that resumes (api/upload.ts).
 */
import { useSyncExternalStore } from "react";
import { pool, uploadFile, type Phase, type UploadResult } from "../api/upload";

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
const subs = new Set<() => void>();
const emit = () => subs.forEach((s) => s());

export const isRunning = (i: Item) => i.phase !== "done" && i.phase !== "failed";

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
export function stopAllUploads() {
  controller.abort();
  controller = new AbortController();
  resetUploads();
}

function update(pid: number, id: number, patch: Partial<Item>) {
  lists.set(pid, uploadsOf(pid).map((i) => (i.id === id ? { ...i, ...patch } : i)));
  emit();
}

/** Queue `files` for project `pid`; `upload` is the sender (api/upload.ts, replaced in tests). */
export function startUploads(pid: number, files: File[], upload = uploadFile): Promise<void> {
  if (!files.length) return Promise.resolve();
  const { signal } = controller;
  const added: Item[] = files.map((f) => ({ id: ++seq, name: f.name, size: f.size, sent: 0, phase: "waiting" }));
  lists.set(pid, [...uploadsOf(pid), ...added]);
  emit();
  const jobs = added.map((item, i) => ({ item, file: files[i] }));
  return pool(jobs, PARALLEL, async ({ item, file }) => {
    if (signal.aborted) return;
    try {
      const result = await upload(pid, file, (p) => update(pid, item.id, { phase: p.phase, sent: p.sent, note: p.note, resumedFrom: p.resumedFrom }), signal);
      if (signal.aborted) return;
      const failed = result.created.length === 0 && result.duplicates.length === 0 && result.errors.length > 0;
      update(pid, item.id, { phase: failed ? "failed" : "done", sent: file.size, note: undefined, result });
    } catch (e: any) {
      if (signal.aborted) return;
      update(pid, item.id, { phase: "failed", note: undefined, error: e?.message ?? String(e) });
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
