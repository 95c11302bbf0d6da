import { beforeEach, describe, expect, it } from "vitest";
import type { Progress, UploadResult } from "../api/upload";
import { runningCount, resetUploads, startUploads, stopAllUploads, subscribeUploads, uploadsOf, warnBeforeUnload } from "./uploadStore";

const file = (name: string) => new File([new Uint8Array(10)], name);
const ok: UploadResult = { created: [1], duplicates: [], errors: [] };

/** A sender the test finishes by hand. */
function manualSender() {
  const pending = new Map<string, { resolve: (r: UploadResult) => void; progress: (p: Progress) => void }>();
  const signals = new Map<string, AbortSignal | undefined>();
  const send = (_pid: number, f: File, onProgress: (p: Progress) => void, signal?: AbortSignal) => {
    signals.set(f.name, signal);
    return new Promise<UploadResult>((resolve) => pending.set(f.name, { resolve, progress: onProgress }));
  };
  return { send, pending, signals };
}
const unloadEvent = () => {
  const e = { prevented: false, returnValue: "", preventDefault() { this.prevented = true; } };
  return e as unknown as BeforeUnloadEvent & { prevented: boolean };
};

beforeEach(() => resetUploads());

describe("the upload list", () => {
  it("outlives the page: it is kept per project until the files are through", async () => {
    const { send, pending } = manualSender();
    let changes = 0;
    const off = subscribeUploads(() => changes++);
    const done = startUploads(5, [file("a.png"), file("b.png")], send);
    await Promise.resolve();
    expect(uploadsOf(5).map((i) => i.name)).toEqual(["a.png", "b.png"]);
    expect(uploadsOf(6)).toEqual([]);
    expect(runningCount(5)).toBe(2);
    pending.get("a.png")!.progress({ phase: "sending", sent: 4, resumedFrom: 4 });
    expect(uploadsOf(5)[0]).toMatchObject({ phase: "sending", sent: 4, resumedFrom: 4 });
    pending.get("a.png")!.resolve(ok);
    pending.get("b.png")!.resolve({ created: [], duplicates: [], errors: [{ name: "b.png", error: "not an image" }] });
    await done;
    expect(uploadsOf(5).map((i) => i.phase)).toEqual(["done", "failed"]);
    expect(runningCount()).toBe(0);
    expect(changes).toBeGreaterThan(3);
    off();
  });

  it("makes the browser ask before a reload or close while a file is still going", async () => {
    const idle = unloadEvent();
    expect(warnBeforeUnload(idle)).toBeUndefined();
    expect(idle.prevented).toBe(false);
    const { send, pending } = manualSender();
    const done = startUploads(5, [file("a.png")], send);
    await Promise.resolve();
    const busy = unloadEvent();
    expect(warnBeforeUnload(busy)).toMatch(/still running/);
    expect(busy.prevented).toBe(true);
    pending.get("a.png")!.resolve(ok);
    await done;
    expect(warnBeforeUnload(unloadEvent())).toBeUndefined();
  });

  it("stops on sign-out: the files in flight are told, the queued ones never start", async () => {
    // They went on after a sign-out, under whoever signed in next on the tab.
    const { send, pending, signals } = manualSender();
    const names = ["a.png", "b.png", "c.png", "d.png", "e.png"];
    const done = startUploads(5, names.map(file), send);
    await Promise.resolve();
    expect([...pending.keys()]).toEqual(["a.png", "b.png", "c.png"]); // three at a time
    stopAllUploads();
    expect(uploadsOf(5)).toEqual([]);
    expect(runningCount()).toBe(0);
    expect(["a.png", "b.png", "c.png"].map((n) => signals.get(n)?.aborted)).toEqual([true, true, true]);
    pending.get("a.png")!.resolve(ok); // a sender that ends anyway frees its slot...
    await new Promise((r) => setTimeout(r, 0));
    expect([...pending.keys()]).toEqual(["a.png", "b.png", "c.png"]); // ...and nothing queued starts
    expect(uploadsOf(5)).toEqual([]); // nor comes back into the list
    pending.get("b.png")!.resolve(ok);
    pending.get("c.png")!.resolve(ok);
    await done;
    // Uploads started after signing in again run as before.
    const again = startUploads(5, [file("f.png")], send);
    await Promise.resolve();
    expect(signals.get("f.png")?.aborted).toBe(false);
    pending.get("f.png")!.resolve(ok);
    await again;
    expect(uploadsOf(5).map((i) => i.phase)).toEqual(["done"]);
  });
});
