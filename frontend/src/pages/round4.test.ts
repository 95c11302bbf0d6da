import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import { lostAccessMessage, LOST_ACCESS_MESSAGE, onLostAccess, type LostAccess } from "../api/access";
import { ProjectSocket } from "../api/live";
import { signInError, waitText } from "./Login";
import { deleteImageError, deleteImageQuestion } from "./Images";
import { namesProject } from "./Settings";
import { isProjectGoneNote } from "./ProjectLayout";

describe("sign-in lockout words", () => {
  it("say the wait in minutes, never DRF's seconds suffix", () => {
    expect(waitText(900)).toBe("15 minutes");
    expect(waitText(60)).toBe("1 minute");
    expect(waitText(61)).toBe("2 minutes");
    expect(waitText(42)).toBe("42 seconds");
    const throttled = new ApiError(429, null, "Request was throttled. Expected available in 42 seconds.");
    expect(signInError(throttled)).toBe("Too many sign-in attempts from this address. Try again in 42 seconds.");
    const old = new ApiError(429, null, "Too many wrong passwords: sign-in is locked. Expected available in 900 seconds.");
    expect(signInError(old)).toBe("Too many wrong passwords: sign-in is locked. Try again in 15 minutes.");
    const plain = new ApiError(429, null, "Too many failed sign-ins: this account is locked. Try again in 15 minutes.");
    expect(signInError(plain)).toBe(plain.message);
    expect(signInError(new ApiError(400, null, "Wrong username or password."))).toBe("Wrong username or password.");
  });
});

describe("deleting things", () => {
  it("an image's question names it and counts its objects", () => {
    expect(deleteImageQuestion({ id: 4, original_name: "a.png", annotation_count: 3 })).toContain('#4 "a.png"');
    expect(deleteImageQuestion({ id: 4, original_name: "a.png", annotation_count: 3 })).toContain("Its 3 objects");
    expect(deleteImageQuestion({ id: 4, original_name: "a.png", annotation_count: 1 })).toContain("Its 1 object and");
    expect(deleteImageQuestion({ id: 4, original_name: "a.png", annotation_count: 0 })).toContain("no objects");
  });
  it("an image's question says who has it open for review (not when it is yourself)", () => {
    const im = { id: 4, original_name: "a.png", annotation_count: 1, claimed_by: "boris" };
    expect(deleteImageQuestion(im, "olga")).toContain("boris has it open for review right now.");
    expect(deleteImageQuestion(im, "boris")).not.toContain("has it open");
    expect(deleteImageQuestion({ ...im, claimed_by: null }, "olga")).not.toContain("has it open");
  });
  it("a version conflict is explained, not shown as a code", () => {
    const text = deleteImageError(new ApiError(409, {}, "This image was changed by someone else"), "a.png");
    expect(text).toContain("changed since this list was loaded");
    expect(text).toContain("not deleted");
  });
  it("an image opened by someone since the list loaded is named so (round 15)", () => {
    const text = deleteImageError(new ApiError(409, { code: "claimed", claimed: [{ image: 3, claimed_by: "rita" }] }, "held"), "a.png");
    expect(text).toContain("was opened by rita since this list was loaded");
  });
  it("the project is deleted only once its exact name is typed", () => {
    expect(namesProject("Shop floor", "Shop floor")).toBe(true);
    expect(namesProject(" Shop floor ", "Shop floor")).toBe(true);
    expect(namesProject("shop floor", "Shop floor")).toBe(false);
    expect(namesProject("", "Shop floor")).toBe(false);
  });
});

describe("a deleted project", () => {
  it("names who deleted it", () => {
    expect(lostAccessMessage({ deletedBy: "oleg" }, "rita")).toBe("This project was deleted by oleg.");
    expect(lostAccessMessage({ deletedBy: "rita" }, "rita")).toBe("You deleted this project.");
    expect(lostAccessMessage({ deletedBy: null })).toBe("This project was deleted.");
    expect(lostAccessMessage({})).toBe(LOST_ACCESS_MESSAGE);
    expect(isProjectGoneNote("Couldn't load images: Project not found.")).toBe(true);
    expect(isProjectGoneNote("Image not found.")).toBe(false);
  });

  class FakeSocket {
    static all: FakeSocket[] = [];
    onopen: ((e: unknown) => void) | null = null;
    onmessage: ((e: { data: string }) => void) | null = null;
    onclose: ((e: unknown) => void) | null = null;
    constructor(public url: string) { FakeSocket.all.push(this); }
    send() {}
    close() { this.onclose?.({ code: 1000 }); }
  }
  beforeEach(() => { vi.useFakeTimers(); FakeSocket.all = []; });
  afterEach(() => vi.useRealTimers());

  it("the socket reports project.deleted of its own project once, with who, and stops", () => {
    const heard: [number, LostAccess][] = [];
    const off = onLostAccess((p, how) => heard.push([p, how]));
    const events: string[] = [];
    const socket = new ProjectSocket(7, { url: (p) => `ws://test/${p}`, WebSocketImpl: FakeSocket as unknown as new (url: string) => WebSocket });
    socket.on((e) => events.push(e.type));
    const send = (m: object) => FakeSocket.all[0].onmessage?.({ data: JSON.stringify(m) });
    send({ type: "project.deleted", project: 8, by: "oleg" }); // another project's: this page's is fine
    expect(heard).toEqual([]);
    send({ type: "project.deleted", project: 7, by: "oleg" });
    send({ type: "access.revoked", project: 7 }); // the server's close that follows it
    vi.advanceTimersByTime(120_000);
    expect(heard).toEqual([[7, { deletedBy: "oleg" }]]);
    expect(events).toEqual(["project.deleted"]);
    expect(FakeSocket.all.length).toBe(1);
    off();
  });
});
