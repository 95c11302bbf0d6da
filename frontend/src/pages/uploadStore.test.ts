import { beforeEach, describe, expect, it } from "vitest";
import { CANCEL, UploadCancelled, type Progress, type UploadResult } from "../api/upload";
import { cancelAllUploads, cancelUpload, runningCount, resetUploads, startUploads, STOPPED_SIGNED_OUT, stopAllUploads, subscribeUploads, uploadsOf, warnBeforeUnload } from "./uploadStore";

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

describe("cancelling", () => {
  it("stops one file, shows it cancelled (not failed), and lets the others go on", async () => {
    const { send, pending, signals } = manualSender();
    const done = startUploads(5, ["a.png", "b.png", "c.png", "d.png"].map(file), send);
    await Promise.resolve();
    const a = uploadsOf(5)[0];
    cancelUpload(5, a.id);
    expect(signals.get("a.png")?.aborted).toBe(true);
    expect(signals.get("a.png")?.reason).toBe(CANCEL); // the sender drops the server's session
    expect(signals.get("b.png")?.aborted).toBe(false);
    expect(uploadsOf(5)[0].phase).toBe("cancelled");
    expect(runningCount(5)).toBe(3);
    const aborted = pending.get("a.png")!;
    // A queued file cancelled before it starts never starts.
    cancelUpload(5, uploadsOf(5)[3].id);
    pending.get("b.png")!.resolve(ok);
    pending.get("c.png")!.resolve(ok);
    await new Promise((r) => setTimeout(r, 0));
    expect(pending.has("d.png")).toBe(false);
    expect(uploadsOf(5).map((i) => i.phase)).toEqual(["cancelled", "done", "done", "cancelled"]);
    expect(uploadsOf(5).every((i) => !i.error)).toBe(true);
    aborted.resolve(ok); // a sender that finishes anyway does not turn the row back
    await done;
  });

  it("Cancel all cancels every file not yet with the server whole; a processing one goes on", async () => {
    const { send, pending, signals } = manualSender();
    const done = startUploads(7, ["a.png", "b.png", "c.png", "d.png"].map(file), send);
    await Promise.resolve();
    pending.get("a.png")!.progress({ phase: "processing", sent: 10 });
    expect(cancelAllUploads(7)).toBe(3);
    expect(signals.get("a.png")?.aborted).toBe(false);
    expect(uploadsOf(7).map((i) => i.phase)).toEqual(["processing", "cancelled", "cancelled", "cancelled"]);
    pending.get("a.png")!.resolve(ok);
    await new Promise((r) => setTimeout(r, 0));
    expect(uploadsOf(7)[0].phase).toBe("done");
    expect(pending.has("d.png")).toBe(false);
    pending.get("b.png")!.resolve(ok);
    pending.get("c.png")!.resolve(ok);
    await done;
    expect(runningCount()).toBe(0);
  });

  it("a sender that rejects on cancel leaves the row cancelled, with the server's note when it kept the file", async () => {
    const send = (_pid: number, _f: File, _p: (p: Progress) => void, signal?: AbortSignal) =>
      new Promise<UploadResult>((_, reject) => signal?.addEventListener("abort", () => reject(new UploadCancelled(false))));
    const done = startUploads(8, [file("a.png")], send);
    await Promise.resolve();
    cancelUpload(8, uploadsOf(8)[0].id);
    await done;
    expect(uploadsOf(8)[0].phase).toBe("cancelled");
    expect(uploadsOf(8)[0].error).toBeUndefined();
    expect(uploadsOf(8)[0].note).toMatch(/already had the whole file/);
  });

  it("a session ended elsewhere keeps the list, the unfinished files marked stopped", async () => {
    // Round 15: the whole list vanished; only a toast of a few seconds said what to do.
    const { send, pending } = manualSender();
    const done = startUploads(11, ["a.png", "b.png", "c.png", "d.png"].map(file), send);
    await Promise.resolve();
    pending.get("a.png")!.resolve(ok);
    await new Promise((r) => setTimeout(r, 0));
    stopAllUploads({ keep: true });
    const list = uploadsOf(11);
    expect(list.map((i) => i.phase)).toEqual(["done", "failed", "failed", "failed"]);
    expect(list.slice(1).every((i) => i.error === STOPPED_SIGNED_OUT)).toBe(true);
    expect(runningCount()).toBe(0);
    pending.forEach((p, name) => name !== "a.png" && p.resolve(ok));
    await done;
    expect(uploadsOf(11).map((i) => i.phase)).toEqual(["done", "failed", "failed", "failed"]); // nothing overwrote them
  });

  it("a sign-out still stops everything after a cancel", async () => {
    const { send, signals } = manualSender();
    void startUploads(9, [file("a.png"), file("b.png")], send);
    await Promise.resolve();
    cancelUpload(9, uploadsOf(9)[0].id);
    stopAllUploads();
    expect(signals.get("b.png")?.aborted).toBe(true);
    expect(signals.get("b.png")?.reason).not.toBe(CANCEL); // stopped, not cancelled: it resumes later
    expect(uploadsOf(9)).toEqual([]);
  });
});
