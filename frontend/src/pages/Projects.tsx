import { useEffect, useState } from "react";
import { get, post, type Page, type Project } from "../api/client";
import { notify } from "../notify";
import { Link, navigate } from "../router";
import { useInFlight } from "./inFlight";

export function ProjectsPage() {
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [name, setName] = useState("");
  const [prompts, setPrompts] = useState("hammer . screwdriver . wrench . pliers");
  const [busy, run] = useInFlight();
  const [loadError, setLoadError] = useState(""); // it said "Loading…" for ever after a failure
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    setLoadError("");
    get<Page<Project>>("/api/projects/?page_size=500")
      .then((p) => setProjects(p.results))
      .catch((e) => setLoadError(`Couldn't load projects: ${e.message}`));
  }, [attempt]);
  const create = (e: React.FormEvent) => {
    e.preventDefault();
    void run(async () => {
      try {
        const list = prompts.split(/[.\n,]/).map((s) => s.trim()).filter(Boolean);
        const p = await post<Project>("/api/projects/", { name, ...(list.length ? { prompts: list } : {}) });
        navigate(`/p/${p.id}`);
      } catch (err: any) {
        notify(`Couldn't create the project: ${err.message}`, "error");
      }
    });
  };
  return (
    <main className="page">
      <h1>Projects</h1>
      {projects === null && loadError ? (
        <p className="error" role="alert" data-testid="projects-error">
          {loadError} <button type="button" onClick={() => setAttempt((n) => n + 1)}>Try again</button>
        </p>
      ) : projects === null ? (
        <p className="muted">Loading…</p>
      ) : projects.length === 0 ? (
        <p className="muted">No projects yet. Create one below.</p>
      ) : (
        <ul className="cards">
          {projects.map((p) => (
            <li key={p.id} className="card">
              <Link to={`/p/${p.id}`} className="card-title" title={p.name}><bdi>{p.name}</bdi></Link>
              <div className="muted small">{p.description || (Array.isArray(p.prompts) ? (p.prompts as string[]).join(", ") : "")}</div>
              <div className="small">your role: {p.my_role ?? "—"}</div>
            </li>
          ))}
        </ul>
      )}
      <form className="card form-row" onSubmit={create}>
        <h2>New project</h2>
        <label>Name <input name="project-name" value={name} onChange={(e) => setName(e.target.value)} required /></label>
        <label>Prompts (separated by “.”) <input name="prompts" value={prompts} onChange={(e) => setPrompts(e.target.value)} /></label>
        <button className="primary" disabled={!name.trim() || busy}>{busy ? "Creating…" : "Create project"}</button>
      </form>
    </main>
  );
}
