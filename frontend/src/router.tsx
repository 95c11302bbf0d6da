/** A tiny history router: the app has a handful of routes, no need for a dependency. */
import { useEffect, useState } from "react";

const listeners = new Set<() => void>();
/** A page with something unsaved registers a guard: it returns the question to ask before leaving. */
type Guard = () => string | null;
const guards = new Set<Guard>();
let current = typeof location === "undefined" ? "" : location.pathname + location.search;

/** Ask before an in-app navigation (or Back) leaves a page with unsaved work; returns the remover. */
export function addNavigationGuard(g: Guard): () => void {
  guards.add(g);
  return () => void guards.delete(g);
}

/** True when no guard objects, or the user confirmed leaving anyway. */
export function mayLeave(): boolean {
  for (const g of guards) {
    const question = g();
    if (question && !window.confirm(question)) return false;
  }
  return true;
}

export function navigate(to: string, replace = false) {
  if (to === location.pathname + location.search) return;
  if (!mayLeave()) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  current = to;
  listeners.forEach((l) => l());
}

if (typeof window !== "undefined") {
  window.addEventListener("popstate", () => {
    const to = location.pathname + location.search;
    if (to !== current && !mayLeave()) {
      // Back/Forward already moved the address: put the page the user stays on back.
      history.pushState(null, "", current);
      return;
    }
    current = to;
    listeners.forEach((l) => l());
  });
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname + location.search);
  useEffect(() => {
    const update = () => setPath(location.pathname + location.search);
    listeners.add(update);
    return () => {
      listeners.delete(update);
    };
  }, []);
  return path;
}

export function Link(props: { to: string; children: React.ReactNode; className?: string; title?: string }) {
  return (
    <a
      href={props.to}
      className={props.className}
      title={props.title}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}
