import { announceSignIn } from "../api/accountChannel";
import { useState } from "react";
import { ApiError, get, post, type Me } from "../api/client";

/** A wait in words: "15 minutes", "1 minute", "40 seconds". */
export function waitText(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? "" : "s"}`;
}

/** The sign-in error as a person reads it: a throttle's raw "Expected available in 900 seconds."
 * (DRF's suffix, still on the per-address limit) becomes "Try again in 15 minutes." */
export function signInError(err: unknown): string {
  if (!(err instanceof ApiError)) return String(err);
  const m = /\s*Expected available in (\d+) seconds?\.?/.exec(err.message);
  if (err.status !== 429 || !m) return err.message;
  const rest = err.message.replace(m[0], "").replace(/^Request was throttled\.?/, "").trim();
  return `${rest || "Too many sign-in attempts from this address."} Try again in ${waitText(Number(m[1]))}.`;
}

/** `notice`: why the form is shown over a page (signed out, or another tab signed in as someone else);
 * `known`: the name of the user whose page it is (filled in, the password field takes the keys). */
export function LoginPage({ onLogin, notice, username: known }: { onLogin: (me: Me) => void; notice?: string | null; username?: string }) {
  const [username, setUsername] = useState(known ?? "");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await get("/api/auth/me/").catch(() => undefined); // sets the CSRF cookie
      const me = await post<Me>("/api/auth/login/", { username, password });
      announceSignIn(me.username);
      onLogin(me);
    } catch (err) {
      setError(signInError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="login card" onSubmit={submit}>
      <h1>Razmetka</h1>
      {notice && <p className="notice warn" role="status" data-testid="sign-in-why">{notice}</p>}
      <label>
        Username
        <input name="username" autoFocus={!known} autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} />
      </label>
      <label>
        Password
        <input name="password" type="password" autoFocus={!!known} autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      {error && <p className="error" role="alert">{error}</p>}
      <button type="submit" className="primary" disabled={busy || !username || !password}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
    </form>
  );
}
