import { useEffect, useState } from "react";
import { ApiError, del, get, P, patch, post, type Membership, type Page } from "../api/client";
import { notify } from "../notify";
import { useInFlight } from "./inFlight";
import { useUnsavedGuard } from "../unsavedGuard";
import type { ProjectCtx } from "./ProjectLayout";

const ROLES = [
  ["admin", "Admin — settings, members, classes, exports"],
  ["reviewer", "Reviewer — accept and reject"],
  ["annotator", "Annotator — upload and draw"],
  ["viewer", "Viewer — look only"],
] as const;
type Role = (typeof ROLES)[number][0];

export function MembersPage({ ctx }: { ctx: ProjectCtx }) {
  const pid = ctx.project.id;
  const [members, setMembers] = useState<Membership[] | null>(null);
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<Role>("reviewer");
  const [addError, setAddError] = useState("");
  const [newName, setNewName] = useState("");
  const [newRole, setNewRole] = useState<Role>("reviewer");
  const [newError, setNewError] = useState("");
  // Every one-time password made on this page stays until its Done: a second new user replaced
  // the first one's panel, and that password was lost for good.
  const [secrets, setSecrets] = useState<{ username: string; password: string; reset: boolean }[]>([]);
  // They are shown once: leaving the page (a tab, Back, a reload) asks first; it dropped them.
  useUnsavedGuard(secrets.length ? `The one-time password${secrets.length > 1 ? "s" : ""} of ${secrets.map((s) => s.username).join(", ")} `
    + "will not be shown again once you leave this page. Copy them first (then press Done).\n\nLeave anyway?" : null);
  const keep = (username: string, password: string, reset: boolean) =>
    setSecrets((old) => [...old.filter((s) => s.username !== username), { username, password, reset }]);
  const [adding, runAdd] = useInFlight();
  const [creating, runCreate] = useInFlight();

  const load = async () => {
    try {
      setMembers((await get<Page<Membership>>(`${P(pid)}/members/?page_size=500`)).results);
    } catch (e) {
      notify(`Couldn't load members: ${(e as Error).message}`, "error");
    }
  };
  useEffect(() => { load(); }, [pid]);

  const add = (e: React.FormEvent) => {
    e.preventDefault();
    void runAdd(async () => {
      setAddError("");
      try {
        const m = await post<Membership>(`${P(pid)}/members/`, { username: username.trim(), role });
        setMembers((old) => [...(old ?? []), m]);
        setUsername("");
        notify(`${m.username} joined as ${m.role}.`);
      } catch (err: any) {
        setAddError(err.message);
      }
    });
  };
  const createUser = (e: React.FormEvent) => {
    e.preventDefault();
    void runCreate(async () => {
      setNewError("");
      try {
        const m = await post<Membership & { one_time_password: string }>(`${P(pid)}/members/new-user/`, { username: newName.trim(), role: newRole });
        setMembers((old) => [...(old ?? []), m]);
        keep(m.username, m.one_time_password, false);
        setNewName("");
      } catch (err: any) {
        setNewError(err.message);
      }
    });
  };
  const changeRole = async (m: Membership, next: Role) => {
    const self = m.username === ctx.me.username;
    if (self && m.role === "admin" && next !== "admin"
      && !confirm(`Change your own role in ${ctx.project.name} from admin to ${next}? You lose the Members and Settings pages at once, and only another admin can make you admin again.`)) return;
    try {
      const updated = await patch<Membership>(`${P(pid)}/members/${m.id}/`, { role: next, version: m.version });
      setMembers((old) => old?.map((x) => (x.id === m.id ? updated : x)) ?? old);
      notify(`${m.username} is now ${updated.role}.`);
      // Your own role changed: the project's tabs and pages follow it.
      if (self) ctx.setProject({ ...ctx.project, my_role: updated.role });
    } catch (err: any) {
      if (changedMeanwhile(err)) notify(`${m.username}'s role was changed by someone else meanwhile: the list shows it as it is now. Choose again if you still want to.`, "warn");
      else if (err instanceof ApiError && err.status === 404) {
        // Removed (and maybe added again) by another admin meanwhile: said "Membership not found."
        notify(`${m.username} was removed by another admin meanwhile: the list shows the members as they are now. Choose again if you still want to.`, "warn");
      } else notify(`Couldn't change ${m.username}'s role: ${err.message}`, "error");
      load();
    }
  };
  const resetPassword = async (m: Membership) => {
    if (!confirm(`Give ${m.username} a new one-time password? Their current password stops working at once, `
      + "they are signed out everywhere, and they choose their own at the next sign-in.")) return;
    try {
      const r = await post<Membership & { one_time_password: string }>(`${P(pid)}/members/${m.id}/reset-password/`);
      keep(r.username, r.one_time_password, true);
    } catch (err: any) {
      notify(`Couldn't reset ${m.username}'s password: ${err.message}`, "error");
    }
  };
  const remove = async (m: Membership) => {
    if (!confirm(`Remove ${m.username} from ${ctx.project.name}? They lose access at once.`)) return;
    try {
      await del(`${P(pid)}/members/${m.id}/?version=${m.version}`);
      setMembers((old) => old?.filter((x) => x.id !== m.id) ?? old);
      notify(`${m.username} removed.`);
    } catch (err: any) {
      if (changedMeanwhile(err)) {
        notify(`${m.username}'s role was changed by someone else meanwhile: the list shows it as it is now. Remove them again if you still want to.`, "warn");
        load();
      } else if (err instanceof ApiError && err.status === 404) {
        // Removed by another admin meanwhile: the row stayed for good, and a re-add could not be removed here.
        notify(`${m.username} was already removed (by another admin).`, "info");
        load();
      } else notify(`Couldn't remove ${m.username}: ${err.message}`, "error");
    }
  };

  const actionsWidth = ctx.me.is_staff ? 230 : 100;
  return (
    <main className="page">
      <h1>Members &amp; roles</h1>
      <div className="grid2 grid-wide-left">
        <section className="card">
          <h2>Members</h2>
          {members === null ? <p className="muted">Loading…</p> : (
            // A narrow window scrolls the table in its wrapper, not the page; the name keeps 120 px.
            <div className="table-scroll">
            <table className="table fixed" data-testid="members" style={{ minWidth: 120 + 150 + actionsWidth }}>
              <colgroup><col /><col style={{ width: 150 }} /><col style={{ width: actionsWidth }} /></colgroup>
              <thead><tr><th>User</th><th>Role</th><th></th></tr></thead>
              <tbody>
                {members.map((m) => (
                  <tr key={m.id} data-testid={`member-${m.username}`}>
                    <td className="cell-name"><span className="ellipsis" title={m.username}>{m.username}</span>{m.username === ctx.me.username && <span className="muted small"> (you)</span>}</td>
                    <td>
                      <select aria-label={`role of ${m.username}`} value={m.role} onChange={(e) => changeRole(m, e.target.value as Role)}>
                        {ROLES.map(([r]) => <option key={r} value={r}>{r}</option>)}
                      </select>
                    </td>
                    <td>
                      <div className="member-actions">
                        {ctx.me.is_staff && m.username !== ctx.me.username && (
                          <button className="small" data-testid={`reset-password-${m.username}`} onClick={() => resetPassword(m)}>Reset password</button>
                        )}
                        <button className="small danger" onClick={() => remove(m)}>Remove</button>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            </div>
          )}
          <ul className="muted small role-help">{ROLES.map(([r, d]) => <li key={r}>{d}</li>)}</ul>
        </section>
        <div>
          {secrets.length > 0 && (
            <section className="card" data-testid="one-time-passwords">
              <h2>One-time passwords</h2>
              {secrets.map((s) => (
                <div className="one-time" data-testid="one-time-password" key={s.username}>
                  <p>{s.reset ? "New password for" : "Account"} <b>{s.username}</b>{s.reset ? "" : " created"}. Give them this one-time password now; it will not be shown again:</p>
                  <code className="secret">{s.password}</code>
                  <button type="button" className="small" onClick={() => navigator.clipboard?.writeText(s.password).then(() => notify("Copied."), () => notify("Copy it by hand.", "warn"))}>Copy</button>
                  <button type="button" className="small link" onClick={() => setSecrets((old) => old.filter((x) => x !== s))}>Done</button>
                </div>
              ))}
            </section>
          )}
          <form className="card" onSubmit={add} data-testid="add-member">
            <h2>Add an existing user</h2>
            <label>Username<input name="member-username" value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="off" /></label>
            <label>Role
              <select name="member-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
                {ROLES.map(([r]) => <option key={r} value={r}>{r}</option>)}
              </select>
            </label>
            {addError && <p className="error small" role="alert">{addError}</p>}
            <button className="primary" disabled={!username.trim() || adding}>Add member</button>
          </form>
          {ctx.me.is_staff && (
            <form className="card" onSubmit={createUser} data-testid="new-user">
              <h2>Create a new user</h2>
              <p className="muted small">As an instance admin you can create an account. It gets a one-time password, shown once; the person sets their own at first sign-in.</p>
              <label>Username<input name="new-username" value={newName} onChange={(e) => setNewName(e.target.value)} autoComplete="off" /></label>
              <label>Role in this project
                <select name="new-role" value={newRole} onChange={(e) => setNewRole(e.target.value as Role)}>
                  {ROLES.map(([r]) => <option key={r} value={r}>{r}</option>)}
                </select>
              </label>
              {newError && <p className="error small" role="alert">{newError}</p>}
              <button className="primary" disabled={!newName.trim() || creating}>Create user</button>
            </form>
          )}
        </div>
      </div>
    </main>
  );
}

/** A 409 for a stale version: another admin changed this membership since the list was read. */
function changedMeanwhile(err: unknown): boolean {
  return err instanceof ApiError && err.status === 409;
}
