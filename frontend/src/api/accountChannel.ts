/** The tabs of one browser share one session cookie: a sign-in in one tab makes every other tab
 * send that user's requests while still showing its own (black-box round 15: a tab showing ann1
 * saved edits as rev1). A sign-in tells the other tabs, which then stop under the sign-in form. */
const channel: BroadcastChannel | null = typeof BroadcastChannel !== "undefined" ? new BroadcastChannel("razmetka.account") : null;

export function announceSignIn(username: string): void {
  channel?.postMessage({ username });
}

/** A sign-out ends every tab's session (one cookie): the others stop at once, not at their next request. */
export function announceSignOut(): void {
  channel?.postMessage({ signedOut: true });
}

/** `listener` hears the user another tab of this browser signed in as (null: it signed out). */
export function onSignInElsewhere(listener: (username: string | null) => void): () => void {
  if (!channel) return () => {};
  const h = (e: MessageEvent) => {
    if (typeof e.data?.username === "string") listener(e.data.username);
    else if (e.data?.signedOut === true) listener(null);
  };
  channel.addEventListener("message", h);
  return () => channel.removeEventListener("message", h);
}
