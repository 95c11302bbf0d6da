import { Fragment, useEffect, useRef, useState } from "react";
import { announceSignOut, onSignInElsewhere } from "./api/accountChannel";
import { ApiError, get, post, setOnUnauthorized, signedInAgain, type Me } from "./api/client";
import { clearForNavigation, Notes, notify } from "./notify";
import { Link, navigate, usePath } from "./router";
import { LoginPage } from "./pages/Login";
import { ProjectsPage } from "./pages/Projects";
import { ProjectLayout } from "./pages/ProjectLayout";
import { NotFoundPage } from "./pages/NotFound";
import { SetPasswordPage } from "./pages/SetPassword";
import { forgetClaimsForSignOut } from "./review/useClaim";
import { resetUploads, runningCount, stopAllUploads } from "./pages/uploadStore";

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  // The user whose session ended while a page was open: the page stays (under the sign-in form),
  // with what it held (a failed decision and its Retry, a polygon being drawn); it went, and with
  // it every write the ended session had refused.
  const [ended, setEnded] = useState<Me | null>(null);
  const endedRef = useRef(ended);
  endedRef.current = ended;
  /** Why the sign-in form is over the page, said in the form for as long as it shows (a toast
   * was gone a few seconds later, leaving an unexplained form; black-box round 16). */
  const [why, setWhy] = useState<string | null>(null);
  /** Signed in again over an open page on a one-time password (an admin reset it): the page stays
   * under the set-password form, and what the ended session failed to save goes once the password
   * is set (it went at once and was refused "set your own password first", lost; black-box round 18). */
  const [passwordFirst, setPasswordFirst] = useState(false);
  const signedIn = useRef(false);
  const signInAgainRef = useRef<(m: Me) => void>(() => {});
  signedIn.current = !!me;
  const meRef = useRef(me);
  meRef.current = me;
  /** The session ended (signed out here, in another tab, or expired): the page stays under the
   * sign-in form; the uploads stop too, resumable after signing in. */
  const sessionEndedRef = useRef(() => {});
  sessionEndedRef.current = () => {
    const uploading = runningCount();
    stopAllUploads({ keep: true }); // the list stays, its unfinished files marked, under the sign-in form
    if (uploading) setWhy(`You were signed out: ${uploading} upload${uploading > 1 ? "s" : ""} stopped. Sign in and pick the same files again to resume them.`);
    else if (signedIn.current) setWhy("You were signed out (here, in another tab, or by a password reset). Sign in to go on where you were.");
    if (signedIn.current && meRef.current) setEnded(meRef.current);
    setPasswordFirst(false); // asked again at the next sign-in if still due
    setMe(null);
  };
  const path = usePath();
  const pathname = path.split("?")[0];
  // Said in the header while the browser has no connection (failed writes said only "can't be
  // reached", one by one); what failed is sent again when it is back (useAnnotationWrites).
  const [offline, setOffline] = useState(() => typeof navigator !== "undefined" && navigator.onLine === false);
  useEffect(() => {
    const on = () => setOffline(false), off = () => setOffline(true);
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => { window.removeEventListener("online", on); window.removeEventListener("offline", off); };
  }, []);

  useEffect(() => {
    setOnUnauthorized(() => sessionEndedRef.current());
    get<Me>("/api/auth/me/")
      .then(setMe)
      .catch((e) => {
        setMe(null);
        if (!(e instanceof ApiError) || e.status !== 401) notify(e.message, "error");
      });
  }, []);
  // Another tab of this browser signed in as someone else: this tab's requests now go as them,
  // so it stops under the sign-in form (its page kept) until its user signs in again or reloads.
  useEffect(() => {
    const switched = (username: string | null) => {
      if (username === null) { if (meRef.current) sessionEndedRef.current(); return; } // signed out in another tab
      const mine = meRef.current ?? endedRef.current;
      if (!mine) {
        // The plain sign-in page: signed in in another tab, this one goes on as that user too.
        get<Me>("/api/auth/me/").then((m) => { if (meRef.current === null && !endedRef.current) setMe(m); }).catch(() => {});
        return;
      }
      if (username === mine.username) {
        // Behind the form, and its own user signed in again elsewhere: go on where it was.
        if (!meRef.current) get<Me>("/api/auth/me/").then((m) => { if (m.username === mine.username) signInAgainRef.current(m); }).catch(() => {});
        return;
      }
      setEnded(mine);
      setMe(null);
      setWhy(`This browser is now signed in as ${username} (in another tab). Sign in here to go on as ${mine.username} `
        + `(that tab then stops), or reload the page to go on as ${username}.`);
    };
    const offChannel = onSignInElsewhere(switched);
    // A tab that slept through the message (or a browser without BroadcastChannel) looks when shown.
    const onVisible = () => {
      if (document.visibilityState !== "visible" || !meRef.current) return;
      get<Me>("/api/auth/me/").then((m) => switched(m.username)).catch(() => {});
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => { offChannel(); document.removeEventListener("visibilitychange", onVisible); };
  }, []);
  // Messages belong to the page they were raised on.
  useEffect(() => clearForNavigation(), [pathname]);
  // A bookmarked /login once signed in (or right after signing in there) is the projects page.
  useEffect(() => {
    if (me && pathname === "/login") navigate("/", true);
  }, [me, pathname]);

  if (me === undefined) return <div className="center muted">Loading…</div>;
  if (me === null && !ended)
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
    setEnded(null);
    setWhy(null);
    setPasswordFirst(false);
    try {
      await post("/api/auth/logout/");
    } catch {
      /* signed out either way */
    }
    announceSignOut();
    setMe(null);
    navigate("/");
  };

  // Signed in again: the same user goes on where they were, and what the ended session failed
  // to save is sent again; someone else starts afresh.
  const signInAgain = (m: Me) => {
    const same = ended?.username === m.username;
    if (!same) resetUploads(); // the previous user's upload list is not the next one's
    setEnded(null);
    setWhy(null);
    setMe(m);
    if (same && m.must_change_password) setPasswordFirst(true);
    else if (same) window.setTimeout(signedInAgain, 0);
  };
  const passwordSet = (m: Me) => {
    setPasswordFirst(false);
    setMe(m);
    window.setTimeout(signedInAgain, 0);
  };
  signInAgainRef.current = signInAgain;
  const user = (me ?? ended)!;
  const projectMatch = /^\/p\/(\d+)(\/.*)?$/.exec(pathname);
  const body = user.must_change_password && !passwordFirst ? (
    <SetPasswordPage me={user} onDone={setMe} />
  ) : projectMatch ? (
    <ProjectLayout projectId={Number(projectMatch[1])} sub={projectMatch[2] || "/"} me={user} />
  ) : pathname === "/account" ? (
    <SetPasswordPage me={user} change onDone={(m) => { setMe(m); notify("Your password is changed."); }} />
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
        {offline && <span className="offline-badge" role="status" data-testid="offline">Offline: changes are not saved until the connection is back</span>}
        <span data-testid="whoami"><Link to="/account" className="whoami" title="Your account: change your password">{user.username}</Link></span>
        <button className="link" onClick={logout}>Sign out</button>
      </header>
      <Fragment key={user.username}>{body}</Fragment>
      {!me && <SignInAgain onLogin={signInAgain} why={why} username={ended?.username} />}
      {me && passwordFirst && (
        <Overlay testId="set-password-again"><SetPasswordPage me={me} onDone={passwordSet} /></Overlay>
      )}
      <Notes />
    </div>
  );
}

/** The sign-in form over the page whose session ended, its user's name filled in. */
function SignInAgain({ onLogin, why, username }: { onLogin: (me: Me) => void; why: string | null; username?: string }) {
  return (
    <Overlay testId="sign-in-again">
      <LoginPage onLogin={onLogin} notice={why} username={username} />
    </Overlay>
  );
}

/** A form over the page; keys typed outside it don't reach the page. */
function Overlay({ testId, children }: { testId: string; children: React.ReactNode }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const keep = (e: KeyboardEvent) => {
      if (!box.current?.contains(e.target as Node)) e.stopImmediatePropagation();
    };
    window.addEventListener("keydown", keep, true);
    return () => window.removeEventListener("keydown", keep, true);
  }, []);
  return (
    <div className="overlay signin-again" ref={box} data-testid={testId}>
      {children}
    </div>
  );
}
