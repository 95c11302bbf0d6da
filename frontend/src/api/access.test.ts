import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "./client";
import { retryable } from "./access";
import { CLOSE_FORBIDDEN, ProjectSocket } from "./live";

/** A stand-in for the browser's WebSocket that the test drives by hand. */
class FakeSocket {
  static all: FakeSocket[] = [];
  onopen: ((e: unknown) => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: unknown) => void) | null = null;
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  send() {}
  close() {
    this.onclose?.({ code: 1000 });
  }
}

function connect() {
  const denied: number[] = [];
  const events: string[] = [];
  const socket = new ProjectSocket(7, {
    url: (p) => `ws://test/ws/projects/${p}/`,
    WebSocketImpl: FakeSocket as unknown as new (url: string) => WebSocket,
    onForbidden: (p) => denied.push(p),
  });
  socket.on((e) => events.push(e.type));
  return { socket, denied, events };
}

describe("losing access to a project", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
  });
  afterEach(() => vi.useRealTimers());

  it("a 4403 close reports lost access once and stops reconnecting", () => {
    const { denied, events } = connect();
    FakeSocket.all[0].onclose?.({ code: CLOSE_FORBIDDEN });
    vi.advanceTimersByTime(120_000);
    expect(denied).toEqual([7]);
    expect(events).toEqual(["access.revoked"]);
    expect(FakeSocket.all.length).toBe(1);
  });

  it("an access.revoked message does the same", () => {
    const { denied } = connect();
    FakeSocket.all[0].onmessage?.({ data: JSON.stringify({ type: "access.revoked", project: 7 }) });
    FakeSocket.all[0].onclose?.({ code: CLOSE_FORBIDDEN });
    vi.advanceTimersByTime(120_000);
    expect(denied).toEqual([7]);
    expect(FakeSocket.all.length).toBe(1);
  });

  it("any other close still reconnects", () => {
    const { denied } = connect();
    FakeSocket.all[0].onclose?.({ code: 1006 });
    vi.advanceTimersByTime(5_000);
    expect(denied).toEqual([]);
    expect(FakeSocket.all.length).toBe(2);
  });
});

describe("retryable", () => {
  it("offers a retry only for the network and server errors", () => {
    expect(retryable(new ApiError(0, null, "offline"))).toBe(true);
    expect(retryable(new ApiError(502, "bad gateway", "bad gateway"))).toBe(true);
    expect(retryable(new TypeError("fetch failed"))).toBe(true);
    for (const status of [400, 403, 404, 409]) expect(retryable(new ApiError(status, {}, "no"))).toBe(false);
  });
});
