/**
 * The API client. Types come from schema.d.ts, generated from the backend's OpenAPI schema
 * (`npm run gen:api`); routes the schema does not describe yet are typed in extra.ts.
 */
import type { components } from "./schema";
import type { Annotation, Rle } from "./extra";

type S = components["schemas"];
export type Project = S["Project"];
export type ProjectRequest = S["ProjectRequest"];
export type LabelClass = S["LabelClass"];
export type GalleryImage = S["GalleryImage"];
export type Me = S["Me"];
export type Membership = S["Membership"];
export type UploadReport = S["UploadReport"];
export type GalleryUploadReport = S["GalleryUploadReport"];
export type ReviewState = S["ReviewStateEnum"];
export type ImageStatus = S["Image"]["status"];
export type ReviewTarget = S["TargetEnum"];
export type ImageRow = S["Image"] & { claimed_by?: string | null; claim_expires_at?: string | null };
export type ImageDetail = Omit<S["ImageDetail"], "annotations"> & {
  annotations: Annotation[];
  claimed_by?: string | null;
  claim_expires_at?: string | null;
};
export type Page<T> = { count: number; next?: string | null; previous?: string | null; results: T[] };
export type { Annotation, Rle };

export class ApiError extends Error {
  constructor(public status: number, public body: any, message: string) {
    super(message);
  }
  get code(): string | undefined {
    return this.body?.code;
  }
}

export function csrfToken(): string {
  const m = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : "";
}

/** Human text for an error body: detail, or field errors "field: message". */
export function errorText(body: any, status: number): string {
  if (!body) return status === 0 ? "The server can't be reached. Check your connection and try again." : `Request failed (${status}).`;
  // Not JSON (the API always answers JSON): a proxy's or the server's own error page or text. Its
  // markup or wording said nothing to a user (a whole nginx 502 page in a toast; "upstream connect
  // error or disconnect/reset before headers"); the status does.
  if (typeof body === "string") return statusText(status);
  if (body.detail) return String(body.detail);
  const parts: string[] = [];
  for (const [k, v] of Object.entries(body)) {
    const msg = Array.isArray(v) ? v.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(" ") : typeof v === "string" ? v : JSON.stringify(v);
    parts.push(k === "non_field_errors" ? msg : `${k}: ${msg}`);
  }
  return parts.join("; ") || `Request failed (${status}).`;
}

function statusText(status: number): string {
  if (status === 502 || status === 503 || status === 504)
    return `The server is not answering right now (${status}). Try again in a moment.`;
  if (status >= 500) return `The server had an unexpected problem (${status}). Try again; if it keeps happening, tell your admin.`;
  if (status === 413) return "The request is too large for the server (413).";
  return `Request failed (${status}).`;
}

export let onUnauthorized: () => void = () => {};
export function setOnUnauthorized(fn: () => void) {
  onUnauthorized = fn;
}

/** Whether an error says the session ended (signed out here or in another tab, or it expired). */
export function signedOutError(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 401 || (e.status === 403 && e.code === "not_authenticated"));
}
/** Signed in on a one-time password: nothing but setting one's own password is taken yet. */
export function passwordFirstError(e: unknown): boolean {
  return e instanceof ApiError && e.status === 403 && e.code === "password_change_required";
}

const signedInSubs = new Set<() => void>();
/** Told when the user signs in again after the session ended on an open page (its failed writes go again). */
export function onSignedIn(fn: () => void): () => void {
  signedInSubs.add(fn);
  return () => void signedInSubs.delete(fn);
}
export function signedInAgain() {
  signedInSubs.forEach((fn) => fn());
}

const refusedSubs = new Set<(project: number) => void>();
/** A project's route refused the user's role (403): their role may have changed meanwhile. */
export function onRoleRefused(fn: (project: number) => void): () => void {
  refusedSubs.add(fn);
  return () => void refusedSubs.delete(fn);
}

export async function api<T = any>(method: string, path: string, body?: unknown, { headers: extra, ...init }: RequestInit = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...(extra as Record<string, string> | undefined) };
  if (body !== undefined && !(body instanceof FormData)) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: "same-origin",
      headers,
      body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
      ...init,
    });
  } catch {
    throw new ApiError(0, null, errorText(null, 0));
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: any = text;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    if (res.status === 401 || (res.status === 403 && data?.code === "not_authenticated")) onUnauthorized();
    else if (res.status === 403) {
      const project = /\/projects\/(\d+)\//.exec(path);
      if (project) refusedSubs.forEach((fn) => fn(Number(project[1])));
    }
    throw new ApiError(res.status, data, errorText(data, res.status));
  }
  return data as T;
}

export const get = <T = any>(path: string, init?: RequestInit) => api<T>("GET", path, undefined, init);
export const post = <T = any>(path: string, body?: unknown) => api<T>("POST", path, body ?? {});
/** A create that may be sent again (a retry after a lost answer): the same `key` makes one object. */
export const postOnce = <T = any>(path: string, body: unknown, key: string) =>
  api<T>("POST", path, body, { headers: { "Idempotency-Key": key } });
/** A fresh Idempotency-Key (crypto.randomUUID needs https; this works on a plain-http LAN address too). */
export const newKey = () => [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
export const patch = <T = any>(path: string, body: unknown) => api<T>("PATCH", path, body);
export const del = <T = any>(path: string) => api<T>("DELETE", path);

export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : "";
}

/** Multipart upload with progress (XMLHttpRequest: fetch has no upload progress). */
export function uploadWithProgress<T = any>(
  url: string, form: FormData, onProgress: (fraction: number) => void,
): { promise: Promise<{ status: number; body: T }>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<{ status: number; body: T }>((resolve, reject) => {
    xhr.open("POST", url);
    xhr.withCredentials = true;
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body: any = xhr.responseText;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* keep text */
      }
      onProgress(1);
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => reject(new ApiError(0, null, errorText(null, 0)));
    xhr.onabort = () => reject(new ApiError(0, null, "Upload cancelled."));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

export const P = (p: number | string) => `/api/projects/${p}`;
