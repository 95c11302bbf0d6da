import { useEffect } from "react";
import { addNavigationGuard } from "./router";

/** While `question` is set, leaving the page asks it first: another page of the app (or Back)
 *  through the router's guard, a reload or close through the browser's own prompt. */
export function useUnsavedGuard(question: string | null) {
  useEffect(() => {
    if (!question) return;
    const off = addNavigationGuard(() => question);
    const onBeforeUnload = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = ""; // older browsers show their prompt only when this is set
    };
    window.addEventListener("beforeunload", onBeforeUnload);
    return () => {
      off();
      window.removeEventListener("beforeunload", onBeforeUnload);
    };
  }, [question]);
}
