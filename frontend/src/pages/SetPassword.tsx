import { useState } from "react";
import { ApiError, get, patch, type Me } from "../api/client";

/** First sign-in with a one-time password: the user picks their own before anything else.
 *  `change`: the Account page, where a signed-in user changes theirs (there was no way to). */
export function SetPasswordPage({ me, onDone, change = false }: { me: Me; onDone: (me: Me) => void; change?: boolean }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const mismatch = again !== "" && next !== again;
  // The server's verdict was on the passwords it saw: once a field changes it no longer applies.
  const edit = (set: (v: string) => void) => (e: React.ChangeEvent<HTMLInputElement>) => {
    set(e.target.value);
    setError("");
  };
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      onDone(await patch<Me>("/api/auth/me/", { current_password: current, new_password: next }));
      if (change) {
        setCurrent("");
        setNext("");
        setAgain("");
      }
    } catch (err) {
      if (!change && err instanceof ApiError && err.status === 400) {
        // Set in another tab meanwhile: this one goes on (it said "the current password is wrong"
        // for the one-time password, and only a reload got out; black-box round 18b).
        const fresh = await get<Me>("/api/auth/me/").catch(() => null);
        if (fresh && !fresh.must_change_password) return onDone(fresh);
      }
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="login card" onSubmit={submit} data-testid={change ? "change-password" : "set-password"}>
      <h1>{change ? "Change your password" : "Set your password"}</h1>
      <p className="muted small">{change
        ? `Signed in as ${me.username}. A new password signs you out of your other browsers and ends your API tokens.`
        : `Hello ${me.username}. You signed in with a one-time password; choose your own to continue.`}</p>
      <label>{change ? "Current password" : "One-time password"}<input name="current_password" type="password" autoComplete="current-password" value={current} onChange={edit(setCurrent)} /></label>
      <label>New password<input name="new_password" type="password" autoComplete="new-password" value={next} onChange={edit(setNext)} /></label>
      <label>New password again<input name="new_password_again" type="password" autoComplete="new-password" value={again} onChange={edit(setAgain)} /></label>
      {mismatch && <p className="error small">The two new passwords differ.</p>}
      {error && <p className="error" role="alert">{error}</p>}
      <button className="primary" disabled={busy || !current || !next || next !== again}>{busy ? "Saving…" : change ? "Change password" : "Set password"}</button>
    </form>
  );
}
