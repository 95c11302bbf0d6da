import { describe, expect, it } from "vitest";
import { describe as describeEntry, remapEntries, type UndoEntry } from "./useUndoHistory";

describe("undo stack ids", () => {
  it("moves every entry naming a re-created object to its new id", () => {
    const snap = { id: 7, label_class: 1 } as any;
    const list: UndoEntry[] = [
      { t: "class", id: 7, classId: 2 },
      { t: "recreate", snap },
      { t: "mask", id: 8, rle: { size: [1, 1], counts: "01" } },
      { t: "review", id: 7, class_review: "pending", mask_review: "accepted" },
    ];
    const out = remapEntries(list, 7, 42);
    expect(out.map((e) => (e.t === "recreate" ? e.snap.id : e.id))).toEqual([42, 42, 8, 42]);
    expect(snap.id).toBe(7); // entries are copied, not mutated
  });
  it("names what an undo takes back", () => {
    expect(describeEntry({ t: "recreate", snap: {} as any })).toBe("the deletion");
    expect(describeEntry({ t: "delete", id: 1 })).toBe("the new object");
    expect(describeEntry({ t: "shape", id: 1, classId: null, rle: { size: [1, 1], counts: "1" } })).toBe("the restore");
  });
});
