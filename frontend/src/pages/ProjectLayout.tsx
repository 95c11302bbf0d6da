import { useCallback, useEffect, useState } from "react";
import { ApiError, get, P, type LabelClass, type Me, type Page, type Project } from "../api/client";
import { LOST_ACCESS_MESSAGE, onLostAccess } from "../api/access";
import { notify } from "../notify";
import { Link } from "../router";
import { Dashboard } from "./Dashboard";
import { UploadPage } from "./Upload";
import { ImagesPage } from "./Images";
import { ClassesPage } from "./Classes";
import { ReviewQueue } from "./ReviewQueue";
import { ExportPage } from "./Export";
import { ImportPage } from "./Import";
import { MembersPage } from "./Members";
import { SettingsPage } from "./Settings";
import { NotFoundPage } from "./NotFound";
import { ModelsPage } from "./Models";
import { Workspace } from "../review/Workspace";
import { useRunningUploads } from "./uploadStore";

export interface ProjectCtx {
  project: Project;
  setProject: (p: Project) => void;
  classes: LabelClass[];
  reloadClasses: () => Promise<void>;
  me: Me;
  canReview: boolean;
  canAnnotate: boolean;
  isAdmin: boolean;
}

type Section = "dashboard" | "upload" | "images" | "review" | "classes" | "export" | "import" | "members" | "settings" | "models";
const SECTIONS: Section[] = ["upload", "images", "review", "classes", "export", "import", "members", "settings", "models"];

/** The tabs a role sees: viewers get no Upload or Import (they could only be told "not allowed"),
 * only admins get Members and Settings. */
export function tabsFor(role: string): { to: string; label: string; section: Section }[] {
  const canAnnotate = role !== "viewer";
  const isAdmin = role === "admin";
  const all: [string, string, Section, boolean][] = [
    ["", "Dashboard", "dashboard", true],
    ["/upload", "Upload", "upload", canAnnotate],
    ["/images", "Images", "images", true],
    ["/review", "Review", "review", true],
    ["/classes", "Classes & gallery", "classes", true],
    ["/export", "Export", "export", true],
    ["/import", "Import", "import", canAnnotate],
    ["/models", "Accuracy & models", "models", true],
    ["/members", "Members", "members", isAdmin],
    ["/settings", "Settings", "settings", isAdmin],
  ];
  return all.filter(([, , , shown]) => shown).map(([to, label, section]) => ({ to, label, section }));
}

/** Whether a failed class list load is worth a toast: not when the project itself is out of reach
 * (not a member, deleted), which the page already says in words. */
export const reportClassesError = (e: unknown) => !(e instanceof ApiError && (e.status === 404 || e.status === 403));

/** The section a sub-path names, the image of /review/<id>, or null for an unknown path. */
export function parseSub(sub: string): { section: Section; imageId?: number } | null {
  const clean = sub.replace(/\/+$/, "");
  if (clean === "") return { section: "dashboard" };
  const review = /^\/review\/(\d+)$/.exec(clean);
  if (review) return { section: "review", imageId: Number(review[1]) };
  const m = /^\/([a-z]+)$/.exec(clean);
  return m && (SECTIONS as string[]).includes(m[1]) ? { section: m[1] as Section } : null;
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
      if (reportClassesError(e)) notify(`Couldn't load classes: ${e.message}`, "error");
    }
  }, [projectId]);
  useEffect(() => {
    setProject(null);
    setError("");
    get<Project>(`${P(projectId)}/`).then(setProject).catch((e) => setError(e.status === 404 ? "This project doesn't exist or you are not a member." : e.message));
    reloadClasses();
  }, [projectId, reloadClasses]);
  // Removed from the project (or it was deleted) while a page of it is open: say so, offer the list.
  useEffect(() => onLostAccess((p) => { if (p === projectId) setError(LOST_ACCESS_MESSAGE); }), [projectId]);
  const uploading = useRunningUploads(projectId);
  if (error) {
    return (
      <main className="page" data-testid="project-error">
        <p className="error" role="alert">{error}</p>
        <Link to="/">All projects</Link>
      </main>
    );
  }
  if (!project) return <div className="center muted">Loading project…</div>;
  const role = project.my_role ?? "viewer";
  const ctx: ProjectCtx = {
    project, setProject, classes, reloadClasses, me,
    isAdmin: role === "admin",
    canReview: role === "admin" || role === "reviewer",
    canAnnotate: role !== "viewer",
  };
  const base = `/p/${project.id}`;
  const route = parseSub(sub);
  const section = route?.section;
  const tab = (to: string, label: string, s: Section) => (
    <Link key={s} to={`${base}${to}`} className={section === s ? "tab active" : "tab"}
      title={s === "upload" && uploading ? `${uploading} files still uploading` : undefined}>
      {label}{s === "upload" && uploading > 0 && <span className="badge badge-running" data-testid="uploads-running"> {uploading}</span>}
    </Link>
  );
  const forbidden = (what: string) => (
    <main className="page" data-testid="forbidden"><p className="muted">Your role ({role}) can't {what} in this project. Ask a project admin.</p></main>
  );
  let body: React.ReactNode;
  switch (section) {
    case "dashboard": body = <Dashboard ctx={ctx} />; break;
    case "upload": body = ctx.canAnnotate ? <UploadPage ctx={ctx} /> : forbidden("upload images"); break;
    case "images": body = <ImagesPage ctx={ctx} />; break;
    case "review": body = route?.imageId ? <Workspace key={project.id} ctx={ctx} imageId={route.imageId} /> : <ReviewQueue ctx={ctx} />; break;
    case "classes": body = <ClassesPage ctx={ctx} />; break;
    case "export": body = <ExportPage ctx={ctx} />; break;
    case "import": body = ctx.canAnnotate ? <ImportPage ctx={ctx} /> : forbidden("import annotations"); break;
    case "models": body = <ModelsPage ctx={ctx} />; break;
    case "members": body = ctx.isAdmin ? <MembersPage ctx={ctx} /> : forbidden("manage members"); break;
    case "settings": body = ctx.isAdmin ? <SettingsPage ctx={ctx} /> : forbidden("change settings"); break;
    default: body = <NotFoundPage projectId={project.id} />;
  }
  return (
    <>
      <nav className="tabs">
        <span className="project-name" title={project.name}>{project.name}</span>
        {tabsFor(role).map((t) => tab(t.to, t.label, t.section))}
      </nav>
      {body}
    </>
  );
}
