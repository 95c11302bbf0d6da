import { useEffect, useState } from "react";
import { del, post, P } from "../api/client";
import { subscribe } from "../api/live";
import { count } from "../plural";
import { notify } from "../notify";
import { formatBytes, formatWhen, isLive, parseIdList, useExchangeJobs, type ExportJob } from "./exchange";
import { useInFlight } from "./inFlight";
import type { ProjectCtx } from "./ProjectLayout";

/** What the user picks → the API's format + segmentation. */
export const EXPORT_FORMATS = [
  { key: "coco-rle", label: "COCO (RLE masks)", format: "coco", segmentation: "rle" },
  { key: "coco-polygon", label: "COCO (polygons)", format: "coco", segmentation: "polygon" },
  { key: "labelme", label: "LabelMe", format: "labelme", segmentation: "polygon" },
  { key: "yolo", label: "YOLO segmentation", format: "yolo", segmentation: "polygon" },
  { key: "native", label: "predictions.json (with scores)", format: "native", segmentation: "rle" },
  { key: "labelstudio", label: "Label Studio", format: "labelstudio", segmentation: "rle" },
] as const;
const IMAGE_STATUSES = [["new", "New"], ["prelabeled", "Pre-labeled"], ["in_review", "In review"], ["done", "Done"]] as const;

export function formatLabel(job: Pick<ExportJob, "format" | "options">): string {
  if (job.format === "coco") return job.options?.segmentation === "polygon" ? "COCO (polygons)" : "COCO (RLE)";
  return EXPORT_FORMATS.find((f) => f.format === job.format)?.label ?? job.format;
}

export function ExportPage({ ctx }: { ctx: ProjectCtx }) {
  const pid = ctx.project.id;
  const { jobs, upsert, reload } = useExchangeJobs<ExportJob>(pid, "export");
  // Deleted exports, and older ones whose files retention removed, change the list too.
  useEffect(() => subscribe(pid, (ev) => {
    if (ev.type === "export.deleted" || ev.type === "export.expired") void reload();
  }), [pid, reload]);
  const remove = async (job: ExportJob) => {
    const live = isLive(job);
    if (!window.confirm(live
      ? `Cancel export #${job.id}? It stops and its file is not kept.`
      : `Delete export #${job.id}${job.download_url ? " and its zip file" : ""}? This cannot be undone.`)) return;
    try {
      await del(`${P(pid)}/exports/${job.id}/`);
      notify(live ? `Export #${job.id} cancelled.` : `Export #${job.id} deleted.`);
    } catch (err) {
      notify(`Couldn't delete export #${job.id}: ${(err as Error).message}`, "error");
    }
    void reload();
  };
  const [fmt, setFmt] = useState<(typeof EXPORT_FORMATS)[number]["key"]>("coco-rle");
  const [objects, setObjects] = useState<"approved" | "pending">("approved");
  const [statuses, setStatuses] = useState<string[]>([]);
  const [classIds, setClassIds] = useState<number[]>([]);
  const [ids, setIds] = useState("");
  const [includeImages, setIncludeImages] = useState(false);
  const [includeEmpty, setIncludeEmpty] = useState(false);
  const [busy, run] = useInFlight();
  const [fieldError, setFieldError] = useState<Record<string, string>>({});

  const toggle = <T,>(list: T[], v: T) => (list.includes(v) ? list.filter((x) => x !== v) : [...list, v]);

  const start = (e: React.FormEvent) => {
    e.preventDefault();
    void run(() => startExport());
  };
  const startExport = async () => {
    let imageIds: number[] = [];
    try {
      imageIds = parseIdList(ids);
    } catch (err) {
      setFieldError({ image_ids: (err as Error).message });
      return;
    }
    setFieldError({});
    const choice = EXPORT_FORMATS.find((f) => f.key === fmt)!;
    try {
      const job = await post<ExportJob>(`${P(pid)}/exports/`, {
        format: choice.format, segmentation: choice.segmentation, include_pending: objects === "pending",
        include_images: includeImages, include_empty_images: includeEmpty,
        ...(statuses.length ? { status: statuses } : {}), ...(classIds.length ? { class_ids: classIds } : {}),
        ...(imageIds.length ? { image_ids: imageIds } : {}),
      });
      upsert(job);
      notify(`Export #${job.id} started.`);
    } catch (err: any) {
      const body = err.body && typeof err.body === "object" ? err.body : {};
      const fields: Record<string, string> = {};
      for (const k of ["image_ids", "class_ids", "status", "format"]) if (body[k]) fields[k] = ([] as string[]).concat(body[k]).map(String).join(" ");
      if (/^Image \d+/.test(body.detail ?? "")) fields.image_ids = body.detail;
      if (/^Class \d+/.test(body.detail ?? "")) fields.class_ids = body.detail;
      setFieldError(fields);
      notify(`Couldn't start the export: ${err.message}`, "error");
    }
  };

  return (
    <main className="page">
      <h1>Export</h1>
      <div className="grid2 grid-wide-right">
        {ctx.isAdmin ? (
          <form className="card" onSubmit={start} data-testid="export-form">
            <h2>New export</h2>
            <label>Format
              <select name="export-format" value={fmt} onChange={(e) => setFmt(e.target.value as typeof fmt)}>
                {EXPORT_FORMATS.map((f) => <option key={f.key} value={f.key}>{f.label}</option>)}
              </select>
            </label>
            <fieldset className="fieldset">
              <legend>Which objects</legend>
              <label className="check"><input type="radio" name="objects" checked={objects === "approved"} onChange={() => setObjects("approved")} /> Approved only (class and mask accepted)</label>
              <label className="check"><input type="radio" name="objects" checked={objects === "pending"} onChange={() => setObjects("pending")} /> Approved and still pending (never rejected ones)</label>
            </fieldset>
            <fieldset className="fieldset">
              <legend>Classes <span className="muted small">(none ticked = all)</span></legend>
              <div className="checks" data-testid="export-classes">
                {ctx.classes.length === 0 && <span className="muted small">No classes yet.</span>}
                {ctx.classes.map((c) => (
                  <label key={c.id} className="check" title={c.name}>
                    <input type="checkbox" checked={classIds.includes(c.id)} onChange={() => setClassIds(toggle(classIds, c.id))} />
                    <span className="swatch" style={{ background: c.color }} /> <span className="ellipsis">{c.name}</span>
                  </label>
                ))}
              </div>
              {fieldError.class_ids && <p className="error small field-error">{fieldError.class_ids}</p>}
            </fieldset>
            <fieldset className="fieldset">
              <legend>Image status <span className="muted small">(none ticked = all)</span></legend>
              <div className="checks">
                {IMAGE_STATUSES.map(([v, l]) => (
                  <label key={v} className="check"><input type="checkbox" checked={statuses.includes(v)} onChange={() => setStatuses(toggle(statuses, v))} /> {l}</label>
                ))}
              </div>
            </fieldset>
            <label>Only these images <span className="muted small">(ids or ranges, e.g. 1-20, 31; empty = all)</span>
              <input name="image-ids" value={ids} onChange={(e) => setIds(e.target.value)} placeholder="all images" aria-invalid={!!fieldError.image_ids} />
              {fieldError.image_ids && <span className="error small field-error">{fieldError.image_ids}</span>}
            </label>
            <label className="check"><input type="checkbox" name="include-images" checked={includeImages} onChange={(e) => setIncludeImages(e.target.checked)} /> Include the image files in the zip</label>
            <label className="check"><input type="checkbox" checked={includeEmpty} onChange={(e) => setIncludeEmpty(e.target.checked)} /> Also list images with no exported object</label>
            <button className="primary" disabled={busy}>{busy ? "Starting…" : "Start export"}</button>
          </form>
        ) : (
          <section className="card"><h2>New export</h2><p className="muted">Only project admins start exports. You can download the finished ones.</p></section>
        )}
        <section className="card" data-testid="export-list">
          <h2>Past exports</h2>
          {jobs === null ? <p className="muted">Loading…</p> : jobs.length === 0 ? <p className="muted">No exports yet.</p> : (
            <div className="table-scroll">{/* a narrow window scrolls the table in its card, Download stays reachable */}
            <table className="table compact">
              <thead><tr><th>#</th><th>Format</th><th>Objects</th><th>Status</th><th>Size</th><th>By, when</th><th></th></tr></thead>
              <tbody>
                {jobs.map((j) => <ExportRow key={j.id} job={j} onDelete={ctx.isAdmin ? remove : undefined} />)}
              </tbody>
            </table>
            </div>
          )}
        </section>
      </div>
    </main>
  );
}

function ExportRow({ job, onDelete }: { job: ExportJob & { expired?: boolean }; onDelete?: (job: ExportJob) => void }) {
  const live = isLive(job);
  const { done, total } = job.progress ?? { done: 0, total: 0 };
  const o = job.options ?? {};
  const scope = [
    o.include_pending ? "approved + pending" : "approved",
    o.class_ids?.length ? `${o.class_ids.length} class${o.class_ids.length > 1 ? "es" : ""}` : "",
    o.status?.length ? o.status.join("/") : "",
    o.image_ids?.length ? `${o.image_ids.length} chosen images` : "",
    o.include_images ? "with images" : "",
  ].filter(Boolean).join(", ");
  return (
    <tr data-testid={`export-${job.id}`}>
      <td>{job.id}</td>
      <td>{formatLabel(job)}<div className="muted small">{scope}</div></td>
      <td>{job.result?.images !== undefined ? `${job.result.annotations} on ${count(job.result.images, "image")}` : "—"}</td>
      <td>
        <span className={`badge badge-${job.status}`}>{job.status}</span>
        {live && <progress max={Math.max(total, 1)} value={done} aria-label={`export ${job.id} progress`} />}
        {live && total > 0 && <span className="muted small"> {done}/{total}</span>}
        {job.error && <div className="error small">{job.error}</div>}
      </td>
      <td>{job.status === "done" ? (job.expired
        ? <span className="muted small" title="Only a project's newest finished exports keep their files." data-testid="export-expired">file removed</span>
        : formatBytes(job.result_size)) : "—"}</td>
      <td className="small">{job.created_by ?? "—"}<div className="muted">{formatWhen(job.created_at)}</div></td>
      <td>
        {job.download_url && <a className="button small" href={job.download_url} download data-testid="export-download">Download</a>}
        {onDelete && <button type="button" className="small danger" onClick={() => onDelete(job)} data-testid="export-delete">{live ? "Cancel" : "Delete"}</button>}
      </td>
    </tr>
  );
}
