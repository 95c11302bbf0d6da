import { beforeEach, describe, expect, it } from "vitest";
import type { Progress, UploadResult } from "../api/upload";
import { runningCount, resetUploads, startUploads, subscribeUploads, uploadsOf, warnBeforeUnload } from "./uploadStore";

const file = (name: string) => new File([new Uint8Array(10)], name);
const ok: UploadResult = { created: [1], duplicates: [], errors: [] };

/** A sender the test finishes by hand. */
function manualSender() {
  const pending = new Map<string, { resolve: (r: UploadResult) => void; progress: (p: Progress) => void }>();
  const send = (_pid: number, f: File, onProgress: (p: Progress) => void) =>
    new Promise<UploadResult>((resolve) => pending.set(f.name, { resolve, progress: onProgress }));
  return { send, pending };
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
});
