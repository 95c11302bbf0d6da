/** The project websocket with reconnect backoff; listeners get parsed events. */
import type { LiveEvent } from "./extra";

type Listener = (e: LiveEvent) => void;

export class ProjectSocket {
  private ws: WebSocket | null = null;
  private listeners = new Set<Listener>();
  private retry = 0;
  private timer: number | undefined;
  private closed = false;
  connected = false;

  constructor(private project: number) {
    this.open();
  }

  private open() {
    if (this.closed) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    try {
      this.ws = new WebSocket(`${proto}://${location.host}/ws/projects/${this.project}/`);
    } catch {
      this.schedule();
      return;
    }
    this.ws.onopen = () => {
      this.retry = 0;
      this.connected = true;
    };
    this.ws.onmessage = (m) => {
      try {
        const data = JSON.parse(m.data) as LiveEvent;
        this.listeners.forEach((l) => l(data));
      } catch {
        /* ignore malformed */
      }
    };
    this.ws.onclose = () => {
      this.connected = false;
      this.schedule();
    };
  }

  private schedule() {
    if (this.closed) return;
    const delay = Math.min(30000, 1000 * 2 ** this.retry++) * (0.75 + Math.random() / 2);
    this.timer = window.setTimeout(() => this.open(), delay);
  }

  on(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  close() {
    this.closed = true;
    window.clearTimeout(this.timer);
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
