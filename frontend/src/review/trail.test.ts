import { describe, expect, it } from "vitest";
import { afterMove, stepBack } from "./trail";

/** Replays moves between images: "n"/"back"/"forward" add the image left, "p" steps back. */
function replay(start: number, moves: [kind: string, to?: number][]) {
  let trail: number[] = [];
  let current = start;
  for (const [kind, to] of moves) {
    if (kind === "p") {
      const { id, rest } = stepBack(trail, current);
      if (id === null) return { current, none: true, trail };
      trail = afterMove(rest, current, id, true);
      current = id;
    } else {
      trail = afterMove(trail, current, to!, false);
      current = to!;
    }
  }
  return { current, none: false, trail };
}

describe("previous image (p)", () => {
  it("goes back through the images opened with n", () => {
    expect(replay(15, [["n", 11], ["n", 6], ["p"]]).current).toBe(11);
    expect(replay(15, [["n", 11], ["n", 6], ["p"], ["p"]]).current).toBe(15);
    expect(replay(15, [["n", 11], ["n", 6], ["p"], ["p"], ["p"]]).none).toBe(true);
  });
  it("after browser Back/Forward opens the image seen before, never the open one", () => {
    // 15 → 11 → 6, Back (11), Back (15), Forward (11), then p: the image seen before is 15.
    const r = replay(15, [["n", 11], ["n", 6], ["back", 11], ["back", 15], ["forward", 11], ["p"]]);
    expect(r.none).toBe(false);
    expect(r.current).toBe(15);
  });
  it("says there is none on the first image", () => {
    expect(stepBack([], 4)).toEqual({ id: null, rest: [] });
    expect(stepBack([4, 4], 4).id).toBeNull();
  });
});
