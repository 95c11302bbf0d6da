/** The object list beside the stage: class, scores, review state and top-k candidates per object.
 * An instance class (one physical tool, e.g. "screwdriver-1234") shows as "type › instance". */
import { useEffect, useRef, useState } from "react";
import { P, type Annotation, type LabelClass } from "../api/client";
import type { Candidate } from "../api/extra";
import { colorOf } from "./bundle";
import { awaitsReview, NO_CLASS_HINT } from "./rules";
import { keyboardNavigation } from "./useReviewKeys";

export type ReviewTarget = "class" | "mask" | "both";
export type Decision = "accepted" | "rejected" | "pending";

export function ObjectList(props: {
  anns: Annotation[]; pid: number; classes: LabelClass[]; selId: number | null; loaded: boolean; canReview: boolean;
  /** A viewer, or an image someone else holds: every control is disabled, selecting still works. */
  readOnly?: boolean;
  unsaved: Map<number, unknown>; edited: Set<number>;
  /** Review decisions the network or server failed to save: shown as wanted, marked "not saved". */
  notSaved?: Map<number, { target: ReviewTarget; decision: Decision }>;
  onSelect: (id: number) => void; onReview: (a: Annotation, t: ReviewTarget, d: Decision) => void;
  onClass: (a: Annotation, classId: number) => void; onDelete: (a: Annotation) => void;
}) {
  const { anns, pid, classes } = props;
  return (
    <ol className="objects" data-testid="objects">
      {anns.length === 0 && props.loaded && <li className="muted objects-empty">No objects on this image. Draw a box (x) to add one.</li>}
      {anns.map((a, i) => (
        <ObjectRow key={a.id} a={a} index={i} pid={pid} classes={classes} selected={a.id === props.selId} color={colorOf(a, classes)} unsaved={props.unsaved.has(a.id)}
          notSaved={props.notSaved?.get(a.id) ?? null} readOnly={!!props.readOnly} canReview={props.canReview}
          awaiting={!props.canReview && awaitsReview(a, props.edited.has(a.id))}
          onSelect={() => props.onSelect(a.id)} onReview={(t, d) => props.onReview(a, t, d)} onClass={(cid) => props.onClass(a, cid)} onDelete={() => props.onDelete(a)} />
      ))}
    </ol>
  );
}

/** "type › instance" for an instance class, the name for a type. */
/** Why a class cannot be chosen now (deactivated, or an instance of a deactivated type), or null. */
export function retiredClass(classId: number, classes: LabelClass[]): string | null {
  const c = classes.find((k) => k.id === classId);
  if (!c) return null;
  if (c.active === false) return `“${c.name}” is deactivated: choose another class (press / to search).`;
  const parent = c.parent != null ? classes.find((k) => k.id === c.parent) : undefined;
  if (parent && parent.active === false) return `“${c.name}” is an instance of the deactivated type “${parent.name}”: choose another class (press / to search).`;
  return null;
}

export function classLabel(classId: number | null | undefined, classes: LabelClass[], fallback = ""): string {
  const c = classes.find((k) => k.id === classId);
  if (!c) return fallback;
  const parent = c.parent ? classes.find((k) => k.id === c.parent) : undefined;
  return parent ? `${parent.name} › ${c.name}` : c.name;
}

/** Active types in name order, each with its active instances. */
function typesWithInstances(classes: LabelClass[]): { type: LabelClass; instances: LabelClass[] }[] {
  const active = classes.filter((c) => c.active !== false);
  return active.filter((c) => !c.parent).map((type) => ({ type, instances: active.filter((c) => c.parent === type.id) }));
}

/** The class picker: instances grouped under their type (the type itself stays choosable). */
export const ACCEPTED_DELETE_HINT = "Accepted in review: only a reviewer or admin can delete it. Edit it instead (an edit sends it back to review).";

/** What the score and margin mean; a negative margin puzzled reviewers (round 6). */
/** The score and margin of the class the object has now: after a class change the row kept the
 * model's score for the old class ("pliers · score 0.52", 0.52 being hammer's). The chosen class's
 * candidate score (margin against the best other candidate), or none when it was no candidate. */
export function shownScores(a: Pick<Annotation, "label_class" | "class_score" | "class_margin" | "candidates">): { score: number | null; margin: number | null } {
  const stored = { score: a.class_score ?? null, margin: a.class_margin ?? null };
  const candidates = a.candidates ?? [];
  if (!candidates.length || a.label_class === null || a.label_class === undefined) return stored;
  const mine = candidates.find((c) => c.class_id === a.label_class);
  if (!mine) return { score: null, margin: null };
  // The class the scores were stored for: the server's own margin (it may weigh one object per class).
  if (a.class_score !== null && a.class_score !== undefined && Math.abs(mine.score - a.class_score) < 1e-9) return stored;
  const others = candidates.filter((c) => c.class_id !== mine.class_id).map((c) => c.score);
  return { score: mine.score, margin: others.length ? mine.score - Math.max(...others) : null };
}

export function scoreHelp(a: Annotation): string {
  const base = "score: how closely the object matches its class's gallery pictures (0–1). "
    + "margin: that score minus the best other class's.";
  return (a.class_margin ?? 0) < 0
    ? `${base} Negative: another class matched it better, but with one object per class on an image (Settings) that `
      + "class went to an object that matched it even better. Check the class."
    : base;
}

function ClassPicker(props: { a: Annotation; classes: LabelClass[]; onClass: (id: number) => void; disabled: boolean }) {
  const groups = typesWithInstances(props.classes);
  const offered = new Set(groups.flatMap(({ type, instances }) => [type.id, ...instances.map((c) => c.id)]));
  // A class that is no longer offered (deactivated) stays shown as the object's class: without its
  // own option the select showed the first class instead, and picking that one changed nothing.
  const current = props.a.label_class;
  const hidden = current !== null && current !== undefined && !offered.has(current);
  // Arrow keys and typing on the closed select change its value at every step: each step saved a
  // class (three saves for four key presses). Keyboard steps are only shown, and saved on Enter
  // or when the select loses focus; a mouse choice is saved at once.
  const [stepped, setStepped] = useState<number | null>(null);
  const byKey = useRef(false);
  useEffect(() => setStepped(null), [props.a.id, current]);
  const commit = () => {
    if (stepped !== null && stepped !== current) props.onClass(stepped);
    setStepped(null);
  };
  return (
    <select aria-label="class of the object" disabled={props.disabled} data-testid={`class-picker-${props.a.id}`} value={stepped ?? current ?? ""}
      onClick={(e) => e.stopPropagation()}
      onKeyDown={(e) => {
        // F6 moves on to the next region, and Esc with nothing to take back leaves the select: the
        // workspace's keys (both were swallowed here, black-box round 17). Leaving saves a step.
        if (e.key === "F6" || (e.key === "Escape" && stepped === null)) return;
        e.stopPropagation();
        if (e.key === "Escape" && stepped !== null) {
          // Esc takes back a keyboard step not saved yet: it stayed shown over the saved class.
          e.preventDefault();
          setStepped(null);
          return;
        }
        const letter = e.key.length === 1 && e.key !== " " && !e.ctrlKey && !e.metaKey && !e.altKey;
        if (letter && keyboardNavigation()) {
          // Reached with F6 / Tab, the keyboard is the select's: type-ahead steps, Enter or leaving saves.
          byKey.current = true;
          return;
        }
        const undoKey = (e.ctrlKey || e.metaKey) && /^[zZyY]$/.test(e.key); // Ctrl+Z did nothing here
        if (undoKey || letter) {
          // A letter or digit is a review key (a, r, c, 1…), not the select's type-ahead: after a
          // look at the list, "a" picked the first class starting with a and saved it accepted.
          e.preventDefault();
          e.currentTarget.blur(); // saves a keyboard step not yet saved, as leaving the select does
          window.dispatchEvent(new KeyboardEvent("keydown", { key: e.key, repeat: e.repeat, shiftKey: e.shiftKey, ctrlKey: e.ctrlKey, metaKey: e.metaKey }));
          return;
        }
        if (e.key === "Enter") {
          byKey.current = false; // a choice made in the open list with Enter is a choice: saved at once
          commit();
        } else byKey.current = e.key.startsWith("Arrow") || e.key === "Home" || e.key === "End" || e.key.startsWith("Page");
      }}
      onBlur={commit}
      onChange={(e) => {
        if (!e.target.value) return;
        if (byKey.current) setStepped(Number(e.target.value));
        else {
          props.onClass(Number(e.target.value));
          e.target.blur(); // the keys that follow are the workspace's again
        }
        byKey.current = false;
      }}>
      <option value="" disabled>Choose a class…</option>
      {hidden && <option value={current} disabled>{props.a.class_name ?? `class ${current}`} (inactive)</option>}
      {groups.map(({ type, instances }) => instances.length === 0
        ? <option key={type.id} value={type.id}>{type.name}</option>
        : (
          <optgroup key={type.id} label={type.name}>
            <option value={type.id}>{type.name} (type, instance unknown)</option>
            {instances.map((c) => <option key={c.id} value={c.id}>{type.name} › {c.name}</option>)}
          </optgroup>
        ))}
    </select>
  );
}

function fmt(x: number | null | undefined, digits = 2) {
  return x === null || x === undefined ? "—" : x.toFixed(digits);
}

function ObjectRow(props: {
  a: Annotation; index: number; pid: number; classes: LabelClass[]; selected: boolean; color: string; unsaved: boolean; awaiting: boolean;
  readOnly: boolean; canReview: boolean; notSaved: { target: ReviewTarget; decision: Decision } | null;
  onSelect: () => void; onReview: (t: "class" | "mask", d: Decision) => void;
  onClass: (id: number) => void; onDelete: () => void;
}) {
  const { a, selected } = props;
  const ref = useRef<HTMLLIElement>(null);
  useEffect(() => {
    if (selected) ref.current?.scrollIntoView({ block: "nearest" });
  }, [selected]);
  const state = (s: string) => (s === "accepted" ? "✓" : s === "rejected" ? "✗" : "•");
  const noWrite = props.readOnly;
  const noReview = props.readOnly || !props.canReview;
  // The server refuses it (annotations.services.delete_annotation): an edit sends it back to review instead.
  const acceptedForAnnotator = !props.canReview && (a.class_review === "accepted" || a.mask_review === "accepted");
  const reviewTitle = (what: string) => (props.readOnly ? "Read-only" : !props.canReview ? "Only reviewers and admins review" : what);
  // A class can't be accepted before there is one (the server refuses it).
  const noClass = a.label_class === null || a.label_class === undefined;
  // A decision that failed to save shows as wanted until it is retried or replaced.
  const ns = props.notSaved;
  const shownClass = ns && ns.target !== "mask" ? ns.decision : a.class_review;
  const shownMask = ns && ns.target !== "class" ? ns.decision : a.mask_review;
  const shown = shownScores(a);
  return (
    <li ref={ref} className={`object ${selected ? "selected" : ""}`} onClick={props.onSelect} data-testid={`object-${a.id}`} data-class={a.class_name}
      data-class-review={a.class_review} data-mask-review={a.mask_review} data-not-saved={ns ? "true" : undefined}>
      <div className="object-head">
        <i className="swatch" style={{ background: props.color }} />
        <b className={a.class_review === "rejected" ? "strike" : ""} data-testid={`class-label-${a.id}`}>{classLabel(a.label_class, props.classes, a.class_name || "(no class)")}</b>
        {/* Without a class the scores belong to no class shown: say why there is none instead. */}
        {noClass
          ? <span className="muted small" data-testid={`no-class-why-${a.id}`} title={a.class_score != null ? `Best gallery match ${fmt(a.class_score)}, margin ${fmt(a.class_margin)}: too unsure to propose a class` : undefined}>
              {a.class_score != null ? "no sure gallery match" : "no gallery match"}
            </span>
          : <span className="muted small" data-testid={`scores-${a.id}`} title={scoreHelp({ ...a, class_margin: shown.margin })}>score {fmt(shown.score)} · margin {fmt(shown.margin)}</span>}
        <span className="spacer" />
        {props.unsaved && <span className="badge badge-failed" title="Not saved">unsaved</span>}
        {ns && (
          <span className="badge badge-failed" data-testid={`review-not-saved-${a.id}`} title="This review decision is not saved: Retry it, or decide again">
            review not saved
          </span>
        )}
        {props.awaiting && (
          <span className="badge badge-in_review" data-testid={`awaiting-${a.id}`} title="Your change is saved; a reviewer has to accept it before it is exported">
            edited · pending review
          </span>
        )}
        <span className="muted small">{a.source}</span>
      </div>
      <div className="object-review">
        <span className={`rv rv-${shownClass}`}>class {state(shownClass)}</span>
        <button className="small" disabled={noReview || noClass} title={noClass && !noReview ? NO_CLASS_HINT : reviewTitle("Accept class (c)")} data-testid={`accept-class-${a.id}`} onClick={(e) => { e.stopPropagation(); props.onReview("class", "accepted"); }}>✓ class</button>
        <button className="small" disabled={noReview} title={reviewTitle("Reject class (Shift+C)")} onClick={(e) => { e.stopPropagation(); props.onReview("class", "rejected"); }}>✗</button>
        <span className={`rv rv-${shownMask}`}>mask {state(shownMask)}</span>
        <button className="small" disabled={noReview} title={reviewTitle("Accept mask (m)")} onClick={(e) => { e.stopPropagation(); props.onReview("mask", "accepted"); }}>✓ mask</button>
        <button className="small" disabled={noReview} title={reviewTitle("Reject mask (Shift+M)")} onClick={(e) => { e.stopPropagation(); props.onReview("mask", "rejected"); }}>✗</button>
        <span className="spacer" />
        <button className="small danger" disabled={noWrite || acceptedForAnnotator}
          title={noWrite ? "Read-only" : acceptedForAnnotator ? ACCEPTED_DELETE_HINT : "Delete object (Delete)"}
          data-testid={`delete-${a.id}`} onClick={(e) => { e.stopPropagation(); props.onDelete(); }}>Delete</button>
      </div>
      {selected && <div className="object-review"><ClassPicker a={a} classes={props.classes} onClass={props.onClass} disabled={noWrite} /></div>}
      {selected && a.candidates && a.candidates.length > 0 && (
        <div className="candidates">
          {a.candidates.slice(0, 9).map((c: Candidate & { kind?: string; parent_id?: number | null }, i) => {
            // The class's name now: a candidate keeps the name it had when it was scored (a rename since).
            const name = props.classes.find((k) => k.id === c.class_id)?.name ?? c.name;
            // A class deactivated since the scoring stays listed (its number keeps its place), greyed.
            const retired = retiredClass(c.class_id, props.classes);
            return (
            <button key={`${c.class_id}-${i}`} disabled={noWrite || !!retired} className={`candidate ${c.class_id === a.label_class ? "current" : ""} ${retired ? "retired" : ""}`} data-testid={`candidate-${name}`}
              data-kind={c.kind ?? "class"}
              title={retired ?? `Set class to ${classLabel(c.class_id, props.classes, c.name)} (${i + 1})`} onClick={(e) => { e.stopPropagation(); props.onClass(c.class_id); }}>
              {c.exemplar_id ? <img src={`${P(props.pid)}/gallery/${c.exemplar_id}/file/`} alt="" loading="lazy" /> : null}
              <span className="cand-name"><kbd>{i + 1}</kbd> {c.parent_id ? "› " : ""}{name}</span>
              <span className="small muted">{fmt(c.score)}</span>
            </button>
            );
          })}
        </div>
      )}
    </li>
  );
}
