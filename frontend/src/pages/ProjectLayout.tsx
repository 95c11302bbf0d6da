import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, get, onRoleRefused, P, type LabelClass, type Me, type Page, type Project } from "../api/client";
import { checkProjectAccess, lostAccessMessage, onLostAccess, PROJECT_NOT_FOUND, type LostAccess } from "../api/access";
import { subscribe } from "../api/live";
import { currentNotes, dismiss, dismissWhere, notify, subscribeNotes } from "../notify";
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
import "./pages-round4.css";

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

/** A page's "…: Project not found." message says what the project notice says better. */
export const isProjectGoneNote = (text: string) => text.includes(PROJECT_NOT_FOUND);

/** While a project page is shown: watch for a page's "Project not found." message (any page's
 * load or click that met the project's 404) and hand it to `onGone` instead of leaving it under
 * a header that still names the project. */
function useProjectGoneNotes(active: boolean, onGone: () => void) {
  const onGoneRef = useRef(onGone);
  onGoneRef.current = onGone;
  useEffect(() => {
    if (!active) return;
    const sweep = () => {
      const gone = currentNotes().filter((n) => isProjectGoneNote(n.text));
      if (!gone.length) return;
      gone.forEach((n) => dismiss(n.id));
      onGoneRef.current();
    };
    sweep();
    return subscribeNotes(sweep);
  }, [active]);
}

export function ProjectLayout({ projectId, sub, me }: { projectId: number; sub: string; me: Me }) {
  const [project, setProject] = useState<Project | null>(null);
  const [classes, setClasses] = useState<LabelClass[]>([]);
  const [error, setError] = useState("");
  // Lost while open: deleted (by whom, pushed live) or out of reach (a 404, removed from it).
  const [lost, setLost] = useState<LostAccess | null>(null);
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
    setLost(null);
    get<Project>(`${P(projectId)}/`).then(setProject).catch((e) => setError(e.status === 404 ? "This project doesn't exist or you are not a member." : e.message));
    reloadClasses();
  }, [projectId, reloadClasses]);
  // Removed from the project, or it was deleted, while a page of it is open: say so, offer the
  // list. A deletion's "by whom" is kept when the generic notice (the socket's close) follows it.
  // A write refused for the role: another admin changed it. The tabs and pages follow the role as
  // it is now (a demoted admin kept the admin pages, each click a 403, until a reload).
  const reloadRole = useCallback(() => {
    get<Project>(`${P(projectId)}/`).then((fresh) => setProject((old) => (old && old.my_role === fresh.my_role ? old : fresh)))
      .catch(() => undefined); // a lost project is told by checkProjectAccess
  }, [projectId]);
  useEffect(() => onRoleRefused((p) => { if (p === projectId) reloadRole(); }), [projectId, reloadRole]);
  useEffect(() => onLostAccess((p, how) => {
    if (p === projectId) setLost((prev) => (prev && prev.deletedBy !== undefined ? prev : how));
  }), [projectId]);
  const open = !!project && !lost && !error;
  // Every page of the project keeps its socket open, so a deletion or removal is told at once, and a
  // role changed by an admin is followed at once (a promoted member saw the admin tabs only after a reload).
  useEffect(() => (open ? subscribe(projectId, (ev) => { if (ev.type === "membership.changed") reloadRole(); }) : undefined),
    [open, projectId, reloadRole]);
  // Going to another tab asks for the project again: a socket that was down (asleep, offline)
  // missed the news, and the new page's 404 would otherwise be its only sign.
  // (Per section, not per image: the review loop's next image must not wait on it.)
  const sectionNow = parseSub(sub)?.section ?? "unknown";
  const firstSection = useRef(true);
  useEffect(() => {
    if (firstSection.current) { firstSection.current = false; return; }
    if (open) void checkProjectAccess(projectId);
  }, [sectionNow]); // eslint-disable-line react-hooks/exhaustive-deps
  useProjectGoneNotes(open, () => void checkProjectAccess(projectId));
  // Messages the gone project's pages raised would stand under the notice ("Couldn't save the
  // polygon" beside "No access to this project"): drop them, and any "Project not found." a
  // request still on its way raises.
  useEffect(() => {
    if (!lost) return;
    dismissWhere(() => true);
    const sweep = () => currentNotes().filter((n) => isProjectGoneNote(n.text)).forEach((n) => dismiss(n.id));
    sweep();
    return subscribeNotes(sweep);
  }, [lost]);
  // Removed, then added back: the page looks again every 15 s and when it is shown, and goes on
  // (it stayed on "No access" until a reload, black-box round 18b). A deleted project stays gone.
  useEffect(() => {
    if (!lost || lost.deletedBy !== undefined) return;
    const look = () => {
      if (document.visibilityState !== "visible") return;
      get<Project>(`${P(projectId)}/`).then((fresh) => { setProject(fresh); setLost(null); }).catch(() => undefined);
    };
    const timer = window.setInterval(look, 15_000);
    document.addEventListener("visibilitychange", look);
    window.addEventListener("focus", look);
    return () => {
      window.clearInterval(timer);
      document.removeEventListener("visibilitychange", look);
      window.removeEventListener("focus", look);
    };
  }, [lost, projectId]);
  const uploading = useRunningUploads(projectId);
  if (lost) {
    const deleted = lost.deletedBy !== undefined;
    return (
      <main className="page project-gone" data-testid="project-error">
        <h1>{deleted ? "Project deleted" : "No access to this project"}</h1>
        <p className="error" role="alert">{lostAccessMessage(lost, me.username)}</p>
        {deleted && <p className="muted">Its images, classes and annotations are gone with it.</p>}
        <p><Link to="/" className="button primary">All projects</Link></p>
      </main>
    );
  }
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
      <nav className="tabs project-bar" data-testid="project-bar">
        <span className="project-name" title={project.name} dir="auto" data-testid="project-name">{project.name}</span>
        {tabsFor(role).map((t) => tab(t.to, t.label, t.section))}
      </nav>
      {body}
    </>
  );
}
