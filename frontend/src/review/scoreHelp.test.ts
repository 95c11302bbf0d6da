import { describe, expect, it } from "vitest";
import type { Annotation } from "../api/client";
import { scoreHelp } from "./ObjectList";

describe("scoreHelp", () => {
  it("explains a negative margin", () => {
    expect(scoreHelp({ class_margin: -0.21 } as Annotation)).toContain("Negative: another class matched it better");
    expect(scoreHelp({ class_margin: 0.3 } as Annotation)).not.toContain("Negative");
  });
});
