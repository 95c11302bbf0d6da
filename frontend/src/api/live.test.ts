import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { LiveEvent } from "./extra";
import { signedInAgain } from "./client";
import { CLOSE_SIGNED_OUT, CLOSE_TOO_MANY, GAP_WAIT_MS, ProjectSocket, TOO_MANY_RETRY_MS } from "./live";
import { EventSequence } from "./liveseq";

/** A stand-in for the browser's WebSocket that the test drives by hand. */
class FakeSocket {
  static all: FakeSocket[] = [];
  onopen: ((e: unknown) => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: unknown) => void) | null = null;
  sent: unknown[] = [];
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.onclose?.({});
  }
  open(helloSeq: number) {
    this.onopen?.({});
    this.push({ type: "hello", project: 7, seq: helloSeq });
  }
  push(msg: unknown) {
    this.onmessage?.({ data: typeof msg === "string" ? msg : JSON.stringify(msg) });
  }
  static get last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }
}

const ev = (seq: number, type = "image.status") => ({ type, project: 7, image: 1, seq });

function connect() {
  const got: LiveEvent[] = [];
  const socket = new ProjectSocket(7, {
    url: (p, since) => `ws://test/ws/projects/${p}/${since === null ? "" : `?since=${since}`}`,
    WebSocketImpl: FakeSocket as unknown as new (url: string) => WebSocket,
  });
  socket.on((e) => got.push(e));
  return { socket, got, seqs: () => got.map((e) => (e.type === "resync" ? "resync" : e.seq)) };
}

describe("EventSequence", () => {
  it("drops duplicates and tracks the last contiguous seq", () => {
    const s = new EventSequence();
    s.hello(10);
    expect([11, 11, 13, 12, 13, 10].map((n) => s.accept(n))).toEqual([true, false, true, true, false, false]);
    expect(s.last).toBe(13);
    expect(s.gap).toBe(false);
  });

  it("reports a gap until it is filled, and only the first hello sets the start", () => {
    const s = new EventSequence();
    s.hello(5);
    s.accept(7);
    expect(s.gap).toBe(true);
    expect(s.newest).toBe(7);
    s.hello(9); // a reconnect's hello: the replay, not the greeting, moves `last`
    expect(s.last).toBe(5);
    s.accept(6);
    expect(s.gap).toBe(false);
    expect(s.last).toBe(7);
  });
});

describe("ProjectSocket", () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it("resumes from the last seq after a reconnect and drops replayed duplicates", () => {
    const { socket, seqs } = connect();
    expect(FakeSocket.last.url).toBe("ws://test/ws/projects/7/");
    FakeSocket.last.open(10);
    FakeSocket.last.push(ev(11));
    FakeSocket.last.push(ev(12));
    FakeSocket.last.close(); // the connection drops
    vi.advanceTimersByTime(2000); // backoff
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.last.url).toBe("ws://test/ws/projects/7/?since=12");
    FakeSocket.last.open(14);
    FakeSocket.last.push(ev(13)); // replayed
    FakeSocket.last.push(ev(14));
    FakeSocket.last.push(ev(14)); // its live copy
    FakeSocket.last.push("{not json");
    expect(seqs()).toEqual([11, 12, 13, 14]);
    socket.close();
  });

  it("asks the server to fill a gap, then reloads if it cannot", () => {
    const { socket, seqs } = connect();
    FakeSocket.last.open(20);
    FakeSocket.last.push(ev(22)); // 21 has not arrived (yet)
    vi.advanceTimersByTime(GAP_WAIT_MS - 1);
    FakeSocket.last.push(ev(21)); // it was only overtaken: no resume needed
    vi.advanceTimersByTime(GAP_WAIT_MS);
    expect(FakeSocket.last.sent).toEqual([]);

    FakeSocket.last.push(ev(24)); // 23 is lost
    vi.advanceTimersByTime(GAP_WAIT_MS);
    expect(FakeSocket.last.sent).toEqual([{ type: "resume", since: 22 }]);
    FakeSocket.last.push(ev(23)); // the server's replay
    FakeSocket.last.push(ev(24));
    expect(seqs()).toEqual([22, 21, 24, 23]);

    FakeSocket.last.push(ev(26)); // 25 is lost and the resume does not bring it back
    vi.advanceTimersByTime(GAP_WAIT_MS);
    expect(FakeSocket.last.sent).toHaveLength(2);
    vi.advanceTimersByTime(GAP_WAIT_MS);
    expect(seqs()).toEqual([22, 21, 24, 23, 26, "resync"]);
    expect(socket.seq.last).toBe(26);
    socket.close();
  });

  it("passes the server's resync on and resumes from its seq", () => {
    const { socket, got, seqs } = connect();
    FakeSocket.last.open(5);
    FakeSocket.last.close();
    vi.advanceTimersByTime(2000);
    expect(FakeSocket.last.url).toBe("ws://test/ws/projects/7/?since=5");
    FakeSocket.last.open(900);
    FakeSocket.last.push({ type: "resync", project: 7, seq: 900 }); // the backlog no longer covers 5
    FakeSocket.last.push(ev(900)); // already covered by the reload
    FakeSocket.last.push(ev(901));
    expect(seqs()).toEqual(["resync", 901]);
    expect(got[0]).toEqual({ type: "resync", project: 7, seq: 900 });
    FakeSocket.last.close();
    vi.advanceTimersByTime(2000);
    expect(FakeSocket.last.url).toBe("ws://test/ws/projects/7/?since=901");
    socket.close();
  });

  it("waits after a sign-out and goes on from the last event once the same user signs in again", () => {
    const signedOut = vi.fn();
    const socket = new ProjectSocket(7, {
      url: (p, since) => `ws://test/ws/projects/${p}/${since === null ? "" : `?since=${since}`}`,
      WebSocketImpl: FakeSocket as unknown as new (url: string) => WebSocket,
      onSignedOut: signedOut,
    });
    FakeSocket.last.open(30);
    FakeSocket.last.push(ev(31));
    FakeSocket.last.onclose?.({ code: CLOSE_SIGNED_OUT });
    expect(signedOut).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60000);
    expect(FakeSocket.all).toHaveLength(1); // no reconnects while signed out
    signedInAgain(); // the page stayed open under the sign-in form (App.tsx)
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.last.url).toBe("ws://test/ws/projects/7/?since=31");
    socket.close();
    signedInAgain(); // a closed socket does not come back
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("says once that too many tabs hold live sockets and asks again slowly", () => {
    const tooMany = vi.fn();
    const socket = new ProjectSocket(7, {
      url: (p) => `ws://test/ws/projects/${p}/`,
      WebSocketImpl: FakeSocket as unknown as new (url: string) => WebSocket,
      onTooMany: tooMany,
    });
    for (let i = 0; i < 3; i++) {
      FakeSocket.last.onclose?.({ code: CLOSE_TOO_MANY });
      vi.advanceTimersByTime(TOO_MANY_RETRY_MS - 1);
      expect(FakeSocket.all).toHaveLength(i + 1);
      vi.advanceTimersByTime(1);
      expect(FakeSocket.all).toHaveLength(i + 2);
    }
    expect(tooMany).toHaveBeenCalledTimes(1);
    socket.close();
  });
});
