import { describe, expect, it } from "vitest";
import { InFlight } from "./inflight";

describe("in-flight actions", () => {
  it("settles only after every tracked action and what it started meanwhile", async () => {
    const f = new InFlight();
    const log: string[] = [];
    let finishDelete!: () => void;
    f.track(new Promise<void>((r) => (finishDelete = r)).then(() => {
      log.push("delete recorded");
      f.track(Promise.resolve().then(() => log.push("follow-up")));
    }));
    const waited = f.settled().then(() => log.push("undo runs"));
    await Promise.resolve();
    expect(log).toEqual([]);
    finishDelete();
    await waited;
    expect(log).toEqual(["delete recorded", "follow-up", "undo runs"]);
    expect(f.size).toBe(0);
  });
  it("a failed action does not block", async () => {
    const f = new InFlight();
    f.track(Promise.reject(new Error("offline"))).catch(() => undefined);
    await f.settled();
    expect(f.size).toBe(0);
  });
});
