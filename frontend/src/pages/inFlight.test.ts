import { describe, expect, it } from "vitest";
import { runExclusive } from "./inFlight";

describe("one request per click", () => {
  it("drops a second run while the first is in flight, and allows one after it", async () => {
    const flag = { current: false };
    const busy: boolean[] = [];
    let sent = 0;
    let release!: () => void;
    const request = () => new Promise<number>((r) => { sent++; release = () => r(sent); });
    const first = runExclusive(flag, (b) => busy.push(b), request);
    const second = runExclusive(flag, (b) => busy.push(b), request); // the double-click
    expect(await second).toBeUndefined();
    expect(sent).toBe(1);
    release();
    expect(await first).toBe(1);
    expect(busy).toEqual([true, false]);
    const third = runExclusive(flag, () => {}, request);
    release();
    expect(await third).toBe(2);
  });

  it("frees the button after a failed request", async () => {
    const flag = { current: false };
    await expect(runExclusive(flag, () => {}, () => Promise.reject(new Error("refused")))).rejects.toThrow("refused");
    expect(flag.current).toBe(false);
  });
});
