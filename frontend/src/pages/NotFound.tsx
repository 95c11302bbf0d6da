import { Link } from "../router";

/** Unknown routes say so, instead of quietly showing some other page. */
export function NotFoundPage({ projectId }: { projectId?: number }) {
  return (
    <main className="page not-found" data-testid="not-found">
      <h1>Page not found</h1>
      <p className="muted">
        There is nothing at <code>{location.pathname}</code>. The link may be mistyped or the page may have moved.
      </p>
      <p>
        {projectId ? <><Link to={`/p/${projectId}`}>Back to the project dashboard</Link> · </> : null}
        <Link to="/">All projects</Link>
      </p>
    </main>
  );
}
