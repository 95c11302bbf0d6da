import { useEffect, useState } from "react";
import { get, P, qs, type ImageRow, type Page } from "../api/client";
import { subscribe } from "../api/live";
import { notify } from "../notify";
import { Link, navigate } from "../router";
import type { ProjectCtx } from "./ProjectLayout";

export function ImagesPage({ ctx }: { ctx: ProjectCtx }) {
  const pid = ctx.project.id;
  const params = new URLSearchParams(location.search);
  const [status, setStatus] = useState(params.get("status") ?? "");
  const [cls, setCls] = useState(params.get("label_class") ?? "");
  const [page, setPage] = useState(1);
  const [data, setData] = useState<Page<ImageRow> | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    get<Page<ImageRow>>(`${P(pid)}/images/${qs({ status, label_class: cls, page, page_size: 100 })}`)
      .then(setData)
      .catch((e) => notify(`Couldn't load images: ${e.message}`, "error"));
  }, [pid, status, cls, page, tick]);
  useEffect(() => subscribe(pid, (ev) => {
    if (ev.type.startsWith("image.") || ev.type === "resync") setTick((t) => t + 1);
  }), [pid]);
  useEffect(() => {
    history.replaceState(null, "", `/p/${pid}/images${qs({ status, label_class: cls })}`);
  }, [status, cls, pid]);
  return (
    <main className="page">
      <div className="toolbar">
        <h1>Images</h1>
        <select aria-label="status filter" value={status} onChange={(e) => { setStatus(e.target.value); setPage(1); }}>
          <option value="">All statuses</option>
          <option value="new">New</option>
          <option value="prelabeled">Pre-labeled</option>
          <option value="in_review">In review</option>
          <option value="done">Done</option>
        </select>
        <select aria-label="class filter" value={cls} onChange={(e) => { setCls(e.target.value); setPage(1); }}>
          <option value="">All classes</option>
          {ctx.classes.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
        </select>
        <span className="muted small">{data ? `${data.count} images` : ""}</span>
      </div>
      <table className="table">
        <thead><tr><th>#</th><th>Name</th><th>Size</th><th>Status</th><th>Objects</th><th>Pending</th><th></th></tr></thead>
        <tbody>
          {data?.results.map((im) => (
            <tr key={im.id} className="clickable" onClick={() => navigate(`/p/${pid}/review/${im.id}`)}>
              <td>{im.id}</td>
              <td>{im.original_name}</td>
              <td>{im.width}×{im.height}</td>
              <td><span className={`badge badge-${im.status}`}>{im.status.replace("_", " ")}</span></td>
              <td>{im.annotation_count}</td>
              <td>{im.pending_count}</td>
              <td>{im.claimed_by && im.claimed_by !== ctx.me.username ? <span className="badge badge-locked" title="Open by another reviewer">🔒 {im.claimed_by}</span> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data && (data.next || data.previous) && (
        <div className="toolbar">
          <button disabled={!data.previous} onClick={() => setPage(page - 1)}>← Previous</button>
          <span className="small">page {page}</span>
          <button disabled={!data.next} onClick={() => setPage(page + 1)}>Next →</button>
        </div>
      )}
      {data && data.count === 0 && <p className="muted">No images here. <Link to={`/p/${pid}/upload`}>Upload some</Link>.</p>}
    </main>
  );
}
