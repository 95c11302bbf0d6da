import { useEffect, useRef } from "react";

export const SHORTCUTS: [string, string][] = [
  ["Enter", "Accept all objects and open the next image (an annotator: done here, next image; nothing is accepted)"],
  ["Tab / j / ↓", "Next object"],
  ["Shift+Tab / k / ↑", "Previous object"],
  ["F6 / Shift+F6", "Move keyboard focus to the tool bar, the side panel or the page header; Tab then moves between their controls until Esc or a click"],
  ["a", "Accept the object (class and mask)"],
  ["r", "Reject the object (class and mask)"],
  ["c / Shift+C", "Accept / reject the class"],
  ["m / Shift+M", "Accept / reject the mask"],
  ["u", "Back to pending"],
  ["1 … 9", "Set the class to top-k candidate n"],
  ["/", "Search for a class"],
  ["Delete / Backspace", "Delete the object (z brings it back)"],
  ["v / Esc", "Select and pan tool (drag pans, click selects)"],
  ["b / e", "Brush / eraser on the selected mask"],
  ["[ / ]", "Smaller / bigger brush"],
  ["l", "Polygon: click vertices, Enter or the first vertex closes (Alt: hole, Ctrl: add to the selected mask)"],
  ["x", "Box → SAM 2 mask (drag a box)"],
  ["t", "Box → SAM mode: new object / replace the selected mask"],
  ["o", "Click → SAM: click adds to the selected mask (or starts a new object), right/Shift+click removes; Enter or o saves, Esc discards, Backspace drops the last point"],
  ["z / Ctrl+Z", "Undo the last change (delete, class, mask, review, new object)"],
  ["Shift+Z / Ctrl+Shift+Z", "Redo"],
  ["wheel, + / −", "Zoom"],
  ["Shift+drag, right-drag", "Pan with any tool"],
  ["f / 0", "Fit the image"],
  ["h", "Hide / show masks"],
  ["n / p", "Skip to the next image / back to the previous one"],
  ["i", "History of the object / image (restore a version)"],
  ["?", "This help"],
];

const FOCUSABLE = "a[href], button:not(:disabled), input:not(:disabled), select:not(:disabled), textarea:not(:disabled), [tabindex]:not([tabindex='-1'])";

/** A modal: focus moves into it, Tab and Shift+Tab stay inside (they reached the workspace's
 * buttons behind the overlay), and focus goes back where it was when it closes. */
export function HelpOverlay({ onClose }: { onClose: () => void }) {
  const card = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    card.current?.focus();
    return () => { if (before?.isConnected) before.focus(); };
  }, []);
  const trap = (e: React.KeyboardEvent) => {
    if (e.key !== "Tab") return;
    e.preventDefault();
    const inside = [...card.current!.querySelectorAll<HTMLElement>(FOCUSABLE)];
    if (!inside.length) return;
    const at = inside.indexOf(document.activeElement as HTMLElement);
    const next = at < 0 ? (e.shiftKey ? inside.length - 1 : 0) : (at + (e.shiftKey ? -1 : 1) + inside.length) % inside.length;
    inside[next].focus();
  };
  return (
    <div className="overlay" role="dialog" aria-modal="true" aria-label="Keyboard shortcuts" onClick={onClose} onKeyDown={trap}>
      <div className="card help" ref={card} tabIndex={-1} onClick={(e) => e.stopPropagation()}>
        {/* Closing at the top too: on a phone the card's only button was ~1,200 px down. */}
        <div className="help-head">
          <h2>Keyboard shortcuts</h2>
          <button className="small" onClick={onClose} data-testid="help-close-top">Close (Esc)</button>
        </div>
        <table>
          <tbody>
            {SHORTCUTS.map(([k, v]) => (
              <tr key={k}><td><kbd>{k}</kbd></td><td>{v}</td></tr>
            ))}
          </tbody>
        </table>
        <button onClick={onClose}>Close</button>
      </div>
    </div>
  );
}
