/**
 * The project websocket. Reconnects with backoff and resumes from the last event seen
 * (`?since=`), drops duplicates, asks the server to fill gaps, and turns the server's `resync`
 * (or a gap it cannot fill) into a `resync` event: listeners then reload what they show.
 */
import { reportLostAccess, reportProjectDeleted } from "./access";
import { notify } from "../notify";
import { get, onSignedIn } from "./client";
import type { LiveEvent } from "./extra";
import { EventSequence } from "./liveseq";

type Listener = (e: LiveEvent) => void;

/** How long an out-of-order event may wait for the ones before it before we ask to resume. */
export const GAP_WAIT_MS = 1500;
/** The server's close code for "not a member of this project" (backend/realtime/consumers.py). */
export const CLOSE_FORBIDDEN = 4403;
/** ... for "not signed in": the session ended (signed out here or in another tab). */
export const CLOSE_SIGNED_OUT = 4401;
/** ... for "this user holds too many live sockets" (tabs; RAZMETKA_LIVE_SOCKETS_PER_USER). */
export const CLOSE_TOO_MANY = 4429;
/** How long to wait before asking again after CLOSE_TOO_MANY (another tab may have closed). */
export const TOO_MANY_RETRY_MS = 60000;

export interface SocketOptions {
  url?: (project: number, since: number | null) => string;
  WebSocketImpl?: new (url: string) => WebSocket;
  /** Called once when the server says this user is no longer a member (default: reportLostAccess). */
  onForbidden?: (project: number) => void;
  /** Called once when the session ended (default: ask who is signed in, which turns the app to
   * its sign-in page; the page said "you were removed from this project" instead). */
  onSignedOut?: () => void;
  /** Called once when the project was deleted, with who deleted it (default: reportProjectDeleted). */
  onDeleted?: (project: number, by: string | null) => void;
  /** Called when the server refused the socket: too many of this user's are open (default: a note). */
  onTooMany?: () => void;
}

function defaultUrl(project: number, since: number | null): string {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const query = since === null ? "" : `?since=${since}`;
  return `${proto}://${location.host}/ws/projects/${project}/${query}`;
}

export class ProjectSocket {
  private ws: WebSocket | null = null;
  private listeners = new Set<Listener>();
  private retry = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  private resumeAsked = false;
  private closed = false;
  private offSignedIn: (() => void) | undefined;
  private toldTooMany = false;
  readonly seq = new EventSequence();
  connected = false;

  constructor(private project: number, private opts: SocketOptions = {}) {
    this.open();
  }

  private open() {
    if (this.closed) return;
    const url = (this.opts.url ?? defaultUrl)(this.project, this.seq.last);
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    let ws: WebSocket;
    try {
      ws = this.ws = new Impl(url);
    } catch {
      this.schedule();
      return;
    }
    ws.onopen = () => {
      this.connected = true;
    };
    ws.onmessage = (m) => {
      let data: LiveEvent;
      try {
        data = JSON.parse(m.data as string) as LiveEvent;
      } catch {
        return; // not ours to handle
      }
      if (data && typeof data === "object") this.handle(data);
    };
    ws.onclose = (ev: CloseEvent | undefined) => {
      if (this.ws !== ws) return;
      this.connected = false;
      this.ws = null;
      this.clearGap();
      if (ev?.code === CLOSE_FORBIDDEN) return this.forbidden();
      if (ev?.code === CLOSE_SIGNED_OUT) return this.signedOut();
      if (ev?.code === CLOSE_TOO_MANY) return this.tooMany();
      this.schedule();
    };
  }

  private handle(data: LiveEvent) {
    const seq = typeof data.seq === "number" ? data.seq : null;
    switch (data.type) {
      case "hello":
        this.retry = 0; // a working connection: the next drop retries quickly again
        this.toldTooMany = false;
        if (seq !== null) this.seq.hello(seq);
        return;
      case "resync":
        this.resync(seq ?? this.seq.newest ?? 0);
        return;
      case "pong":
        return;
      case "access.revoked":
        this.forbidden();
        return;
      case "project.deleted":
        // Sent to every socket of each member (their user group): only this project's own counts.
        if (data.project === this.project) this.deleted(typeof data.by === "string" ? data.by : null);
        return;
      case "error":
        console.warn("live updates:", (data as { error?: unknown }).error);
        return;
    }
    if (seq !== null) {
      if (!this.seq.accept(seq)) return; // already handled (a replay and its live copy)
      if (this.seq.gap) this.watchGap();
      else this.clearGap();
    }
    this.emit(data);
  }

  /** Give the missing events a moment (live sends may overtake each other), then ask the
   * server for them once; a gap that survives that cannot be filled: reload. */
  private watchGap() {
    if (this.gapTimer !== undefined) return;
    this.gapTimer = setTimeout(() => {
      this.gapTimer = undefined;
      if (!this.seq.gap) return;
      if (!this.resumeAsked && this.ws && this.connected) {
        this.resumeAsked = true;
        this.ws.send(JSON.stringify({ type: "resume", since: this.seq.last }));
        this.watchGap();
      } else {
        this.resync(this.seq.newest ?? 0);
      }
    }, GAP_WAIT_MS);
  }

  private clearGap() {
    if (this.gapTimer !== undefined) clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    this.resumeAsked = false;
  }

  private resync(seq: number) {
    this.seq.reset(seq);
    this.clearGap();
    this.emit({ type: "resync", project: this.project, seq });
  }

  /** Removed from the project: stop reconnecting (each try would be refused) and say so once. */
  private forbidden() {
    if (this.closed) return;
    this.close();
    this.emit({ type: "access.revoked", project: this.project });
    (this.opts.onForbidden ?? reportLostAccess)(this.project);
  }

  /** Signed out: stop reconnecting (each try would be refused); the app asks to sign in. */
  private signedOut() {
    if (this.closed) return;
    // Paused, not closed: the page stays open under the sign-in form, and when the same user signs
    // in again the socket goes on from the last event seen (?since=), so what happened meanwhile
    // is replayed (a different user gets a fresh page, which closes this socket).
    clearTimeout(this.timer);
    this.clearGap();
    this.offSignedIn?.();
    this.offSignedIn = onSignedIn(() => {
      this.offSignedIn?.();
      this.offSignedIn = undefined;
      this.retry = 0;
      this.open();
    });
    (this.opts.onSignedOut ?? (() => void get("/api/auth/me/").catch(() => undefined)))();
  }

  /** Refused: this user's other tabs hold every live socket allowed. Say so once, ask again slowly. */
  private tooMany() {
    if (this.closed) return;
    if (!this.toldTooMany) {
      this.toldTooMany = true;
      (this.opts.onTooMany ?? (() => notify("Live updates are off in this tab: you have too many Razmetka tabs open. "
        + "Close some; this tab connects again by itself.", "warn")))();
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), TOO_MANY_RETRY_MS);
  }

  /** The project was deleted: stop (the server closes this socket next) and say who did it, once. */
  private deleted(by: string | null) {
    if (this.closed) return;
    this.close();
    this.emit({ type: "project.deleted", project: this.project, by });
    (this.opts.onDeleted ?? reportProjectDeleted)(this.project, by);
  }

  private emit(e: LiveEvent) {
    this.listeners.forEach((l) => l(e));
  }

  private schedule() {
    if (this.closed) return;
    const delay = Math.min(30000, 1000 * 2 ** this.retry++) * (0.75 + Math.random() / 2);
    this.timer = setTimeout(() => this.open(), delay);
  }

  on(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  close() {
    this.closed = true;
    this.offSignedIn?.();
    clearTimeout(this.timer);
    this.clearGap();
    this.ws?.close();
  }
}

const sockets = new Map<number, { socket: ProjectSocket; users: number }>();

/** Shared socket per project, closed when the last user lets go. */
export function subscribe(project: number, l: Listener): () => void {
  let entry = sockets.get(project);
  if (!entry) {
    entry = { socket: new ProjectSocket(project), users: 0 };
    sockets.set(project, entry);
  }
  entry.users++;
  const off = entry.socket.on(l);
  return () => {
    off();
    const e = sockets.get(project);
    if (e && --e.users === 0) {
      e.socket.close();
      sockets.delete(project);
    }
  };
}
