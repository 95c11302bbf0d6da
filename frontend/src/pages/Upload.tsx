import { useRef, useState } from "react";
import { P, uploadWithProgress, errorText, type UploadReport } from "../api/client";
import { Link } from "../router";
import type { ProjectCtx } from "./ProjectLayout";

interface Item {
  id: number;
  label: string;
  progress: number;
  state: "uploading" | "done" | "failed";
  report?: UploadReport;
  error?: string;
}
let seq = 0;

/** An upload that added nothing, skipped nothing and refused nothing: an empty archive. */
const isEmpty = (r?: UploadReport) => !!r && r.created.length === 0 && r.duplicates.length === 0 && r.errors.length === 0;

export function UploadPage({ ctx }: { ctx: ProjectCtx }) {
  const [items, setItems] = useState<Item[]>([]);
  const input = useRef<HTMLInputElement>(null);
  const update = (id: number, patch: Partial<Item>) => setItems((list) => list.map((i) => (i.id === id ? { ...i, ...patch } : i)));

  const start = (files: File[]) => {
    if (!files.length) return;
    // Zips go one per request (each gets its own bar); loose images go together in one request.
    const zips = files.filter((f) => /\.zip$/i.test(f.name));
    const loose = files.filter((f) => !/\.zip$/i.test(f.name));
    const groups = [...zips.map((z) => [z]), ...(loose.length ? [loose] : [])];
    for (const group of groups) {
      const id = ++seq;
      const label = group.length === 1 ? group[0].name : `${group.length} images`;
      setItems((list) => [{ id, label, progress: 0, state: "uploading" }, ...list]);
      const form = new FormData();
      group.forEach((f) => form.append("files", f, f.name));
      uploadWithProgress<UploadReport>(`${P(ctx.project.id)}/images/`, form, (p) => update(id, { progress: p }))
        .promise.then(({ status, body }) => {
          if (status >= 200 && status < 300) update(id, { state: "done", report: body });
          else if (body && typeof body === "object" && "errors" in body) update(id, { state: "failed", report: body });
          else update(id, { state: "failed", error: errorText(body, status) });
        })
        .catch((e) => update(id, { state: "failed", error: e.message }));
    }
  };

  return (
    <main className="page">
      <h1>Upload images</h1>
      {!ctx.canAnnotate ? <p className="muted">Viewers can't upload.</p> : (
        <div
          className="dropzone"
          onDragOver={(e) => e.preventDefault()}
          onDrop={(e) => { e.preventDefault(); start([...e.dataTransfer.files]); }}
          onClick={() => input.current?.click()}
        >
          <p>Drop images or zip archives here, or click to choose files.</p>
          <input ref={input} type="file" name="files" multiple accept="image/*,.zip" hidden
            onChange={(e) => { start([...(e.target.files ?? [])]); e.target.value = ""; }} />
        </div>
      )}
      <ul className="uploads">
        {items.map((it) => (
          <li key={it.id} className={`upload upload-${it.state}`} data-testid="upload-item">
            <div className="job-head">
              <b className="ellipsis" title={it.label}>{it.label}</b>
              <span className="spacer" />
              <span className="small nowrap">{it.state === "uploading" ? `${Math.round(it.progress * 100)}%` : it.state === "done" ? (isEmpty(it.report) ? "nothing added" : "uploaded") : "failed"}</span>
            </div>
            <progress max={1} value={it.progress} />
            {it.error && <p className="error">{it.error}</p>}
            {it.report && isEmpty(it.report) && (
              <p className="warn" role="alert" data-testid="upload-empty">
                {/\.zip$/i.test(it.label) ? "This archive holds no images, so nothing was added. Check that you zipped the right folder." : "No images were found in what you chose, so nothing was added."}
              </p>
            )}
            {it.report && !isEmpty(it.report) && (
              <div className="small">
                <span data-testid="upload-created">{it.report.created.length} added</span>
                {it.report.duplicates.length > 0 && <span>, {it.report.duplicates.length} duplicates skipped</span>}
                {it.report.errors.length > 0 && (
                  <ul className="errors" data-testid="upload-errors">
                    {it.report.errors.map((e: any, i) => <li key={i}><b className="ellipsis-inline" title={String(e.name ?? "?")}>{String(e.name ?? "?")}</b>: {String(e.error ?? JSON.stringify(e))}</li>)}
                  </ul>
                )}
              </div>
            )}
          </li>
        ))}
      </ul>
      {items.some((i) => i.state === "done") && <Link to={`/p/${ctx.project.id}`}>Back to the dashboard to pre-annotate →</Link>}
    </main>
  );
}
