/**
 * The claim on the open image: taken on open, renewed by a heartbeat while the reviewer is active,
 * released when they leave (another route, another image, tab closed). A reviewer idle for longer
 * than the server's claim TTL stops renewing, so the claim lapses and others may take the image;
 * the next key or click claims it again.
 */
import { useEffect, useRef, useState } from "react";
import { ApiError, P, post, type ImageDetail } from "../api/client";
import type { Claim } from "../api/extra";

export interface ClaimState {
  state: "mine" | "other" | "none" | "pending";
  by?: string;
}

const HEARTBEAT_MS = 30000;

/** Every mounted workspace's "forget my claim" (see forgetClaimsForSignOut). */
const held = new Set<() => void>();
/** Signing out: the server releases this session's claims itself, and a release sent after the
 * session ended was a 403 (a red console error) on every sign-out from the workspace. */
export function forgetClaimsForSignOut() {
  held.forEach((forget) => forget());
}
/** backend/images/claims.py CLAIM_SECONDS: idle longer than this, the claim is not renewed. */
export const CLAIM_TTL_MS = 300000;

export function useClaim(pid: number, imageId: number, canClaim = true) {
  const [claim, setClaimState] = useState<ClaimState>({ state: "pending" });
  // The cleanup of an unmounting page cannot read state through a setter (React drops it), so
  // whether this page holds the claim is kept in a ref as well.
  const mine = useRef(false);
  const beatRef = useRef<(() => void) | null>(null);
  const previous = useRef<ClaimState["state"]>("pending");
  const setClaim = (c: ClaimState | ((prev: ClaimState) => ClaimState)) => {
    if (typeof c !== "function") mine.current = c.state === "mine";
    setClaimState((prev) => {
      const next = typeof c === "function" ? c(prev) : c;
      mine.current = next.state === "mine";
      return next;
    });
  };

  useEffect(() => {
    if (!canClaim) {
      // A viewer only looks: asking for the claim was a 403 (and a console error) on every image.
      setClaimState({ state: "none" });
      return;
    }
    let stopped = false;
    let timer: number | undefined;
    let lastActive = Date.now();
    let lapsed = false;
    const url = `${P(pid)}/images/${imageId}/claim/`;
    const beat = async () => {
      window.clearTimeout(timer);
      if (Date.now() - lastActive > CLAIM_TTL_MS - HEARTBEAT_MS) {
        lapsed = true; // idle: let the claim expire on the server; activity claims again
        return;
      }
      try {
        const c = await post<Claim>(url);
        if (!stopped) setClaim({ state: "mine", by: c.claimed_by });
      } catch (e) {
        if (stopped) return;
        if (e instanceof ApiError && e.status === 409) setClaim({ state: "other", by: e.body?.claimed_by });
        else if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
          setClaim({ state: "none" });
          return; // the server has no claims: stop
        }
      }
      if (!stopped) timer = window.setTimeout(beat, HEARTBEAT_MS);
    };
    const active = () => {
      lastActive = Date.now();
      if (lapsed && !stopped) {
        lapsed = false;
        void beat();
      }
    };
    beatRef.current = () => void beat();
    beat();
    const release = () => {
      if (!mine.current) return;
      mine.current = false;
      releaseClaim(url);
    };
    // Back from the bfcache after pagehide released it: claim again at once.
    const shown = (e: PageTransitionEvent) => { if (e.persisted && !stopped) void beat(); };
    const forget = () => {
      stopped = true;
      window.clearTimeout(timer);
      mine.current = false;
    };
    held.add(forget);
    window.addEventListener("pagehide", release);
    window.addEventListener("pageshow", shown);
    for (const ev of ACTIVITY) window.addEventListener(ev, active, { passive: true });
    return () => {
      stopped = true;
      held.delete(forget);
      beatRef.current = null;
      window.clearTimeout(timer);
      window.removeEventListener("pagehide", release);
      window.removeEventListener("pageshow", shown);
      for (const ev of ACTIVITY) window.removeEventListener(ev, active);
      release();
      setClaimState({ state: "pending" });
    };
  }, [pid, imageId, canClaim]);

  // The holder let go (a live "released"): take the image at once, or the next person to open it
  // would, and this page, already editable, would turn read-only mid-work.
  useEffect(() => {
    if (previous.current === "other" && claim.state === "pending") beatRef.current?.();
    previous.current = claim.state;
  }, [claim.state]);

  return [claim, setClaim] as const;
}

const ACTIVITY = ["keydown", "pointerdown", "wheel"] as const;

/** DELETE that survives the page going away (fetch keepalive; sendBeacon can only POST). */
function releaseClaim(url: string) {
  try {
    fetch(url, { method: "DELETE", credentials: "same-origin", keepalive: true, headers: { "X-CSRFToken": csrf() } }).catch(() => undefined);
  } catch {
    // keepalive refused (too many in flight): the claim lapses on the server after its TTL
  }
}

/** Whether the image detail shows an unexpired claim by someone other than `me`. */
export function heldByOther(d: ImageDetail, me: string): boolean {
  return !!d.claimed_by && d.claimed_by !== me && !!d.claim_expires_at && Date.parse(d.claim_expires_at) > Date.now();
}

function csrf(): string {
  const m = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : "";
}
