import { describe, expect, it } from "vitest";
import { replacedText } from "./useLiveAnnotations";

describe("a job rewriting the open image", () => {
  it("says what went and came, and which job (round 15: proposals vanished without a word)", () => {
    expect(replacedText([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }], [{ id: 1 }, { id: 9 }], 3))
      .toBe("Pre-annotation job #3 replaced this image's untouched proposals (3 removed, 1 added); edits people made are kept.");
    expect(replacedText([{ id: 1 }], [{ id: 1 }, { id: 2 }])).toBe("An import or a re-score changed this image's objects (1 added).");
    expect(replacedText([{ id: 1 }], [{ id: 1 }], 3)).toBeNull();
  });
});
