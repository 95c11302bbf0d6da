import { describe, expect, it } from "vitest";
import { stageTimings } from "../pages/Dashboard";
import { shownScores } from "./ObjectList";

const candidates = [
  { class_id: 1, name: "hammer", score: 0.52 },
  { class_id: 2, name: "pliers", score: 0.95 },
  { class_id: 3, name: "saw", score: 0.3 },
];

describe("the score shown for an object's class (U6c)", () => {
  it("keeps the stored score for the class it was scored for", () => {
    expect(shownScores({ label_class: 1, class_score: 0.52, class_margin: -0.43, candidates })).toEqual({ score: 0.52, margin: -0.43 });
  });
  it("shows the chosen class's candidate score after a class change", () => {
    const s = shownScores({ label_class: 2, class_score: 0.52, class_margin: -0.43, candidates });
    expect(s.score).toBe(0.95);
    expect(s.margin).toBeCloseTo(0.43);
  });
  it("shows no score for a class that was no candidate", () => {
    expect(shownScores({ label_class: 9, class_score: 0.52, class_margin: 0.1, candidates })).toEqual({ score: null, margin: null });
  });
  it("keeps the stored scores when there are no candidates", () => {
    expect(shownScores({ label_class: 9, class_score: 0.7, class_margin: 0.1, candidates: [] })).toEqual({ score: 0.7, margin: 0.1 });
  });
});

describe("stage timings (U6a)", () => {
  it("are listed in pipeline order whatever order the server sends", () => {
    expect(stageTimings({ embed: 30, match: 4, detect: 120.4, segment: 80 })).toBe("detect 120 ms · segment 80 ms · embed 30 ms · match 4 ms");
    expect(stageTimings({ match: 1, zeta: 2, detect: 3 })).toBe("detect 3 ms · match 1 ms · zeta 2 ms");
  });
});
