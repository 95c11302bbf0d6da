import { useEffect, useState } from "react";
import { ApiError, get, P, post, qs, type Page } from "../api/client";
import { count } from "../plural";
import type { Job } from "../api/extra";
import { subscribe } from "../api/live";
import { notify } from "../notify";
import { Link } from "../router";
import { useInFlight } from "./inFlight";
import type { ProjectCtx } from "./ProjectLayout";

const STATUSES = ["new", "prelabeled", "in_review", "done"] as const;
const LABEL: Record<string, string> = { new: "New", prelabeled: "Pre-labeled", in_review: "In review", done: "Done" };

export function useStatusCounts(projectId: number, tick = 0) {
  const [counts, setCounts] = useState<Record<string, number> | null>(null);
  useEffect(() => {
    Promise.all(STATUSES.map((s) => get<Page<unknown>>(`${P(projectId)}/images/${qs({ status: s, page_size: 1 })}`).then((p) => [s, p.count] as const)))
      .then((pairs) => setCounts(Object.fromEntries(pairs)))
      .catch((e) => notify(`Couldn't load counts: ${e.message}`, "error"));
  }, [projectId, tick]);
  return counts;
}

export function Dashboard({ ctx }: { ctx: ProjectCtx }) {
  const pid = ctx.project.id;
  const canManage = ctx.isAdmin;
  const [tick, setTick] = useState(0);
  const counts = useStatusCounts(pid, tick);
  const [jobs, setJobs] = useState<Job[] | null | "unavailable">(null);
  const [prompts, setPrompts] = useState(Array.isArray(ctx.project.prompts) ? (ctx.project.prompts as string[]).join(" . ") : "");
  const [boxT, setBoxT] = useState(ctx.project.box_threshold ?? 0.35);
  const [textT, setTextT] = useState(ctx.project.text_threshold ?? 0.25);
  const [scope, setScope] = useState<"new" | "all">("new");
  const [starting, runStart] = useInFlight();
  const [, runAct] = useInFlight();

  const loadJobs = async () => {
    try {
      const data = await get<Page<Job> | Job[]>(`${P(pid)}/jobs/`);
      setJobs(Array.isArray(data) ? data : data.results);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405)) setJobs("unavailable");
      else notify(`Couldn't load jobs: ${(e as Error).message}`, "error");
    }
  };
  useEffect(() => {
    loadJobs();
    return subscribe(pid, (ev) => {
      if (ev.type === "job.progress") {
        const job = (ev as { job: Job }).job;
        setJobs((old) => (Array.isArray(old) ? (old.some((j) => j.id === job.id) ? old.map((j) => (j.id === job.id ? job : j)) : [job, ...old]) : old));
        if (job.status !== "running" && job.status !== "queued") setTick((t) => t + 1);
      } else if (ev.type === "image.status") setTick((t) => t + 1);
      else if (ev.type === "resync") { loadJobs(); setTick((t) => t + 1); } // missed events: reload
    });
  }, [pid]);
  // Poll while a job runs, in case the websocket is down.
  const running = Array.isArray(jobs) && jobs.some((j) => j.status === "queued" || j.status === "running");
  useEffect(() => {
    if (!running) return;
    const t = setInterval(() => { loadJobs(); setTick((x) => x + 1); }, 3000);
    return () => clearInterval(t);
  }, [running]);

  // One job per click: a double-click started two identical jobs over the same images.
  const start = (e: React.FormEvent) => {
    e.preventDefault();
    void runStart(async () => {
      try {
        const list = prompts.split(/[.\n,]/).map((s) => s.trim()).filter(Boolean);
        const job = await post<Job>(`${P(pid)}/jobs/`, { images: scope, ...(list.length ? { prompts: list } : {}), box_threshold: boxT, text_threshold: textT });
        setJobs((old) => (Array.isArray(old) ? [job, ...old.filter((j) => j.id !== job.id)] : [job]));
        // Images someone has open get their untouched proposals replaced under them: say so (round 15).
        const held = (job as Job & { held_by_others?: { count: number; people: string[] } }).held_by_others;
        const open = held?.count ? ` ${count(held.count, "image")} ${held.count > 1 ? "are" : "is"} open by ${held.people.join(", ")} now: `
          + "their untouched proposals will be replaced under them (they are told; their own edits stay)." : "";
        notify(`Pre-annotation job #${jobNumber(job)} started for ${count(job.total, "image")}.${open}`, open ? "warn" : "info");
      } catch (err: any) {
        notify(`Couldn't start pre-annotation: ${err.message}`, "error");
      }
    });
  };
  const act = (job: Job, what: "cancel" | "retry-failed") => runAct(async () => {
    if (what === "cancel" && !confirm(`Cancel job #${jobNumber(job)}? Images not processed yet are skipped; finished ones keep their results.`)) return;
    try {
      const j = await post<Job>(`${P(pid)}/jobs/${job.id}/${what}/`);
      setJobs((old) => (Array.isArray(old) ? (old.some((x) => x.id === j.id) ? old.map((x) => (x.id === j.id ? j : x)) : [j, ...old]) : old));
    } catch (err: any) {
      notify(err.message, "error");
    }
  });

  return (
    <main className="page">
      <section className="stats" data-testid="status-counts">
        {STATUSES.map((s) => (
          <Link key={s} to={`/p/${pid}/images?status=${s}`} className={`stat stat-${s}`}>
            <b>{counts ? counts[s] : "…"}</b>
            <span>{LABEL[s]}</span>
          </Link>
        ))}
        <Link to={`/p/${pid}/review`} className="stat stat-go"><b>▶</b><span>Start reviewing</span></Link>
      </section>
      {jobs === "unavailable" ? (
        <p className="muted small">Pre-annotation jobs are not available on this server yet.</p>
      ) : (
        <div className="grid2">
          {!canManage && <p className="card muted" data-testid="prelabel-admins-only">Project admins start, cancel and retry pre-annotation jobs.</p>}
          {canManage && (
            <form className="card" onSubmit={start} data-testid="prelabel-form">
              <h2>Pre-annotate</h2>
              <label>Prompts (separated by “.”)<input name="job-prompts" value={prompts} onChange={(e) => setPrompts(e.target.value)} /></label>
              <label>Box threshold {boxT.toFixed(2)}<input type="range" min={0} max={1} step={0.01} value={boxT} onChange={(e) => setBoxT(+e.target.value)} /></label>
              <label>Text threshold {textT.toFixed(2)}<input type="range" min={0} max={1} step={0.01} value={textT} onChange={(e) => setTextT(+e.target.value)} /></label>
              <label>Images
                <select value={scope} onChange={(e) => setScope(e.target.value as "new" | "all")}>
                  <option value="new">New images only</option>
                  <option value="all">All images (re-run)</option>
                </select>
              </label>
              <button className="primary" disabled={jobs === null || starting}>{starting ? "Starting…" : "Run pre-annotation"}</button>
            </form>
          )}
          <section className="card">
            <h2>Jobs</h2>
            {jobs === null ? <p className="muted">Loading…</p> : jobs.length === 0 ? <p className="muted">No jobs yet.</p> : (
              <ul className="jobs">
                {jobs.slice(0, 20).map((j) => <JobRow key={j.id} job={j} onAct={canManage ? act : null} />)}
              </ul>
            )}
          </section>
        </div>
      )}
    </main>
  );
}

/** The number people use: 1, 2, 3 within the project (the id is global). */
export const jobNumber = (job: Job) => (job as Job & { number?: number }).number ?? job.id;

/** `onAct` null: the viewer may not cancel or retry (admins only; the buttons answered 403). */
function JobRow({ job, onAct }: { job: Job; onAct: ((j: Job, what: "cancel" | "retry-failed") => void) | null }) {
  const pct = job.total ? Math.round((100 * job.processed) / job.total) : job.status === "done" ? 100 : 0;
  const live = job.status === "queued" || job.status === "running";
  return (
    <li className={`job job-${job.status}`} data-testid={`job-${job.id}`}>
      <div className="job-head">
        <b title={`job id ${job.id}`}>#{jobNumber(job)}</b> <span className={`badge badge-${job.status}`}>{job.status}</span>
        <span className="muted small">{job.processed}/{job.total}{job.failed ? `, ${job.failed} failed` : ""}</span>
        {typeof job.objects === "number" && (
          <span className="muted small" data-testid={`job-objects-${job.id}`}>
            · {job.objects === 0
              ? `no objects proposed${job.status === "done" ? " (lower the thresholds or change the prompts to find more)" : ""}`
              : `${job.objects} object${job.objects === 1 ? "" : "s"} proposed`}
          </span>
        )}
        <span className="spacer" />
        {onAct && live && <button className="small" onClick={() => onAct(job, "cancel")}>Cancel</button>}
        {onAct && !live && job.failed > 0 && <button className="small" onClick={() => onAct(job, "retry-failed")}>Retry failed</button>}
      </div>
      <progress max={100} value={pct} aria-label={`job ${jobNumber(job)} progress`} />
      {job.stage_ms && Object.keys(job.stage_ms).length > 0 && (
        <div className="muted small">{stageTimings(job.stage_ms)}</div>
      )}
      {job.error && <p className="error small">{job.error}</p>}
      {job.errors?.length > 0 && (
        <details><summary className="small">{job.errors.length} error{job.errors.length === 1 ? "" : "s"}</summary>
          <ul className="small">{job.errors.slice(0, 50).map((e, i) => <li key={i}><b>{e.name}</b>: {e.error}</li>)}</ul>
        </details>
      )}
    </li>
  );
}

/** The pipeline's stages in the order they run; others (a newer engine's) follow by name. */
export const STAGE_ORDER = ["detect", "segment", "embed", "match"];
/** "detect 120 ms · segment 80 ms · …" in pipeline order: the server's dict reordered on every
 * refresh (its keys merge per image), and so did the card. */
export function stageTimings(stageMs: Record<string, number | null | undefined>): string {
  const rank = (k: string) => (STAGE_ORDER.includes(k) ? STAGE_ORDER.indexOf(k) : STAGE_ORDER.length);
  return Object.entries(stageMs)
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([k, v]) => `${k} ${Math.round(v ?? 0)} ms`)
    .join(" · ");
}
