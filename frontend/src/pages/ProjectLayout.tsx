import { useCallback, useEffect, useState } from "react";
import { get, P, type LabelClass, type Me, type Page, type Project } from "../api/client";
import { notify } from "../notify";
import { Link } from "../router";
import { Dashboard } from "./Dashboard";
import { UploadPage } from "./Upload";
import { ImagesPage } from "./Images";
import { ClassesPage } from "./Classes";
import { ReviewQueue } from "./ReviewQueue";
import { Workspace } from "../review/Workspace";

export interface ProjectCtx {
  project: Project;
  classes: LabelClass[];
  reloadClasses: () => Promise<void>;
  me: Me;
  canReview: boolean;
  canAnnotate: boolean;
  isAdmin: boolean;
}

export function ProjectLayout({ projectId, sub, me }: { projectId: number; sub: string; me: Me }) {
  const [project, setProject] = useState<Project | null>(null);
  const [classes, setClasses] = useState<LabelClass[]>([]);
  const [error, setError] = useState("");
  const reloadClasses = useCallback(async () => {
    try {
      const page = await get<Page<LabelClass>>(`${P(projectId)}/classes/?page_size=500&ordering=name`);
      setClasses(page.results);
    } catch (e: any) {
      notify(`Couldn't load classes: ${e.message}`, "error");
    }
  }, [projectId]);
  useEffect(() => {
    setProject(null);
    get<Project>(`${P(projectId)}/`).then(setProject).catch((e) => setError(e.status === 404 ? "This project doesn't exist or you are not a member." : e.message));
    reloadClasses();
  }, [projectId, reloadClasses]);
  if (error) return <main className="page"><p className="error">{error}</p><Link to="/">All projects</Link></main>;
  if (!project) return <div className="center muted">Loading project…</div>;
  const role = project.my_role ?? "viewer";
  const ctx: ProjectCtx = {
    project, classes, reloadClasses, me,
    isAdmin: role === "admin",
    canReview: role === "admin" || role === "reviewer",
    canAnnotate: role !== "viewer",
  };
  const base = `/p/${project.id}`;
  const review = /^\/review\/(\d+)/.exec(sub);
  const tab = (to: string, label: string, match: (s: string) => boolean) => (
    <Link to={`${base}${to}`} className={match(sub) ? "tab active" : "tab"}>{label}</Link>
  );
  return (
    <>
      <nav className="tabs">
        <span className="project-name">{project.name}</span>
        {tab("", "Dashboard", (s) => s === "/" || s === "")}
        {tab("/upload", "Upload", (s) => s.startsWith("/upload"))}
        {tab("/images", "Images", (s) => s.startsWith("/images"))}
        {tab("/review", "Review", (s) => s.startsWith("/review"))}
        {tab("/classes", "Classes & gallery", (s) => s.startsWith("/classes"))}
      </nav>
      {review ? (
        <Workspace key={project.id} ctx={ctx} imageId={Number(review[1])} />
      ) : sub.startsWith("/review") ? (
        <ReviewQueue ctx={ctx} />
      ) : sub.startsWith("/upload") ? (
        <UploadPage ctx={ctx} />
      ) : sub.startsWith("/images") ? (
        <ImagesPage ctx={ctx} />
      ) : sub.startsWith("/classes") ? (
        <ClassesPage ctx={ctx} />
      ) : (
        <Dashboard ctx={ctx} />
      )}
    </>
  );
}
