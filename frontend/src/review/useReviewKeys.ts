/** The workspace's keyboard shortcuts (listed for users in Help.tsx and docs/frontend.md). */
import { useEffect, useRef, type Dispatch, type SetStateAction } from "react";
import type { Annotation } from "../api/client";
import { notify } from "../notify";
import type { Decision, ReviewTarget } from "./ObjectList";
import type { Tool } from "./StageBar";

export interface ReviewKeyActions {
  help: boolean;
  sel: Annotation | null;
  setHelp: Dispatch<SetStateAction<boolean>>;
  setSearch: (s: string | null) => void;
  setTool: (t: Tool) => void;
  setBrushPx: Dispatch<SetStateAction<number>>;
  setShowOverlays: Dispatch<SetStateAction<boolean>>;
  acceptAllAndNext: () => Promise<unknown>;
  step: (delta: number) => void;
  review: (a: Annotation | null, target: ReviewTarget, decision: Decision) => unknown;
  setClass: (a: Annotation | null, classId: number) => Promise<unknown>;
  remove: (a: Annotation | null) => Promise<unknown>;
  undo: () => Promise<unknown>;
  redo: () => Promise<unknown>;
  toggleBoxMode: () => void;
  toggleHistory: () => void;
  /** The polygon tool's keys (Enter closes, Esc cancels, Backspace drops a vertex) come first. */
  polygonKey: (k: string) => boolean;
  /** The click → SAM tool's keys while it has points (Enter / o save, Esc discards, Backspace drops a point). */
  refineKey: (k: string) => boolean;
  fit: () => void;
  zoomCenter: (f: number) => void;
  skip: () => void;
  previous: () => boolean;
}

/** Listens on the window; the handler always sees the latest render's actions. */
export function useReviewKeys(actions: ReviewKeyActions) {
  const keyRef = useRef<(e: KeyboardEvent) => void>(() => {});
  const focus = useRef<FocusMode>({ controls: false });
  keyRef.current = (e: KeyboardEvent) => onKey(e, actions, focus.current);
  useEffect(() => {
    const h = (e: KeyboardEvent) => keyRef.current(e);
    // A click ends keyboard navigation: Tab steps objects again, as before F6.
    const p = () => setControls(focus.current, false);
    window.addEventListener("keydown", h);
    window.addEventListener("pointerdown", p, true);
    return () => { window.removeEventListener("keydown", h); window.removeEventListener("pointerdown", p, true); };
  }, []);
}

/** Tab steps objects, so keyboard-only users could never reach a control of the workspace
 * (black-box round 14). F6 / Shift+F6 move focus between the regions (tool bar, side panel,
 * page header) and hand Tab back to the browser until Esc or a click. */
interface FocusMode { controls: boolean }

let navigating = false;

function setControls(focus: FocusMode, on: boolean): void {
  focus.controls = navigating = on;
}

/** Whether the keyboard user moved into the controls with F6 (the class select then takes letters
 * as type-ahead, not as review keys). */
export function keyboardNavigation(): boolean {
  return navigating;
}

const REGIONS = ["[data-testid=stage-bar]", "aside.side", "header.topbar"];
const FOCUSABLE = "a[href], button:not(:disabled), input:not(:disabled), select:not(:disabled), textarea:not(:disabled), summary, [tabindex]:not([tabindex='-1'])";

function cycleRegion(from: HTMLElement | null, delta: number): boolean {
  const regions = REGIONS.map((s) => document.querySelector<HTMLElement>(s));
  const at = regions.findIndex((r) => r && from && r.contains(from));
  for (let i = 1; i <= regions.length; i++) {
    const r = regions[(((at < 0 ? (delta > 0 ? -1 : 0) : at) + delta * i) % regions.length + regions.length) % regions.length];
    const first = r && [...r.querySelectorAll<HTMLElement>(FOCUSABLE)].find((el) => el.offsetParent !== null);
    if (first) { first.focus(); return true; }
  }
  return false;
}

/** Keys that decide something. A held key repeats: one press is one decision, not a run of
 * images nobody saw (a 0.7 s hold of Enter accepted seven images). */
const ONE_PRESS_KEYS = new Set(["Enter", "a", "r", "c", "C", "m", "M", "u", "Delete", "Backspace", "n", "p", ..."123456789"]);

function onKey(e: KeyboardEvent, x: ReviewKeyActions, focus: FocusMode) {
  const t = e.target as HTMLElement;
  if (e.key === "F6") {
    setControls(focus, cycleRegion(document.activeElement as HTMLElement | null, e.shiftKey ? -1 : 1));
    e.preventDefault();
    return;
  }
  if (e.key === "Tab" && focus.controls) return; // the browser's: focus moves between controls
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) {
    if (e.key === "Escape") { x.setSearch(null); (t as HTMLInputElement).blur(); setControls(focus, false); }
    return;
  }
  if (e.key === "Escape" && focus.controls) {
    setControls(focus, false);
    (document.activeElement as HTMLElement | null)?.blur?.(); // the keys are the stage's again
  }
  if (e.repeat && ONE_PRESS_KEYS.has(e.key)) { e.preventDefault(); return; }
  if (x.help && e.key !== "?" && e.key !== "Escape") return;
  if (x.polygonKey(e.key)) { e.preventDefault(); return; }
  if (!e.ctrlKey && !e.metaKey && !e.altKey && x.refineKey(e.key)) { e.preventDefault(); return; }
  // Enter on a focused link or button is that control's (a link opens, History toggles); it
  // accepted the whole image and moved on instead.
  if (e.key === "Enter" && t?.closest?.("a[href], button, [role=button], summary")) return;
  const k = e.key;
  const ctrl = e.ctrlKey || e.metaKey;
  const sel = x.sel;
  let handled = true;
  if (k === "?") x.setHelp((h) => !h);
  else if (k === "Escape") { x.setHelp(false); x.setSearch(null); x.setTool("select"); }
  else if (k === "Enter") void x.acceptAllAndNext();
  else if (k === "Tab") x.step(e.shiftKey ? -1 : 1);
  else if (k === "j" || k === "ArrowDown") x.step(1);
  else if (k === "k" || k === "ArrowUp") x.step(-1);
  else if (ctrl && (k === "z" || k === "Z")) void (e.shiftKey ? x.redo() : x.undo());
  else if (ctrl && k === "y") void x.redo();
  else if (ctrl) handled = false;
  else if (k === "a") void x.review(sel, "both", "accepted");
  else if (k === "r") void x.review(sel, "both", "rejected");
  else if (k === "c") void x.review(sel, "class", "accepted");
  else if (k === "C") void x.review(sel, "class", "rejected");
  else if (k === "m") void x.review(sel, "mask", "accepted");
  else if (k === "M") void x.review(sel, "mask", "rejected");
  else if (k === "u") void x.review(sel, "both", "pending");
  else if (/^[1-9]$/.test(k)) {
    const cand = sel?.candidates?.[Number(k) - 1];
    if (cand) void x.setClass(sel, cand.class_id);
    else if (sel) {
      // A drawn object has no suggestions: the digit did nothing, silently.
      const n = sel.candidates?.length ?? 0;
      notify(n ? `This object has ${n} class suggestion${n > 1 ? "s" : ""} (1–${n}); press / to search every class.`
        : "This object has no class suggestions; press / to search the classes.", "info");
    } else handled = false;
  } else if (k === "/") x.setSearch("");
  else if (k === "Delete" || k === "Backspace") void x.remove(sel);
  else if (k === "v") x.setTool("select");
  else if (k === "b") x.setTool("brush");
  else if (k === "e") x.setTool("eraser");
  else if (k === "x") x.setTool("box");
  else if (k === "l") x.setTool("polygon");
  else if (k === "o") x.setTool("click");
  else if (k === "[") x.setBrushPx((b) => Math.max(2, Math.round(b / 1.25)));
  else if (k === "]") x.setBrushPx((b) => Math.min(200, Math.round(b * 1.25)));
  else if (k === "z") void x.undo();
  else if (k === "Z") void x.redo();
  else if (k === "t") x.toggleBoxMode();
  else if (k === "i") x.toggleHistory();
  else if (k === "f" || k === "0") x.fit();
  else if (k === "+" || k === "=") x.zoomCenter(1.25);
  else if (k === "-") x.zoomCenter(0.8);
  else if (k === "h") x.setShowOverlays((s) => !s);
  else if (k === "n") x.skip();
  else if (k === "p") handled = x.previous();
  else handled = false;
  if (handled) e.preventDefault();
}
