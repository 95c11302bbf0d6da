import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CANCEL, EMPTY_FILE, forget, forgetStale, openSession, recall, remember, resumeKey, UploadCancelled, uploadFile, type Progress, type UploadSession } from "./upload";

/** localStorage as the browser has it (node has none). */
class MemoryStorage {
  data = new Map<string, string>();
  getItem(k: string) { return this.data.get(k) ?? null; }
  setItem(k: string, v: string) { this.data.set(k, v); }
  removeItem(k: string) { this.data.delete(k); }
  get length() { return this.data.size; }
  key(i: number) { return [...this.data.keys()][i] ?? null; }
}

const file = (name = "scan.png", size = 20, lastModified = 1_700_000_000_000) => new File([new Uint8Array(size)], name, { lastModified });
const session = (over: Partial<UploadSession>): UploadSession => ({
  id: 1, file_name: "scan.png", size_bytes: 20, received_bytes: 0, status: "receiving",
  result: { created: [], duplicates: [], errors: [] }, chunk_bytes: 8, ...over,
});
const sha256 = async (bytes: ArrayBuffer) =>
  [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

let storage: MemoryStorage;
let calls: { method: string; url: string }[];
/** The server: answers by "METHOD url" from `routes`, and records every request. */
function serve(routes: Record<string, () => Response>) {
  calls = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit = {}) => {
    const method = init.method ?? "GET";
    calls.push({ method, url });
    const answer = routes[`${method} ${url}`];
    if (!answer) throw new Error(`unexpected ${method} ${url}`);
    return answer();
  });
}

beforeEach(() => {
  storage = new MemoryStorage();
  vi.stubGlobal("localStorage", storage);
  vi.stubGlobal("document", { cookie: "" });
});
afterEach(() => vi.unstubAllGlobals());

describe("remembered upload sessions", () => {
  it("are keyed by project, file identity and hash", () => {
    const a = resumeKey(3, file(), "ab");
    expect(a).not.toBe(resumeKey(4, file(), "ab"));
    expect(a).not.toBe(resumeKey(3, file("other.png"), "ab"));
    expect(a).not.toBe(resumeKey(3, file("scan.png", 21), "ab"));
    expect(a).not.toBe(resumeKey(3, file("scan.png", 20, 5), "ab"));
    expect(a).not.toBe(resumeKey(3, file(), "cd"));
    expect(a).toBe(resumeKey(3, file(), "ab"));
  });

  it("are recalled until forgotten, and not after the server has dropped them", () => {
    remember("k", 42, 1000);
    expect(recall("k", 2000)).toBe(42);
    expect(recall("k", 1000 + 25 * 3600 * 1000)).toBeNull(); // older than the server keeps it
    expect(storage.data.has("k")).toBe(false);
    remember("k", 43);
    forget("k");
    expect(recall("k")).toBeNull();
    storage.setItem("k", "{not json");
    expect(recall("k")).toBeNull();
  });

  it("older than the server keeps them are swept on load, not only when the same file comes back", () => {
    const day = 24 * 3600 * 1000;
    remember("razmetka.upload:1:old", 1, 1000);
    remember("razmetka.upload:1:new", 2, 1000 + day);
    storage.setItem("razmetka.upload:1:junk", "{");
    storage.setItem("someone-else", "{\"at\": 0}");
    forgetStale(1000 + day + 60_000);
    expect([...storage.data.keys()].sort()).toEqual(["razmetka.upload:1:new", "someone-else"]);
  });
});

describe("opening a session", () => {
  const base = "/api/projects/3/images/uploads/";
  const noop = () => {};

  it("goes on with the remembered one while the server still receives it", async () => {
    const key = resumeKey(3, file(), "");
    remember(key, 7);
    serve({ [`GET ${base}7/`]: () => json(200, session({ id: 7, received_bytes: 8 })) });
    const { session: s, resumed } = await openSession(3, file(), "", key, noop);
    expect(resumed).toBe(true);
    expect(s.id).toBe(7);
    expect(s.received_bytes).toBe(8);
    expect(calls.map((c) => c.method)).toEqual(["GET"]); // no new session
  });

  it.each([
    ["gone", () => json(404, { detail: "Upload not found." })],
    ["finished", () => json(200, session({ id: 7, status: "done" }))],
    ["failed", () => json(200, session({ id: 7, status: "failed" }))],
    ["for another file", () => json(200, session({ id: 7, size_bytes: 99 }))],
  ])("starts a new one when the remembered one is %s, and remembers that", async (_, answer) => {
    const key = resumeKey(3, file(), "");
    remember(key, 7);
    serve({ [`GET ${base}7/`]: answer, [`POST ${base}`]: () => json(201, session({ id: 8 })) });
    const { session: s, resumed } = await openSession(3, file(), "", key, noop);
    expect(resumed).toBe(false);
    expect(s.id).toBe(8);
    expect(recall(key)).toBe(8);
  });

  it("remembers a new session, but not one the server answered at once (a known duplicate)", async () => {
    const key = resumeKey(3, file(), "");
    serve({ [`POST ${base}`]: () => json(201, session({ id: 9 })) });
    await openSession(3, file(), "", key, noop);
    expect(recall(key)).toBe(9);
    forget(key);
    serve({ [`POST ${base}`]: () => json(201, session({ id: 10, status: "done" })) });
    await openSession(3, file(), "", key, noop);
    expect(recall(key)).toBeNull();
  });

  it("resumes a reloaded upload whose bytes are all in, and forgets the key once it is through", async () => {
    const f = file();
    const sha = await sha256(new ArrayBuffer(20));
    const key = resumeKey(3, f, sha);
    remember(key, 12);
    const report = { created: [5], duplicates: [], errors: [] };
    serve({
      // The finishing chunk's answer was lost with the page: all 20 bytes are on the server.
      [`GET ${base}12/`]: () => json(200, session({ id: 12, received_bytes: 20 })),
      [`POST ${base}12/finish/`]: () => json(200, session({ id: 12, received_bytes: 20, status: "done", result: report })),
    });
    const seen: Progress[] = [];
    const result = await uploadFile(3, f, (p) => seen.push(p));
    expect(result.created).toEqual([5]);
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([`GET ${base}12/`, `POST ${base}12/finish/`]); // nothing sent again
    expect(seen.at(-1)).toMatchObject({ phase: "processing", resumedFrom: 20 });
    expect(recall(key)).toBeNull();
  });

  it("keeps the key when the connection is lost for good, so picking the file again resumes", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout"] }); // the retry waits; hashing still runs for real
    const f = file();
    const sha = await sha256(new ArrayBuffer(20));
    const key = resumeKey(3, f, sha);
    remember(key, 13);
    serve({ [`GET ${base}13/`]: () => json(503, { detail: "down" }) });
    const outcome = uploadFile(3, f, () => {}).then(() => "done", (e) => e.status);
    await vi.waitFor(() => expect(calls.length).toBeGreaterThan(0)); // hashed, then asked the server
    await vi.runAllTimersAsync();
    expect(await outcome).toBe(503);
    expect(calls.length).toBeGreaterThan(5); // it kept asking before giving up
    expect(recall(key)).toBe(13);
    vi.useRealTimers();
  });

  it("keeps the key when signed out meanwhile (403), so the same file resumes after signing in", async () => {
    // It was forgotten: after signing in again the file started over from its first byte.
    const f = file();
    const key = resumeKey(3, f, await sha256(new ArrayBuffer(20)));
    remember(key, 14);
    serve({ [`GET ${base}14/`]: () => json(403, { detail: "Authentication credentials were not provided." }) });
    const status = await uploadFile(3, f, () => {}).then(() => "done", (e) => e.status);
    expect(status).toBe(403);
    expect(calls.map((c) => c.method)).toEqual(["GET"]); // no new session opened
    expect(recall(key)).toBe(14);
  });

  it("stops at once when its signal is aborted, keeping the key", async () => {
    const f = file();
    const key = resumeKey(3, f, await sha256(new ArrayBuffer(20)));
    remember(key, 15);
    const stop = new AbortController();
    serve({ [`GET ${base}15/`]: () => { stop.abort(); return json(200, session({ id: 15, received_bytes: 8 })); } });
    const outcome = await uploadFile(3, f, () => {}, stop.signal).then(() => "done", (e) => e.message);
    expect(outcome).toBe("Upload stopped.");
    expect(calls.map((c) => c.method)).toEqual(["GET"]); // no chunk sent after the stop
    expect(recall(key)).toBe(15);
  });
});

describe("cancelling and refusals", () => {
  const base = "/api/projects/3/images/uploads/";

  it("a cancel stops sending, has the server drop the session and forgets the key", async () => {
    const f = file();
    const key = resumeKey(3, f, await sha256(new ArrayBuffer(20)));
    remember(key, 16);
    const stop = new AbortController();
    serve({
      [`GET ${base}16/`]: () => { stop.abort(CANCEL); return json(200, session({ id: 16, received_bytes: 8 })); },
      [`DELETE ${base}16/`]: () => new Response(null, { status: 204 }),
    });
    const outcome = await uploadFile(3, f, () => {}, stop.signal).then(() => "done", (e) => e);
    expect(outcome).toBeInstanceOf(UploadCancelled);
    expect(outcome.dropped).toBe(true);
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([`GET ${base}16/`, `DELETE ${base}16/`]); // no chunk
    expect(recall(key)).toBeNull(); // nothing to resume: picking it again starts over
  });

  it("a cancel the server can no longer take (the file is being processed) says so", async () => {
    const f = file();
    const key = resumeKey(3, f, await sha256(new ArrayBuffer(20)));
    remember(key, 17);
    const stop = new AbortController();
    serve({
      [`GET ${base}17/`]: () => { stop.abort(CANCEL); return json(200, session({ id: 17, received_bytes: 8 })); },
      [`DELETE ${base}17/`]: () => json(400, { detail: "This upload is being processed and can no longer be cancelled." }),
    });
    const outcome = await uploadFile(3, f, () => {}, stop.signal).then(() => "done", (e) => e);
    expect(outcome).toBeInstanceOf(UploadCancelled);
    expect(outcome.dropped).toBe(false);
    expect(outcome.message).toMatch(/already had the whole file/);
  });

  it("an empty file is refused in plain words, without asking the server", async () => {
    serve({});
    const outcome = await uploadFile(3, file("empty.jpg", 0), () => {}).then(() => "done", (e) => e.message);
    expect(outcome).toBe(EMPTY_FILE);
    expect(outcome).not.toMatch(/size_bytes/);
    expect(calls).toEqual([]);
  });

  it("a refused session is explained without the API's field names", async () => {
    serve({ [`POST ${base}`]: () => json(400, { size_bytes: ["The file is empty (0 bytes)."] }) });
    const outcome = await openSession(3, file(), "", null, () => {}).then(() => "opened", (e) => e);
    expect(outcome.status).toBe(400);
    expect(outcome.message).toBe("The file is empty (0 bytes).");
  });
});
