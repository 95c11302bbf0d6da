// The gallery that learns (issue 15): exemplars learned from reviewers' class fixes are marked
// with where they came from, hard negatives ("this crop is not that class") are listed per
// class, and admins prune either, one at a time or several at once (each prune is a new
// gallery version: pending objects re-score, started jobs keep theirs).
import { P, type GalleryImage } from "../api/client";
import type { components } from "../api/schema";
import { Link } from "../router";

export type HardNegative = components["schemas"]["HardNegative"];
export type SourceFilter = "all" | "uploaded" | "learned";

const day = (iso: string) => new Date(iso).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });

/** "learned from image #12 by rita, 29 Nov 2026" (or who uploaded it, when). */
export function provenance(g: GalleryImage): string {
  if (g.source === "learned") return `learned from image #${g.source_image_id ?? "?"} by ${g.added_by ?? "a removed user"}, ${day(g.created_at)}`;
  return `uploaded${g.added_by ? ` by ${g.added_by}` : ""}, ${day(g.created_at)}: ${g.original_name}`;
}

export function negativeProvenance(n: HardNegative): string {
  return `not ${n.class_name}: moved away by ${n.reviewer ?? "a removed user"} on image #${n.source_image_id ?? "?"}, ${day(n.created_at)}`;
}

export function SourceFilterSelect({ value, onChange, counts }: { value: SourceFilter; onChange: (v: SourceFilter) => void; counts: Record<SourceFilter, number> }) {
  return (
    <label className="small">Exemplars{" "}
      <select aria-label="exemplar source" data-testid="exemplar-source" value={value} onChange={(e) => onChange(e.target.value as SourceFilter)}>
        <option value="all">all ({counts.all})</option>
        <option value="uploaded">uploaded ({counts.uploaded})</option>
        <option value="learned">learned from reviews ({counts.learned})</option>
      </select>
    </label>
  );
}

const badge: React.CSSProperties = {
  position: "absolute", left: 2, bottom: 2, fontSize: 10, padding: "0 5px", borderRadius: 8, background: "#7c3aed", color: "#fff",
};
const check: React.CSSProperties = { position: "absolute", top: 4, left: 4, margin: 0 };

export function ExemplarThumb({ pid, g, admin, selected, onSelect, onRemove }: {
  pid: number; g: GalleryImage; admin: boolean; selected: boolean; onSelect: (on: boolean) => void; onRemove: () => void;
}) {
  const learned = g.source === "learned";
  return (
    <figure className="thumb" title={provenance(g)} data-testid={`exemplar-${g.id}`} data-source={g.source}
      style={learned ? { outline: "2px solid #7c3aed" } : undefined}>
      <img src={`${P(pid)}/gallery/${g.id}/file/`} alt={g.original_name} loading="lazy" />
      {learned && <span style={badge}>learned</span>}
      {admin && <input type="checkbox" style={check} aria-label={`select exemplar ${g.id}`} checked={selected} onChange={(e) => onSelect(e.target.checked)} />}
      {admin && <button className="thumb-del" title="Remove exemplar" aria-label={`remove exemplar ${g.id}`} onClick={onRemove}>×</button>}
    </figure>
  );
}

/** Under a class: the learned exemplars' provenance in words, then its hard negatives. */
export function LearnedDetails({ pid, exemplars, negatives, admin, onRemoveNegative }: {
  pid: number; exemplars: GalleryImage[]; negatives: HardNegative[]; admin: boolean; onRemoveNegative: (n: HardNegative) => void;
}) {
  const learned = exemplars.filter((g) => g.source === "learned");
  if (!learned.length && !negatives.length) return null;
  return (
    <div className="small" style={{ marginTop: 8 }}>
      {learned.length > 0 && (
        <ul className="muted" style={{ margin: "4px 0", paddingLeft: 18 }} data-testid="learned-provenance">
          {learned.map((g) => (
            <li key={g.id}>#{g.id}: learned from{" "}
              <Link to={`/p/${pid}/review/${g.source_image_id}`}>image #{g.source_image_id}</Link>
              {" "}by {g.added_by ?? "a removed user"}, {day(g.created_at)}</li>
          ))}
        </ul>
      )}
      {negatives.length > 0 && (
        <div data-testid="hard-negatives">
          <b>Hard negatives</b> <span className="muted">(crops reviewers said are not this class: the class is demoted for objects that look like them)</span>
          <div className="thumbs" style={{ marginTop: 4 }}>
            {negatives.map((n) => (
              <figure key={n.id} className="thumb" title={negativeProvenance(n)} data-testid={`negative-${n.id}`} style={{ outline: "2px dashed #dc2626" }}>
                <img src={n.crop_url} alt={`hard negative ${n.id}`} loading="lazy" style={{ opacity: 0.8 }} />
                <span style={{ ...badge, background: "#dc2626" }}>not this</span>
                {admin && <button className="thumb-del" title="Remove hard negative" aria-label={`remove hard negative ${n.id}`} onClick={() => onRemoveNegative(n)}>×</button>}
              </figure>
            ))}
          </div>
        </div>
      )}
    </div>
  );
}
