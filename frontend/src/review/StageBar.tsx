/** The bar over the stage: tools, brush size, fit, hide/show masks, shortcut help. */
export type Tool = "select" | "brush" | "eraser" | "box";

const TOOLS: Tool[] = ["select", "brush", "eraser", "box"];
const TOOL_LABEL: Record<Tool, string> = { select: "Select / pan (v)", brush: "Brush (b)", eraser: "Eraser (e)", box: "Box → SAM (x)" };
const TOOL_HELP: Record<Tool, string> = {
  select: "Click an object to select it; drag to pan; wheel to zoom",
  brush: "Paint onto the selected mask",
  eraser: "Erase from the selected mask",
  box: "Drag a box: SAM 2 makes a mask (replaces the selected object's mask, or adds a new object)",
};

export function StageBar(props: {
  tool: Tool; brushPx: number; showOverlays: boolean;
  onTool: (t: Tool) => void; onFit: () => void; onToggleOverlays: () => void; onHelp: () => void;
}) {
  const { tool } = props;
  return (
    <div className="stage-bar">
      {TOOLS.map((t) => (
        <button key={t} className={tool === t ? "active" : ""} onClick={() => props.onTool(t)} title={TOOL_HELP[t]}>
          {TOOL_LABEL[t]}
        </button>
      ))}
      {(tool === "brush" || tool === "eraser") && <span className="small">size {props.brushPx}px ([ / ])</span>}
      <span className="spacer" />
      <button onClick={props.onFit} title="Fit (f)">Fit</button>
      <button onClick={props.onToggleOverlays} title="Hide/show masks (h)">{props.showOverlays ? "Hide masks" : "Show masks"}</button>
      <button onClick={props.onHelp} title="Keyboard shortcuts (?)">?</button>
    </div>
  );
}
