import { useEffect, useState } from "react";
import { get, P, qs, type ImageRow, type Page } from "../api/client";
import { Link, navigate } from "../router";
import { CelebrateIcon } from "../review/icons";
import { clearPass, clearSkipped, nextImageId, passedCount, queueFilters, setQueueFilters, skippedCount } from "../review/queue";
import type { ProjectCtx } from "./ProjectLayout";
import { Thumb } from "./Images";

/** Finds the next image to review (most ambiguous first when the server supports it) and opens it.
 * With `?filters` (the workspace's Queue link) it stays put: the reviewer picks the status and
 * class first, then opens the next image (Enter). */
export function ReviewQueue({ ctx }: { ctx: ProjectCtx }) {
  const pid = ctx.project.id;
  const picking = typeof location !== "undefined" && new URLSearchParams(location.search).has("filters");
  // A link may carry the filters (?status=done&label_class=3): they were ignored for the last ones used.
  const [filters, setFilters] = useState(() => {
    const q = new URLSearchParams(typeof location !== "undefined" ? location.search : "");
    const stored = queueFilters(pid);
    return { status: q.get("status") ?? stored.status, label_class: q.get("label_class") ?? stored.label_class };
  });
  const [state, setState] = useState<"searching" | "empty" | "picking" | string>(picking ? "picking" : "searching");
  const [go, setGo] = useState(!picking);
  const [round, setRound] = useState(0); // a new search after the set-aside images are offered again
  useEffect(() => {
    setQueueFilters(pid, filters);
    if (!go) return;
    setState("searching");
    nextImageId(pid, filters, null, new Set(), { claim: true })
      .then((id) => (id ? navigate(`/p/${pid}/review/${id}`, true) : setState("empty")))
      .catch((e) => setState(e.message));
  }, [pid, filters.status, filters.label_class, go, round]);
  // With nothing left, show what was reviewed last, so a reviewer can go back to it.
  const [recent, setRecent] = useState<ImageRow[]>([]);
  // "Nothing left" also says what is not in the queue: images set aside this session, and images
  // no model has looked at yet (it said "Nothing left" with 18 new images in the project).
  const [newCount, setNewCount] = useState(0);
  const setAside = state === "empty" ? skippedCount(pid) : 0;
  const wentThrough = state === "empty" ? passedCount(pid, filters) : 0;
  useEffect(() => {
    if (state !== "empty") return;
    get<Page<ImageRow>>(`${P(pid)}/images/${qs({ status: "new", page_size: 1 })}`).then((d) => setNewCount(d.count)).catch(() => setNewCount(0));
  }, [pid, state]);
  useEffect(() => {
    if (state !== "empty") return;
    get<Page<ImageRow>>(`${P(pid)}/images/${qs({ status: "done", label_class: filters.label_class, ordering: "-id", page_size: 24 })}`)
      .then((d) => setRecent(d.results))
      .catch(() => setRecent([]));
  }, [pid, state, filters.label_class]);
  return (
    <main className="page">
      <div className="toolbar">
        <h1>Review queue</h1>
        <select aria-label="queue status" value={filters.status} onChange={(e) => setFilters({ ...filters, status: e.target.value })}>
          <option value="">Pre-labeled and in review</option>
          <option value="prelabeled">Pre-labeled</option>
          <option value="in_review">In review</option>
          <option value="new">New</option>
          <option value="done">Done</option>
        </select>
        <select aria-label="queue class" value={filters.label_class} onChange={(e) => setFilters({ ...filters, label_class: e.target.value })}>
          <option value="">All classes</option>
          {ctx.classes.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
        </select>
      </div>
      {state === "picking" ? (
        <div className="card" data-testid="queue-pick">
          <p>Choose which images to review, then open the next one (most uncertain first).</p>
          <button className="primary" autoFocus onClick={() => setGo(true)} data-testid="queue-start">Review next image <kbd>Enter</kbd></button>
        </div>
      ) : state === "searching" ? <p className="muted">Finding the next image…</p> : state === "empty" ? (
        <div className="card" data-testid="queue-empty">
          <h2>Nothing left to review <CelebrateIcon className="icon celebrate" /></h2>
          <p>No unclaimed image matches these filters. <Link to={`/p/${pid}`}>Back to the dashboard</Link></p>
          {setAside > 0 && (
            <p data-testid="queue-set-aside">
              {setAside} image{setAside > 1 ? "s" : ""} you skipped (or left with objects that have no class) this session {setAside > 1 ? "are" : "is"} not offered again.{" "}
              <button onClick={() => { clearSkipped(pid); setRound((r) => r + 1); }} data-testid="queue-show-set-aside">Review {setAside > 1 ? "them" : "it"} again</button>
            </p>
          )}
          {wentThrough > 0 && (
            <p data-testid="queue-pass-done">
              You went through {wentThrough} image{wentThrough > 1 ? "s" : ""} of this filter in this session; each is offered once.{" "}
              <button onClick={() => { clearPass(pid, filters); setRound((r) => r + 1); }} data-testid="queue-pass-again">Go through them again</button>
            </p>
          )}
          {newCount > 0 && filters.status === "" && (
            <p data-testid="queue-new">
              {newCount} image{newCount > 1 ? "s have" : " has"} not been pre-annotated yet: start pre-annotation on the <Link to={`/p/${pid}`}>dashboard</Link>.
            </p>
          )}
          {recent.length > 0 && (
            <>
              <h3>Recently reviewed</h3>
              <div className="thumbs" data-testid="queue-recent">
                {recent.map((im) => (
                  <Link key={im.id} to={`/p/${pid}/review/${im.id}`} title={im.original_name}>
                    <Thumb src={im.thumbnail_url} size={84} />
                  </Link>
                ))}
              </div>
            </>
          )}
        </div>
      ) : <p className="error">{state}</p>}
    </main>
  );
}
