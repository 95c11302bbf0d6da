/**
 * App-wide messages: errors stay until dismissed, info and warnings fade, every one has a ×,
 * and none follows the user to another page (clearForNavigation, called on every route change).
 */
import { useEffect, useState } from "react";

export interface Note {
  id: number;
  text: string;
  kind: "error" | "info" | "warn";
  action?: { label: string; run: () => void };
  at: number;
}
/** How long a kind stays on screen (ms); errors stay until dismissed or the page changes. */
export const LIFETIME: Record<Note["kind"], number | null> = { info: 3500, warn: 8000, error: null };
/** A note raised this close before a navigation belongs to the action that navigated
 * ("accepted — next image"): it survives that one change of page. */
export const NAVIGATION_GRACE_MS = 400;

let seq = 0;
let notes: Note[] = [];
const subs = new Set<(n: Note[]) => void>();
const emit = () => subs.forEach((s) => s([...notes]));

export function notify(text: string, kind: Note["kind"] = "info", action?: Note["action"]): number {
  const id = ++seq;
  notes = [...notes.filter((n) => n.text !== text), { id, text, kind, action, at: Date.now() }].slice(-5);
  emit();
  const life = LIFETIME[kind];
  if (life !== null) setTimeout(() => dismiss(id), life);
  return id;
}
export function dismiss(id: number) {
  if (!notes.some((n) => n.id === id)) return;
  notes = notes.filter((n) => n.id !== id);
  emit();
}
/** Take back every message that `which` picks (what a later success made untrue). */
export function dismissWhere(which: (n: Note) => boolean) {
  if (!notes.some(which)) return;
  notes = notes.filter((n) => !which(n));
  emit();
}
export function currentNotes(): Note[] {
  return [...notes];
}
/** Told of every change to the messages shown (e.g. to take back one a page should not have raised). */
export function subscribeNotes(fn: (n: Note[]) => void): () => void {
  subs.add(fn);
  return () => void subs.delete(fn);
}

/** Drop what was said on the page the user is leaving. */
export function clearForNavigation(now = Date.now()) {
  const keep = notes.filter((n) => now - n.at < NAVIGATION_GRACE_MS);
  if (keep.length === notes.length) return;
  notes = keep;
  emit();
}

export function Notes() {
  const [list, setList] = useState<Note[]>(notes);
  useEffect(() => {
    subs.add(setList);
    return () => void subs.delete(setList);
  }, []);
  return (
    <div className="notes" aria-live="polite">
      {list.map((n) => {
        const life = LIFETIME[n.kind];
        return (
          <div key={n.id} className={`note note-${n.kind}${life ? " note-fades" : ""}`} data-testid="toast"
            role={n.kind === "error" ? "alert" : "status"}
            style={life ? ({ "--note-life": `${life}ms` } as React.CSSProperties) : undefined}>
            <span className="note-text">{n.text}</span>
            {n.action && (
              <button onClick={() => { dismiss(n.id); n.action!.run(); }}>{n.action.label}</button>
            )}
            <button className="link note-close" aria-label="Dismiss" title="Dismiss" onClick={() => dismiss(n.id)}>×</button>
          </div>
        );
      })}
    </div>
  );
}
