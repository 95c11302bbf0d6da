import { useEffect, useState } from "react";
import { ApiError, get, post, setOnUnauthorized, type Me } from "./api/client";
import { Notes, notify } from "./notify";
import { Link, navigate, usePath } from "./router";
import { LoginPage } from "./pages/Login";
import { ProjectsPage } from "./pages/Projects";
import { ProjectLayout } from "./pages/ProjectLayout";

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const path = usePath();

  useEffect(() => {
    setOnUnauthorized(() => setMe(null));
    get<Me>("/api/auth/me/")
      .then(setMe)
      .catch((e) => {
        setMe(null);
        if (!(e instanceof ApiError) || e.status !== 401) notify(e.message, "error");
      });
  }, []);

  if (me === undefined) return <div className="center muted">Loading…</div>;
  if (me === null)
    return (
      <>
        <LoginPage onLogin={setMe} />
        <Notes />
      </>
    );

  const logout = async () => {
    try {
      await post("/api/auth/logout/");
    } catch {
      /* signed out either way */
    }
    setMe(null);
    navigate("/");
  };

  const projectMatch = /^\/p\/(\d+)(\/.*)?$/.exec(path.split("?")[0]);
  return (
    <div className="app">
      <header className="topbar">
        <Link to="/" className="brand">Razmetka</Link>
        <span className="spacer" />
        <span className="muted" data-testid="whoami">{me.username}</span>
        <button className="link" onClick={logout}>Sign out</button>
      </header>
      {projectMatch ? <ProjectLayout projectId={Number(projectMatch[1])} sub={projectMatch[2] || "/"} me={me} /> : <ProjectsPage />}
      <Notes />
    </div>
  );
}
