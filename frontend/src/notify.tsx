/** App-wide messages: errors stay until dismissed, info fades. */
import { useEffect, useState } from "react";

export interface Note {
  id: number;
  text: string;
  kind: "error" | "info" | "warn";
  action?: { label: string; run: () => void };
}
let seq = 0;
let notes: Note[] = [];
const subs = new Set<(n: Note[]) => void>();
const emit = () => subs.forEach((s) => s([...notes]));

export function notify(text: string, kind: Note["kind"] = "info", action?: Note["action"]): number {
  const id = ++seq;
  notes = [...notes.filter((n) => n.text !== text), { id, text, kind, action }].slice(-5);
  emit();
  if (kind === "info") setTimeout(() => dismiss(id), 3500);
  return id;
}
export function dismiss(id: number) {
  notes = notes.filter((n) => n.id !== id);
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
      {list.map((n) => (
        <div key={n.id} className={`note note-${n.kind}`} role={n.kind === "error" ? "alert" : "status"}>
          <span>{n.text}</span>
          {n.action && (
            <button onClick={() => { dismiss(n.id); n.action!.run(); }}>{n.action.label}</button>
          )}
          <button className="link" aria-label="Dismiss" onClick={() => dismiss(n.id)}>×</button>
        </div>
      ))}
    </div>
  );
}
