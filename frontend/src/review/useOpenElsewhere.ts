/**
 * Another tab of this browser with the same image open. Claims are per user, so both tabs may
 * write; a stale write is refused (409) but nothing said beforehand that the image was open twice.
 */
import { useEffect, useState } from "react";

type Message = { kind: "open" | "here" | "closed"; key: string; tab: string };

export function useOpenElsewhere(pid: number, imageId: number): boolean {
  const [others, setOthers] = useState<Set<string>>(new Set());
  useEffect(() => {
    setOthers(new Set());
    if (typeof BroadcastChannel === "undefined") return;
    const channel = new BroadcastChannel("razmetka.open-images");
    const tab = Math.random().toString(36).slice(2);
    const key = `${pid}:${imageId}`;
    const say = (kind: Message["kind"]) => channel.postMessage({ kind, key, tab } satisfies Message);
    const change = (fn: (s: Set<string>) => void) => setOthers((s) => { const n = new Set(s); fn(n); return n; });
    channel.onmessage = (e: MessageEvent<Message>) => {
      const m = e.data;
      if (!m || m.key !== key || m.tab === tab) return;
      if (m.kind === "closed") return change((s) => s.delete(m.tab));
      change((s) => s.add(m.tab));
      if (m.kind === "open") say("here");
    };
    say("open");
    const leave = () => say("closed"); // a closed tab runs no effect cleanup
    window.addEventListener("pagehide", leave);
    return () => {
      window.removeEventListener("pagehide", leave);
      leave();
      channel.close();
    };
  }, [pid, imageId]);
  return others.size > 0;
}
