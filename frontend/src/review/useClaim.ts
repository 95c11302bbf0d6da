/** The claim on the open image: taken on open, renewed by a heartbeat, released on leave. */
import { useEffect, useState } from "react";
import { ApiError, P, post, type ImageDetail } from "../api/client";
import type { Claim } from "../api/extra";

export interface ClaimState {
  state: "mine" | "other" | "none" | "pending";
  by?: string;
}

const HEARTBEAT_MS = 30000;

export function useClaim(pid: number, imageId: number) {
  const [claim, setClaim] = useState<ClaimState>({ state: "pending" });

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const url = `${P(pid)}/images/${imageId}/claim/`;
    const beat = async () => {
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
    beat();
    const release = () => {
      fetch(url, { method: "DELETE", credentials: "same-origin", keepalive: true, headers: { "X-CSRFToken": csrf() } }).catch(() => undefined);
    };
    window.addEventListener("pagehide", release);
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      window.removeEventListener("pagehide", release);
      setClaim((c) => {
        if (c.state === "mine") release();
        return { state: "pending" };
      });
    };
  }, [pid, imageId]);

  return [claim, setClaim] as const;
}

/** Whether the image detail shows an unexpired claim by someone other than `me`. */
export function heldByOther(d: ImageDetail, me: string): boolean {
  return !!d.claimed_by && d.claimed_by !== me && !!d.claim_expires_at && Date.parse(d.claim_expires_at) > Date.now();
}

function csrf(): string {
  const m = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : "";
}
