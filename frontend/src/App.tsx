import { useEffect, useRef, useState } from "react";
import { ApiError, get, post, setOnUnauthorized, type Me } from "./api/client";
import { clearForNavigation, Notes, notify } from "./notify";
import { Link, navigate, usePath } from "./router";
import { LoginPage } from "./pages/Login";
import { ProjectsPage } from "./pages/Projects";
import { ProjectLayout } from "./pages/ProjectLayout";
import { NotFoundPage } from "./pages/NotFound";
import { SetPasswordPage } from "./pages/SetPassword";
import { forgetClaimsForSignOut } from "./review/useClaim";
import { runningCount, stopAllUploads } from "./pages/uploadStore";

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const signedIn = useRef(false);
  signedIn.current = !!me;
  const path = usePath();
  const pathname = path.split("?")[0];

  useEffect(() => {
    setOnUnauthorized(() => {
      // Signed out elsewhere (or the session ended): the uploads stop too, resumable after signing in.
      const uploading = runningCount();
      stopAllUploads();
      if (uploading) notify(`You were signed out: ${uploading} upload${uploading > 1 ? "s" : ""} stopped. Sign in and pick the same files again to resume them.`, "warn");
      else if (signedIn.current) notify("You were signed out (here or in another tab). Sign in to go on where you were.", "warn");
      setMe(null);
    });
    get<Me>("/api/auth/me/")
      .then(setMe)
      .catch((e) => {
        setMe(null);
        if (!(e instanceof ApiError) || e.status !== 401) notify(e.message, "error");
      });
  }, []);
  // Messages belong to the page they were raised on.
  useEffect(() => clearForNavigation(), [pathname]);
  // A bookmarked /login once signed in (or right after signing in there) is the projects page.
  useEffect(() => {
    if (me && pathname === "/login") navigate("/", true);
  }, [me, pathname]);

  if (me === undefined) return <div className="center muted">Loading…</div>;
  if (me === null)
    return (
      <>
        <LoginPage onLogin={setMe} />
        <Notes />
      </>
    );

  const logout = async () => {
    const uploading = runningCount();
    if (uploading && !window.confirm(`${uploading} upload${uploading > 1 ? "s are" : " is"} still running. Signing out stops `
      + "them; pick the same files again after signing in to resume where they stopped. Sign out anyway?")) return;
    stopAllUploads(); // nothing goes on uploading under the next user of this tab
    forgetClaimsForSignOut(); // the server releases them on sign-out
    try {
      await post("/api/auth/logout/");
    } catch {
      /* signed out either way */
    }
    setMe(null);
    navigate("/");
  };

  const projectMatch = /^\/p\/(\d+)(\/.*)?$/.exec(pathname);
  const body = me.must_change_password ? (
    <SetPasswordPage me={me} onDone={setMe} />
  ) : projectMatch ? (
    <ProjectLayout projectId={Number(projectMatch[1])} sub={projectMatch[2] || "/"} me={me} />
  ) : pathname === "/account" ? (
    <SetPasswordPage me={me} change onDone={(m) => { setMe(m); notify("Your password is changed."); }} />
  ) : pathname === "/" ? (
    <ProjectsPage />
  ) : (
    <NotFoundPage />
  );
  return (
    <div className="app">
      <header className="topbar">
        <Link to="/" className="brand">Razmetka</Link>
        <span className="spacer" />
        <span data-testid="whoami"><Link to="/account" className="whoami" title="Your account: change your password">{me.username}</Link></span>
        <button className="link" onClick={logout}>Sign out</button>
      </header>
      {body}
      <Notes />
    </div>
  );
}
