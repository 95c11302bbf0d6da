/** The bar over the stage: tools, box → SAM mode, brush size, undo/redo, fit, hide/show masks, help. */
import { ClickIcon, Spinner } from "./icons";

export type Tool = "select" | "brush" | "eraser" | "polygon" | "box" | "click";
/** What a box drawn for SAM does: add a new object, or replace the selected object's mask. */
export type BoxMode = "new" | "replace";

const TOOLS: Tool[] = ["select", "brush", "eraser", "polygon", "box", "click"];
const TOOL_LABEL: Record<Tool, string> = {
  select: "Select (v)", brush: "Brush (b)", eraser: "Eraser (e)", polygon: "Polygon (l)", box: "Box → SAM (x)", click: "Click → SAM (o)",
};
const TOOL_HELP: Record<Tool, string> = {
  select: "Click an object to select it; drag to pan; wheel to zoom",
  brush: "Paint onto the selected mask",
  eraser: "Erase from the selected mask",
  polygon: "Click vertices, close on the first one or Enter: a new object (Alt: a hole in the selected mask, Ctrl: add to it). Drag the selected outline's vertices; Alt+click deletes one",
  box: "Drag a box: SAM 2 makes a mask — a new object, or the selected object's new mask (toggle with t)",
  click: "Click on the object to add to its mask, right-click or Shift+click to remove; Enter or o saves, Esc discards. With nothing selected the clicks make a new object",
};
/** Tools that change data; a read-only workspace greys them out. */
const WRITES: Set<Tool> = new Set(["brush", "eraser", "polygon", "box", "click"]);

export function StageBar(props: {
  tool: Tool; brushPx: number; showOverlays: boolean; readOnly: boolean;
  boxMode: BoxMode; segmenting: boolean; refining: boolean; refineInfo: { points: number; cached: boolean | null; ms: number | null };
  canUndo: boolean; canRedo: boolean;
  onTool: (t: Tool) => void; onBoxMode: (m: BoxMode) => void; onUndo: () => void; onRedo: () => void;
  onFit: () => void; onToggleOverlays: () => void; onHelp: () => void;
}) {
  const { tool, readOnly } = props;
  // The current tool's options (box mode), hint and SAM's busy sign have a row of their own: inside
  // the bar they wrapped it to two rows (the ? button alone on the second) at 1400 px.
  // Always there (the short help for select and box too): a row that came and went with the tool
  // would resize the stage under the picture.
  const hint = readOnly ? <span className="small">{TOOL_HELP.select}</span>
    : tool === "click" ? (
      <span className="small tool-hint" data-testid="click-hint">
        click: add · right/Shift-click: remove · Enter saves · Esc discards
        {props.refineInfo.points > 0 && ` · ${props.refineInfo.points} point${props.refineInfo.points > 1 ? "s" : ""}`}
        {props.refineInfo.ms !== null && ` · ${Math.round(props.refineInfo.ms)} ms${props.refineInfo.cached ? " (cached)" : ""}`}
      </span>
    ) : tool === "brush" || tool === "eraser" ? <span className="small">size {props.brushPx}px ([ / ])</span>
    : tool === "polygon" ? <span className="small tool-hint">click vertices · Enter closes · Alt: hole · Ctrl: add · drag outline vertices</span>
    : <span className="small">{TOOL_HELP[tool]}</span>;
  return (
    <>
    <div className="stage-bar" data-testid="stage-bar">
      {TOOLS.map((t) => (
        <button key={t} className={tool === t ? "active" : ""} onClick={() => props.onTool(t)} data-testid={`tool-${t}`}
          disabled={readOnly && WRITES.has(t)} title={readOnly && WRITES.has(t) ? "Read-only: you can't change this image" : TOOL_HELP[t]}>
          {t === "click" && <ClickIcon />} {TOOL_LABEL[t]}
        </button>
      ))}
      <span className="spacer" />
      {/* Arrows, not words: the bar fits one row at 1280 px with them. */}
      <button onClick={props.onUndo} disabled={readOnly || !props.canUndo} title="Undo (z / Ctrl+Z)" aria-label="Undo" data-testid="undo">↶</button>
      <button onClick={props.onRedo} disabled={readOnly || !props.canRedo} title="Redo (Shift+Z / Ctrl+Shift+Z)" aria-label="Redo">↷</button>
      <button onClick={props.onFit} title="Fit (f)">Fit</button>
      <button onClick={props.onToggleOverlays} title="Hide/show masks (h)">{props.showOverlays ? "Hide masks" : "Show masks"}</button>
      <button onClick={props.onHelp} title="Keyboard shortcuts (?)">?</button>
    </div>
    <div className="stage-hint" data-testid="stage-hint">
      {tool === "box" && !readOnly && (
        <span className="seg-mode" role="radiogroup" aria-label="Box → SAM mode" data-testid="box-mode" data-mode={props.boxMode}>
          <button role="radio" aria-checked={props.boxMode === "new"} className={props.boxMode === "new" ? "active" : ""}
            onClick={() => props.onBoxMode("new")} title="The box adds a new object; its class is proposed from the gallery (t toggles)">
            New object
          </button>
          <button role="radio" aria-checked={props.boxMode === "replace"} className={props.boxMode === "replace" ? "active" : ""}
            onClick={() => props.onBoxMode("replace")} title="The box replaces the selected object's mask (t toggles)">
            Replace mask
          </button>
          <kbd>t</kbd>
        </span>
      )}
      {props.segmenting && (
        <span className="seg-busy" role="status" data-testid="sam-busy"><Spinner /> Asking SAM… (first call ~10 s)</span>
      )}
      {props.refining && (
        <span className="seg-busy" role="status" data-testid="refine-busy"><Spinner /> Refining…</span>
      )}
      <span className="hint-text">{hint}</span>
    </div>
    </>
  );
}
