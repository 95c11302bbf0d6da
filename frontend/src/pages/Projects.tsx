import { useEffect, useState } from "react";
import { get, post, type Page, type Project } from "../api/client";
import { notify } from "../notify";
import { Link, navigate } from "../router";
import { useInFlight } from "./inFlight";

/** The API's limit (Project.name max_length): the inputs stop there, and a longer name is said in
 * words (DRF's "name: Ensure this field has no more than 200 characters." showed raw). */
export const PROJECT_NAME_MAX = 200;
export const projectNameTooLong = (name: string) =>
  name.trim().length > PROJECT_NAME_MAX ? `A project name has at most ${PROJECT_NAME_MAX} characters: shorten it.` : "";

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
    const tooLong = projectNameTooLong(name);
    if (tooLong) return void notify(tooLong, "error");
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
              {/* clamped to 3 lines (a 5,000-character description made every card 2,000 px tall) */}
              {p.description
                ? <div className="muted small card-desc" title={p.description}>{p.description}</div>
                : <div className="muted small">{Array.isArray(p.prompts) ? (p.prompts as string[]).join(", ") : ""}</div>}
              <div className="small">your role: {p.my_role ?? "—"}</div>
            </li>
          ))}
        </ul>
      )}
      <form className="card form-row" onSubmit={create}>
        <h2>New project</h2>
        <label>Name <input name="project-name" value={name} maxLength={PROJECT_NAME_MAX} onChange={(e) => setName(e.target.value)} required /></label>
        <label>Prompts (separated by “.”) <input name="prompts" value={prompts} onChange={(e) => setPrompts(e.target.value)} /></label>
        <button className="primary" disabled={!name.trim() || busy}>{busy ? "Creating…" : "Create project"}</button>
      </form>
    </main>
  );
}
