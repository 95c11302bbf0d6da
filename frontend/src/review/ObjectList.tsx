/** The object list beside the stage: class, scores, review state and top-k candidates per object. */
import { useEffect, useRef } from "react";
import { P, type Annotation, type LabelClass } from "../api/client";
import { colorOf } from "./bundle";
import { awaitsReview } from "./rules";

export type ReviewTarget = "class" | "mask" | "both";
export type Decision = "accepted" | "rejected" | "pending";

export function ObjectList(props: {
  anns: Annotation[]; pid: number; classes: LabelClass[]; selId: number | null; loaded: boolean; canReview: boolean;
  unsaved: Map<number, unknown>; edited: Set<number>;
  onSelect: (id: number) => void; onReview: (a: Annotation, t: ReviewTarget, d: Decision) => void;
  onClass: (a: Annotation, classId: number) => void; onDelete: (a: Annotation) => void;
}) {
  const { anns, pid, classes } = props;
  return (
    <ol className="objects" data-testid="objects">
      {anns.length === 0 && props.loaded && <li className="muted">No objects on this image. Draw a box (x) to add one.</li>}
      {anns.map((a, i) => (
        <ObjectRow key={a.id} a={a} index={i} pid={pid} selected={a.id === props.selId} color={colorOf(a, classes)} unsaved={props.unsaved.has(a.id)}
          awaiting={!props.canReview && awaitsReview(a, props.edited.has(a.id))}
          onSelect={() => props.onSelect(a.id)} onReview={(t, d) => props.onReview(a, t, d)} onClass={(cid) => props.onClass(a, cid)} onDelete={() => props.onDelete(a)} />
      ))}
    </ol>
  );
}

function fmt(x: number | null | undefined, digits = 2) {
  return x === null || x === undefined ? "—" : x.toFixed(digits);
}

function ObjectRow(props: {
  a: Annotation; index: number; pid: number; selected: boolean; color: string; unsaved: boolean; awaiting: boolean;
  onSelect: () => void; onReview: (t: "class" | "mask", d: Decision) => void;
  onClass: (id: number) => void; onDelete: () => void;
}) {
  const { a, selected } = props;
  const ref = useRef<HTMLLIElement>(null);
  useEffect(() => {
    if (selected) ref.current?.scrollIntoView({ block: "nearest" });
  }, [selected]);
  const state = (s: string) => (s === "accepted" ? "✓" : s === "rejected" ? "✗" : "•");
  return (
    <li ref={ref} className={`object ${selected ? "selected" : ""}`} onClick={props.onSelect} data-testid={`object-${a.id}`} data-class={a.class_name}
      data-class-review={a.class_review} data-mask-review={a.mask_review}>
      <div className="object-head">
        <i className="swatch" style={{ background: props.color }} />
        <b className={a.class_review === "rejected" ? "strike" : ""}>{a.class_name || "(no class)"}</b>
        <span className="muted small">score {fmt(a.class_score)} · margin {fmt(a.class_margin)}</span>
        <span className="spacer" />
        {props.unsaved && <span className="badge badge-failed" title="Not saved">unsaved</span>}
        {props.awaiting && (
          <span className="badge badge-in_review" data-testid={`awaiting-${a.id}`} title="Your change is saved; a reviewer has to accept it before it is exported">
            edited · pending review
          </span>
        )}
        <span className="muted small">{a.source}</span>
      </div>
      <div className="object-review">
        <span className={`rv rv-${a.class_review}`}>class {state(a.class_review)}</span>
        <button className="small" title="Accept class (c)" onClick={(e) => { e.stopPropagation(); props.onReview("class", "accepted"); }}>✓ class</button>
        <button className="small" title="Reject class (Shift+C)" onClick={(e) => { e.stopPropagation(); props.onReview("class", "rejected"); }}>✗</button>
        <span className={`rv rv-${a.mask_review}`}>mask {state(a.mask_review)}</span>
        <button className="small" title="Accept mask (m)" onClick={(e) => { e.stopPropagation(); props.onReview("mask", "accepted"); }}>✓ mask</button>
        <button className="small" title="Reject mask (Shift+M)" onClick={(e) => { e.stopPropagation(); props.onReview("mask", "rejected"); }}>✗</button>
        <span className="spacer" />
        <button className="small danger" title="Delete object (Delete)" onClick={(e) => { e.stopPropagation(); props.onDelete(); }}>Delete</button>
      </div>
      {selected && a.candidates && a.candidates.length > 0 && (
        <div className="candidates">
          {a.candidates.slice(0, 9).map((c, i) => (
            <button key={`${c.class_id}-${i}`} className={`candidate ${c.class_id === a.label_class ? "current" : ""}`} data-testid={`candidate-${c.name}`}
              title={`Set class to ${c.name} (${i + 1})`} onClick={(e) => { e.stopPropagation(); props.onClass(c.class_id); }}>
              {c.exemplar_id ? <img src={`${P(props.pid)}/gallery/${c.exemplar_id}/file/`} alt="" loading="lazy" /> : null}
              <span className="cand-name"><kbd>{i + 1}</kbd> {c.name}</span>
              <span className="small muted">{fmt(c.score)}</span>
            </button>
          ))}
        </div>
      )}
    </li>
  );
}
