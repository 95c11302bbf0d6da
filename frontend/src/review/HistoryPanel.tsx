/**
 * History of the open image or of the selected object, from the audit trail: who changed what and
 * when, class and review states before → after, the mask before → after as small thumbnails, and
 * "Restore this version" (an audited change on the server, versioned like any write).
 */
import { useEffect, useRef, useState } from "react";
import { ApiError, get, P, post, type Annotation, type LabelClass, type Page, type Rle } from "../api/client";
import { countsFromString, decode, runsGeometry, unionBox, type Box } from "../canvas";
import { notify } from "../notify";
import { claimMessage, claimRefusal } from "./rules";

interface Snapshot {
  label_class: number | null;
  mask_rle: Rle | null;
  class_review: string;
  mask_review: string;
  version: number;
}
export interface AuditEvent {
  id: number;
  annotation_id: number;
  actor: string | null;
  action: string;
  source?: string;
  before: Snapshot | null;
  after: Snapshot | null;
  created_at: string;
}

export function HistoryPanel(props: {
  pid: number; imageId: number; sel: Annotation | null; anns: Annotation[]; classes: LabelClass[]; readOnly: boolean;
  onRestored: (a: Annotation, before: Annotation) => void; onClose: () => void; refuseReadOnly: () => void;
}) {
  const { pid, imageId, sel, classes } = props;
  const [scope, setScope] = useState<"object" | "image">(sel ? "object" : "image");
  const [events, setEvents] = useState<AuditEvent[] | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState<number | null>(null);
  const objectId = scope === "object" ? sel?.id ?? null : null;
  // Reload when the object changes on the server (its version) or the scope changes.
  const stamp = scope === "object" ? `${sel?.id}:${sel?.version}` : props.anns.map((a) => `${a.id}:${a.version}`).join(",");

  useEffect(() => {
    let cancelled = false;
    if (scope === "object" && !sel) { setEvents([]); return; }
    const q = objectId === null ? "" : `annotation=${objectId}&`;
    get<Page<AuditEvent>>(`${P(pid)}/images/${imageId}/events/?${q}page_size=200`)
      .then((page) => { if (!cancelled) { setEvents([...page.results].reverse()); setError(""); } })
      .catch((e) => !cancelled && setError(`Couldn't load the history: ${e.message}`));
    return () => { cancelled = true; };
  }, [pid, imageId, scope, stamp]);

  const className = (id: number | null | undefined) => (id == null ? "(no class)" : classes.find((c) => c.id === id)?.name ?? `class #${id}`);
  const current = (annId: number) => props.anns.find((a) => a.id === annId) ?? null;

  const restore = async (ev: AuditEvent) => {
    if (props.readOnly) return props.refuseReadOnly();
    const a = current(ev.annotation_id);
    if (!a) return notify("That object no longer exists; undo its deletion (z) to bring it back.", "warn");
    setBusy(ev.id);
    try {
      const restored = await post<Annotation>(`${P(pid)}/annotations/${a.id}/restore/`, { event: ev.id, version: a.version });
      props.onRestored(restored, a);
      notify(`Restored the version of ${new Date(ev.created_at).toLocaleString()}.`);
    } catch (e) {
      const refused = claimRefusal(e);
      if (refused) notify(claimMessage(refused, "the restore"), "error");
      else if (e instanceof ApiError && e.status === 409) notify("Someone changed this object meanwhile; the history has been reloaded — try again.", "error");
      else if (e instanceof ApiError && e.status === 404 && !e.body?.code) notify("Restoring versions isn't available on this server yet.", "warn");
      else notify(`Couldn't restore: ${(e as Error).message}`, "error");
    } finally {
      setBusy(null);
    }
  };

  return (
    <section className="history" data-testid="history" aria-label="History">
      <div className="history-head">
        <b>History</b>
        <span className="seg-toggle" role="radiogroup" aria-label="history scope">
          <button role="radio" aria-checked={scope === "object"} className={scope === "object" ? "active" : ""} onClick={() => setScope("object")} disabled={!sel}>
            This object
          </button>
          <button role="radio" aria-checked={scope === "image"} className={scope === "image" ? "active" : ""} onClick={() => setScope("image")}>
            Whole image
          </button>
        </span>
        <span className="spacer" />
        <button className="link" onClick={props.onClose} aria-label="Close history">Close</button>
      </div>
      {error && <p className="error small" role="alert">{error}</p>}
      {events === null && !error && <p className="muted small">Loading…</p>}
      {events?.length === 0 && <p className="muted small">No changes recorded yet.</p>}
      <ol className="history-list">
        {events?.map((ev) => {
          const b = ev.before, a = ev.after;
          const state = a ?? b;
          const live = current(ev.annotation_id);
          const same = !!live && !!state && live.label_class === state.label_class && live.mask_rle?.counts === state.mask_rle?.counts;
          return (
            <li key={ev.id} className="history-item" data-testid={`event-${ev.id}`} data-action={ev.action}>
              <div className="row small">
                <b>{ev.actor ?? "system"}</b> <span>{ev.action}</span>
                {objectId === null && <span className="muted">object #{ev.annotation_id}</span>}
                <span className="spacer" />
                <time className="muted" dateTime={ev.created_at} title={ev.created_at}>{new Date(ev.created_at).toLocaleString()}</time>
              </div>
              <div className="history-diff small">
                {(b?.label_class !== a?.label_class) && <div>class: {b ? className(b.label_class) : "—"} → {a ? className(a.label_class) : "deleted"}</div>}
                {(b?.class_review !== a?.class_review) && <div>class review: {b?.class_review ?? "—"} → {a?.class_review ?? "—"}</div>}
                {(b?.mask_review !== a?.mask_review) && <div>mask review: {b?.mask_review ?? "—"} → {a?.mask_review ?? "—"}</div>}
                {a?.mask_rle?.counts && b?.mask_rle?.counts !== a.mask_rle.counts && <div data-testid="mask-change">{maskChange(b?.mask_rle ?? null, a.mask_rle)}</div>}
              </div>
              {b?.mask_rle?.counts !== a?.mask_rle?.counts && (
                <div className="row history-masks">
                  <MaskThumb rle={b?.mask_rle ?? null} other={a?.mask_rle ?? null} label="mask before" />
                  <span aria-hidden>→</span>
                  <MaskThumb rle={a?.mask_rle ?? null} other={b?.mask_rle ?? null} label="mask after" />
                </div>
              )}
              {live && state && (
                <button className="small" disabled={same || busy !== null || props.readOnly} onClick={() => void restore(ev)}
                  title={same ? "The object looks like this now" : "Bring the class and mask back to this version (an audited change)"}>
                  {busy === ev.id ? "Restoring…" : "Restore this version"}
                </button>
              )}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

/** The thumbnails and "→" alone were hard to scan: "mask changed: 31,050 → 41,471 px". */
function maskChange(before: Rle | null, after: Rle): string {
  const px = (r: Rle) => `${runsGeometry(countsFromString(r.counts), r.size[0]).area.toLocaleString("en-US")} px`;
  return before?.counts ? `mask changed: ${px(before)} → ${px(after)}` : `mask drawn: ${px(after)}`;
}

const THUMB = 64;

/** The mask cropped to the box both versions cover (so before and after line up), drawn small. */
function MaskThumb({ rle, other, label }: { rle: Rle | null; other: Rle | null; label: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = ref.current;
    if (!c) return;
    const ctx = c.getContext("2d")!;
    ctx.clearRect(0, 0, THUMB, THUMB);
    if (!rle?.counts) return;
    const box = unionBox(boxOf(rle), other?.counts ? boxOf(other) : null);
    if (!box) return;
    const [h, w] = rle.size;
    const mask = decode(rle);
    const k = THUMB / Math.max(box.w, box.h);
    const img = ctx.createImageData(THUMB, THUMB);
    for (let ty = 0; ty < THUMB; ty++) {
      for (let tx = 0; tx < THUMB; tx++) {
        const x = Math.floor(box.x + tx / k), y = Math.floor(box.y + ty / k);
        if (x >= w || y >= h || x >= box.x + box.w || y >= box.y + box.h) continue;
        if (mask[y * w + x]) {
          const o = (ty * THUMB + tx) * 4;
          img.data[o] = 37; img.data[o + 1] = 99; img.data[o + 2] = 235; img.data[o + 3] = 255;
        }
      }
    }
    ctx.putImageData(img, 0, 0);
  }, [rle?.counts, other?.counts]);
  return <canvas ref={ref} width={THUMB} height={THUMB} className="mask-thumb" aria-label={label} role="img" />;
}

function boxOf(rle: Rle): Box | null {
  return runsGeometry(countsFromString(rle.counts), rle.size[0]).bbox;
}
