import { useRef, useState } from "react";
import { ApiError, errorText, P, uploadWithProgress } from "../api/client";
import { count } from "../plural";
import { formatWhen, isLive, useExchangeJobs, type ImportJob } from "./exchange";
import { runExclusive } from "./inFlight";
import type { ProjectCtx } from "./ProjectLayout";

const IMPORT_FORMATS = [
  ["coco", "COCO (.json, or a zip holding one)"],
  ["labelme", "LabelMe (.json files in a zip)"],
  ["yolo", "YOLO (zip with data.yaml and labels/)"],
  ["native", "predictions.json"],
  ["labelstudio", "Label Studio (JSON export)"],
] as const;

export function ImportPage({ ctx }: { ctx: ProjectCtx }) {
  const pid = ctx.project.id;
  const { jobs, upsert } = useExchangeJobs<ImportJob>(pid, "import");
  const [format, setFormat] = useState<string>("coco");
  const [file, setFile] = useState<File | null>(null);
  const [asAccepted, setAsAccepted] = useState(false);
  const [createClasses, setCreateClasses] = useState(false);
  const [sending, setSending] = useState<number | null>(null);
  const [lastId, setLastId] = useState<number | null>(null);
  const [error, setError] = useState("");
  const input = useRef<HTMLInputElement>(null);
  const inFlight = useRef(false); // `sending` disables the button; this drops a click before it re-renders

  const start = (e: React.FormEvent) => {
    e.preventDefault();
    void runExclusive(inFlight, () => {}, send);
  };
  const send = async () => {
    if (!file) return;
    setError("");
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("format", format);
    form.append("as_accepted", String(asAccepted));
    form.append("create_missing_classes", String(createClasses));
    setSending(0);
    try {
      const { status, body } = await uploadWithProgress<ImportJob>(`${P(pid)}/imports/`, form, setSending).promise;
      if (status >= 200 && status < 300) {
        upsert(body);
        setLastId(body.id);
        setFile(null);
        if (input.current) input.current.value = "";
      } else setError(errorText(body, status));
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setSending(null);
    }
  };
  const last = jobs?.find((j) => j.id === lastId) ?? null;

  return (
    <main className="page">
      <h1>Import annotations</h1>
      <div className="grid2 grid-wide-right">
        <form className="card" onSubmit={start} data-testid="import-form">
          <h2>New import</h2>
          <p className="muted small">Images must already be in the project (matched by file name). An import is all or nothing: if any item has an error, nothing is applied.</p>
          <label>Format
            <select name="import-format" value={format} onChange={(e) => setFormat(e.target.value)}>
              {IMPORT_FORMATS.map(([v, l]) => <option key={v} value={v}>{l}</option>)}
            </select>
          </label>
          <label>File
            <input ref={input} type="file" name="import-file" accept=".json,.zip,application/json,application/zip" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          </label>
          <label className="check" title={ctx.canReview ? "" : "Only reviewers and admins may import objects as accepted."}>
            <input type="checkbox" name="as-accepted" checked={asAccepted} disabled={!ctx.canReview} onChange={(e) => setAsAccepted(e.target.checked)} />
            Import as accepted {!ctx.canReview && <span className="muted small">(reviewers and admins only)</span>}
          </label>
          <label className="check" title={ctx.isAdmin ? "" : "Only project admins may create classes."}>
            <input type="checkbox" name="create-classes" checked={createClasses} disabled={!ctx.isAdmin} onChange={(e) => setCreateClasses(e.target.checked)} />
            Create missing classes {!ctx.isAdmin && <span className="muted small">(admins only)</span>}
          </label>
          {sending !== null && <progress max={1} value={sending} aria-label="upload progress" />}
          {error && <p className="error" role="alert">{error}</p>}
          <button className="primary" disabled={!file || sending !== null}>{sending !== null ? "Uploading…" : "Import"}</button>
        </form>
        <section className="card">
          {last ? <ImportOutcome job={last} /> : <p className="muted">The result of your import shows here.</p>}
        </section>
      </div>
      <section className="card" data-testid="import-list">
        <h2>Past imports</h2>
        {jobs === null ? <p className="muted">Loading…</p> : jobs.length === 0 ? <p className="muted">No imports yet.</p> : (
          <div className="table-scroll">{/* a narrow window scrolls the table here, the file name keeps 160 px */}
          <table className="table compact fixed" style={{ minWidth: 160 + 100 + 90 + 240 + 190 }}>
            <colgroup><col /><col style={{ width: 100 }} /><col style={{ width: 90 }} /><col style={{ width: 240 }} /><col style={{ width: 190 }} /></colgroup>
            <thead><tr><th>File</th><th>Format</th><th>Status</th><th>Result</th><th>By, when</th></tr></thead>
            <tbody>
              {/* Named by file and time: the id counts across all projects ("Import #4" was a project's first). */}
              {jobs.map((j) => (
                <tr key={j.id} className="clickable" onClick={() => setLastId(j.id)} data-testid={`import-${j.id}`}>
                  <td className="cell-name"><span className="ellipsis" title={j.upload_name}>{j.upload_name}</span></td>
                  <td>{j.format}</td>
                  <td><span className={`badge badge-${j.status}`}>{j.status}</span></td>
                  <td className="small">{summary(j)}</td>
                  <td className="small">{j.created_by ?? "—"}<div className="muted">{formatWhen(j.created_at)}</div></td>
                </tr>
              ))}
            </tbody>
          </table>
          </div>
        )}
      </section>
    </main>
  );
}

function alreadyPresent(n: number): string {
  return n === 1
    ? "1 object was already on its image (same class, same mask) and was not added again."
    : `${n} objects were already on their images (same class, same mask) and were not added again.`;
}

function summary(j: ImportJob): string {
  if (isLive(j)) return j.progress?.stage ? `${j.progress.stage}…` : "waiting…";
  if (j.status === "failed") {
    const n = j.result?.error_count ?? j.errors?.length ?? 0;
    return `nothing applied (${n} error${n === 1 ? "" : "s"})`;
  }
  const skipped = j.result?.already_present ? `, ${j.result.already_present} already there` : "";
  return `${count(j.result?.annotations ?? 0, "object")} on ${count(j.result?.images ?? 0, "image")}${skipped}`;
}

/** An import as its project's people know it: the file and when it was sent (not its global id). */
function importName(job: ImportJob) {
  return <>Import of <span className="ellipsis-inline" title={job.upload_name}>{job.upload_name}</span> <span className="muted small nowrap">({formatWhen(job.created_at)})</span></>;
}

function ImportOutcome({ job }: { job: ImportJob }) {
  const p = job.progress ?? { done: 0, total: 0, stage: "" };
  if (isLive(job))
    return (
      <div data-testid="import-outcome" data-status={job.status}>
        <h2>{importName(job)}: {p.stage === "writing" ? "writing" : p.stage === "checking" ? "checking" : "queued"}…</h2>
        <progress max={p.total || 1} value={p.total ? p.done : 0} aria-label="import progress" />
        <p className="muted small">{p.stage === "checking" ? `${p.done} items checked` : p.total ? `${p.done}/${p.total}` : "Waiting for a worker…"}</p>
      </div>
    );
  if (job.status === "failed") {
    const count = job.result?.error_count ?? job.errors.length;
    return (
      <div data-testid="import-outcome" data-status="failed">
        <h2 className="error">{importName(job)} failed: nothing was applied</h2>
        <p>{count} item{count === 1 ? "" : "s"} had errors, so the whole file was rejected and the project is unchanged. Fix these and import the file again.</p>
        {/* What to do first (the server's "hint" item): advice, not one more error in red. */}
        {job.errors.filter((e) => e.item === "hint").map((e, i) => <p key={i} className="note-box" data-testid="import-hint">{e.error}</p>)}
        <ul className="errors import-errors" data-testid="import-errors">
          {job.errors.filter((e) => e.item !== "hint").map((e, i) => <li key={i}><b className="ellipsis-inline" title={e.item}>{e.item}</b>: {e.error}</li>)}
        </ul>
      </div>
    );
  }
  const r = job.result ?? {};
  return (
    <div data-testid="import-outcome" data-status="done">
      <h2>{importName(job)} done</h2>
      {(r.annotations ?? 0) === 0 && (r.already_present ?? 0) > 0
        ? <p>Nothing added: every object in the file was already there.</p>
        : <p>{count(r.annotations ?? 0, "object")} added to {count(r.images ?? 0, "image")}{job.options?.as_accepted ? ", as accepted" : ", pending review"}.</p>}
      {(r.already_present ?? 0) > 0 && <p className="small" data-testid="import-already-present">{alreadyPresent(r.already_present ?? 0)}</p>}
      {r.classes_created && r.classes_created.length > 0 && <p className="small">New classes: {r.classes_created.join(", ")}</p>}
    </div>
  );
}
