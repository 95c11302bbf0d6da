/**
 * Chunked, resumable uploads. Each file gets a server session; chunks go as raw PUT bodies at
 * the offset the server holds, so a dropped connection resumes where it stopped (the server says
 * where) instead of starting over. One chunk per request: no files-per-request limit applies.
 * After the last chunk the server's cpu worker validates and stores; we wait for its result.
 * Open sessions are remembered in localStorage, so a reload (or picking the same file again
 * later) goes on from what the server already holds instead of sending it all again.
 */
import { ApiError, api, csrfToken, errorText, get, P, post } from "./client";
import { subscribe } from "./live";

export interface UploadResult {
  created: number[];
  duplicates: { name: string; existing_id: number }[];
  errors: { name: string; error: string }[];
}

export interface UploadSession {
  id: number;
  file_name: string;
  size_bytes: number;
  received_bytes: number;
  status: "receiving" | "queued" | "processing" | "done" | "failed";
  result: UploadResult;
  chunk_bytes: number;
}

export type Phase = "waiting" | "hashing" | "sending" | "reconnecting" | "processing" | "done" | "failed" | "cancelled";

export interface Progress {
  phase: Phase;
  sent: number; // bytes the server has (plus the chunk in flight)
  note?: string; // e.g. "connection lost, retrying in 4 s"
  resumedFrom?: number; // bytes an earlier page load already sent (this one goes on from there)
}

const HASH_LIMIT = 32 * 1024 * 1024; // hashing lets a re-upload skip known files; cheap below this
const MAX_RETRIES = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retry delays grow to 10 s: long enough for a flaky link, short enough to resume promptly. */
export const backoff = (attempt: number) => Math.min(10_000, 500 * 2 ** Math.min(attempt, 5));

async function sha256Hex(file: File): Promise<string> {
  if (file.size > HASH_LIMIT || !globalThis.crypto?.subtle) return "";
  try {
    const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  } catch {
    return ""; // the server hashes anyway; this is only a shortcut
  }
}

/** PUT one chunk with upload progress (fetch has none). Resolves with status and parsed body. */
function putChunk(url: string, blob: Blob, onSent: (n: number) => void, signal?: AbortSignal): Promise<{ status: number; body: any }> {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.open("PUT", url);
    xhr.withCredentials = true;
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => onSent(e.loaded);
    xhr.onload = () => {
      let body: any = xhr.responseText;
      try { body = JSON.parse(xhr.responseText); } catch { /* keep text */ }
      resolve({ status: xhr.status, body });
    };
    // A network error or abort: status 0, the caller asks the server where it stands.
    xhr.onerror = () => resolve({ status: 0, body: null });
    xhr.onabort = () => resolve({ status: 0, body: null });
    xhr.send(blob);
  });
}

const transient = (status: number) => status === 0 || status === 502 || status === 503 || status === 504;
/** A refusal that is about the caller, not the file: signed out (or the role lowered meanwhile).
 * Signing in again and picking the file resumes it, so its session is not forgotten. */
const aboutTheCaller = (status: number) => status === 401 || status === 403;

/** Thrown when the upload was stopped (a sign-out): nothing failed, the file can be resumed. */
export class UploadStopped extends Error {
  constructor() {
    super("Upload stopped.");
  }
}
/** The abort reason of a cancel by the user (a sign-out aborts without one): the session is
 * dropped on the server too and the file is not resumed later. */
export const CANCEL = "cancel";
/** Thrown when the user cancelled the file. `dropped`: the server dropped what it had received;
 * false when it had the whole file already (it is then processed anyway) or could not be told. */
export class UploadCancelled extends Error {
  constructor(public dropped: boolean) {
    super(dropped ? "Cancelled." : "Cancelled here; the server already had the whole file and may still add it.");
  }
}
const checkStopped = (signal?: AbortSignal) => {
  if (signal?.aborted) throw signal.reason === CANCEL ? new UploadCancelled(true) : new UploadStopped();
};
/** What a refusal to open a session says, without the API's field names ("size_bytes: …"). */
export function refusalText(e: unknown): string {
  if (e instanceof ApiError && e.body && typeof e.body === "object" && !e.body.detail) {
    const parts = Object.values(e.body).flatMap((v) => (Array.isArray(v) ? v : [v])).filter((v) => typeof v === "string");
    if (parts.length) return parts.join(" ");
  }
  return e instanceof Error ? e.message : String(e);
}
export const EMPTY_FILE = "The file is empty (0 bytes); there is nothing to upload.";

// ------------------------------------------------------------------ remembered sessions

const KEY_PREFIX = "razmetka.upload:";
// The server drops a session that stopped receiving after 24 h (upload_sessions.STALE_AFTER).
const REMEMBER_MS = 24 * 3600 * 1000;
/** Files this tab is sending now (by key): the same file picked twice at once gets its own session. */
const sending = new Set<string>();

/** What identifies "the same file picked again": project, name, size, date, and its hash when known. */
export function resumeKey(pid: number, file: File, sha256: string): string {
  return `${KEY_PREFIX}${pid}:${file.size}:${file.lastModified}:${sha256}:${file.name}`;
}

const storage = (): Storage | null => {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage disabled: uploads still work, they just do not survive a reload
  }
};

/** The session id remembered for `key`, unless it is older than the server keeps it. */
export function recall(key: string, now = Date.now()): number | null {
  try {
    const raw = storage()?.getItem(key);
    if (!raw) return null;
    const { id, at } = JSON.parse(raw);
    if (typeof id === "number" && typeof at === "number" && now - at < REMEMBER_MS) return id;
  } catch { /* unreadable: forget it */ }
  forget(key);
  return null;
}
export function remember(key: string, id: number, now = Date.now()) {
  try { storage()?.setItem(key, JSON.stringify({ id, at: now })); } catch { /* full or disabled */ }
}
export function forget(key: string) {
  try { storage()?.removeItem(key); } catch { /* disabled */ }
}
/** Drop remembered sessions the server has dropped by now: a file never picked again left its
 * key in the browser for good. Run once per page load. */
export function forgetStale(now = Date.now()) {
  const store = storage();
  if (!store) return;
  try {
    const keys = Array.from({ length: store.length }, (_, i) => store.key(i)).filter((k): k is string => !!k?.startsWith(KEY_PREFIX));
    keys.forEach((k) => recall(k, now)); // recall forgets what is too old or unreadable
  } catch { /* disabled */ }
}
if (typeof window !== "undefined") forgetStale();

/**
 * The session to send `file` into: the remembered one when the server still receives it (or is
 * already processing it), else a new one. A remembered session that is gone, finished, failed or
 * does not match the file is forgotten.
 */
export async function openSession(
  pid: number, file: File, sha256: string, key: string | null, onProgress: (p: Progress) => void,
): Promise<{ session: UploadSession; resumed: boolean }> {
  const base = `${P(pid)}/images/uploads/`;
  const known = key ? recall(key) : null;
  if (key && known !== null) {
    try {
      const s = await withRetry(() => get<UploadSession>(`${base}${known}/`), onProgress, 0);
      const live = s.status === "receiving" || s.status === "queued" || s.status === "processing";
      if (live && s.size_bytes === file.size) return { session: s, resumed: true };
    } catch (e) {
      // Unreachable (or not the server speaking) or signed out: keep the key and report it; a
      // refusal of the session means start over.
      if (!(e instanceof ApiError) || transient(e.status) || aboutTheCaller(e.status)) throw e;
    }
    forget(key);
  }
  let session: UploadSession;
  try {
    session = await withRetry(() => post<UploadSession>(base, { file_name: file.name, size_bytes: file.size, sha256 }), onProgress, 0);
  } catch (e) {
    // A refusal names the request's fields ({"size_bytes": [...]}): say it without them.
    if (e instanceof ApiError && !transient(e.status) && !aboutTheCaller(e.status)) throw new ApiError(e.status, e.body, refusalText(e));
    throw e;
  }
  if (key && session.status === "receiving") remember(key, session.id);
  return { session, resumed: false };
}

// ------------------------------------------------------------------ sending

/** Upload one file to the end; returns the server's report (created / duplicates / errors). */
export async function uploadFile(pid: number, file: File, onProgress: (p: Progress) => void, signal?: AbortSignal): Promise<UploadResult> {
  // Nothing to send: said here in plain words (the server's refusal names its field, size_bytes).
  if (file.size === 0) throw new Error(EMPTY_FILE);
  onProgress({ phase: "hashing", sent: 0 });
  const sha256 = await sha256Hex(file);
  checkStopped(signal);
  const candidate = resumeKey(pid, file, sha256);
  // The same file twice in this tab at once: the second gets a session of its own (not remembered).
  const key = sending.has(candidate) ? null : candidate;
  if (key) sending.add(key);
  const opened: { id?: number } = {};
  try {
    const result = await send(pid, file, sha256, key, onProgress, signal, opened);
    if (key) forget(key); // done (or refused by the worker): nothing left to resume
    return result;
  } catch (e) {
    if (signal?.aborted && signal.reason === CANCEL) {
      // Cancelled by the user: nothing to resume later; the server drops what it received.
      if (key) forget(key);
      throw new UploadCancelled(opened.id === undefined || await dropSession(pid, opened.id));
    }
    // Refused by the server: starting over is the only way. A lost connection, a sign-out or a stop
    // keeps the key, so picking the file again resumes it.
    if (key && e instanceof ApiError && !transient(e.status) && !aboutTheCaller(e.status)) forget(key);
    throw e;
  } finally {
    if (key) sending.delete(key);
  }
}

/** Ask the server to drop a session and its bytes (DELETE). False when it refuses (the file is
 * already queued or being processed: it is then added anyway) or cannot be reached. */
export async function dropSession(pid: number, id: number): Promise<boolean> {
  try {
    await api("DELETE", `${P(pid)}/images/uploads/${id}/`);
    return true;
  } catch (e) {
    return e instanceof ApiError && e.status === 404; // already gone
  }
}

async function send(pid: number, file: File, sha256: string, key: string | null, onProgress: (p: Progress) => void,
                    signal: AbortSignal | undefined, opened_: { id?: number }): Promise<UploadResult> {
  const opened = await openSession(pid, file, sha256, key, onProgress);
  let session = opened.session;
  opened_.id = session.id;
  const url = `${P(pid)}/images/uploads/${session.id}/`;
  const resumedFrom = opened.resumed ? session.received_bytes : undefined;
  let offset = session.received_bytes;
  let failures = 0;
  while (session.status === "receiving" && offset < file.size) {
    checkStopped(signal);
    onProgress({ phase: "sending", sent: offset, resumedFrom });
    const end = Math.min(file.size, offset + session.chunk_bytes);
    const start = offset;
    // The last chunk also finishes the upload (one request less per file).
    const last = end === file.size ? "&finish=1" : "";
    const { status, body } = await putChunk(`${url}?offset=${start}${last}`, file.slice(start, end), (n) => onProgress({ phase: "sending", sent: start + n, resumedFrom }), signal);
    checkStopped(signal);
    if (status === 200) {
      offset = body.received_bytes;
      session = body;
      failures = 0;
    } else if (status === 409 && typeof body?.received_bytes === "number") {
      offset = body.received_bytes; // the server's copy is the truth: go on from there
    } else if (transient(status) && failures < MAX_RETRIES) {
      const wait = backoff(failures++);
      onProgress({ phase: "reconnecting", sent: offset, resumedFrom, note: `Connection lost; resuming in ${Math.round(wait / 1000)} s…` });
      await sleep(wait);
      checkStopped(signal);
      try {
        session = await get<UploadSession>(url);
        offset = session.received_bytes;
      } catch (e) {
        if (!(e instanceof ApiError) || !transient(e.status)) throw e;
      }
    } else {
      throw new ApiError(status, body, errorText(body, status));
    }
  }
  checkStopped(signal);
  if (session.status === "receiving") { // the finishing chunk's answer was lost, or it was a resumed upload
    session = await withRetry(() => post<UploadSession>(`${url}finish/`), onProgress, file.size);
  }
  onProgress({ phase: "processing", sent: file.size, resumedFrom });
  return waitForResult(pid, url, session, signal);
}

async function withRetry<T>(call: () => Promise<T>, onProgress: (p: Progress) => void, sent: number): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof ApiError) || !transient(e.status) || attempt >= MAX_RETRIES) throw e;
      const wait = backoff(attempt);
      onProgress({ phase: "reconnecting", sent, note: `Connection lost; retrying in ${Math.round(wait / 1000)} s…` });
      await sleep(wait);
    }
  }
}

/** Wait for the worker: woken by the project's live event, with a slow poll as the fallback. */
function waitForResult(pid: number, url: string, session: UploadSession, signal?: AbortSignal): Promise<UploadResult> {
  if (session.status === "done" || session.status === "failed") return Promise.resolve(session.result);
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let finished = false;
    let failures = 0;
    const off = subscribe(pid, (ev: any) => {
      if (ev.type === "upload.finished" && ev.upload === session.id) check();
    });
    const finish = (fn: () => void) => { finished = true; off(); clearTimeout(timer); fn(); };
    const check = () => {
      clearTimeout(timer);
      get<UploadSession>(url).then((s) => {
        if (finished) return;
        failures = 0;
        if (s.status === "done" || s.status === "failed") finish(() => resolve(s.result));
        else timer = setTimeout(check, 2000);
      }).catch((e) => {
        if (finished) return;
        if (e instanceof ApiError && !transient(e.status)) return finish(() => reject(e));
        timer = setTimeout(check, backoff(failures++));
      });
    };
    // Stopped (a sign-out): the worker still finishes the file; this tab no longer waits for it.
    signal?.addEventListener("abort", () => { if (!finished) finish(() => reject(new UploadStopped())); }, { once: true });
    timer = setTimeout(check, 700);
  });
}

/** Run `task` over `items` with at most `limit` at a time. */
export async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
