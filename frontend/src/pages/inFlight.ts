/**
 * One request per click: a create or start button is disabled while its request runs, and a
 * second click (or Enter) that arrives before React has re-rendered the disabled button is
 * dropped by a synchronous flag, so a double-click makes one project, one job, one class.
 */
import { useCallback, useRef, useState } from "react";

/** Runs `fn` unless the run that set `flag` is still going; `onBusy` mirrors the flag for the UI. */
export async function runExclusive<R>(flag: { current: boolean }, onBusy: (busy: boolean) => void, fn: () => Promise<R>): Promise<R | undefined> {
  if (flag.current) return undefined;
  flag.current = true;
  onBusy(true);
  try {
    return await fn();
  } finally {
    flag.current = false;
    onBusy(false);
  }
}

/** [busy, run]: `run(fn)` is ignored while an earlier run is in flight; `busy` disables the button. */
export function useInFlight(): [boolean, <R>(fn: () => Promise<R>) => Promise<R | undefined>] {
  const flag = useRef(false);
  const [busy, setBusy] = useState(false);
  const run = useCallback(<R,>(fn: () => Promise<R>) => runExclusive(flag, setBusy, fn), []);
  return [busy, run];
}
