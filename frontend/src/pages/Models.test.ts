import { describe, expect, it } from "vitest";
import { activationQuestion, dataLabel, modelSummary, pct, type EvaluationRun, type ModelVersion } from "./Models";

describe("Accuracy & models helpers", () => {
  it("formats fractions and missing values", () => {
    expect(pct(0.5049)).toBe("50.5%");
    expect(pct(null)).toBe("—");
    expect(pct(undefined)).toBe("—");
  });
  it("names the data an evaluation ran on", () => {
    const run = { split: "all", total: 4, metrics: { images: 4, gt_objects: 16 } } as unknown as EvaluationRun;
    expect(dataLabel(run)).toBe("4 approved images, 16 objects");
    expect(dataLabel({ ...run, split: "heldout", metrics: {} } as EvaluationRun)).toBe("4 held-out images");
    const gone = { ...run, metrics: { images: 2, gt_objects: 5, deleted_image_ids: [3, 9] } } as unknown as EvaluationRun;
    expect(dataLabel(gone)).toBe("2 approved images, 5 objects (2 deleted while it ran, not scored)");
    expect(dataLabel({ ...run, total: 1, metrics: { images: 1, gt_objects: 1 } } as unknown as EvaluationRun)).toBe("1 approved image, 1 object");
  });
  it("warns before activating a head that measured worse than none", () => {
    const worse = { kind: "head", number: 2, metrics: { heldout_top1: 0.167, heldout_top1_identity: 0.667 } } as unknown as ModelVersion;
    expect(activationQuestion(worse)).toBe("Activate projection head #2? It measured WORSE than no head: gallery top-1 16.7% "
      + "against 66.7% on held-out objects. Every later pre-annotation job uses it, and pending objects are re-scored now.");
    const better = { ...worse, metrics: { heldout_top1: 0.9, heldout_top1_identity: 0.4 } } as unknown as ModelVersion;
    expect(activationQuestion(better)).not.toContain("WORSE");
  });
  it("summarises a head against the identity and a Mask R-CNN by mask AP", () => {
    const head = { kind: "head", metrics: { heldout_top1: 0.9, heldout_top1_identity: 0.4, heldout_objects: 40 } } as unknown as ModelVersion;
    expect(modelSummary(head)).toBe("gallery top-1 90.0% (was 40.0% without the head), 40 held-out objects");
    const mrcnn = { kind: "maskrcnn", metrics: { ap: { mask: { per_class: { ap: 0.25 } } }, heldout_images: 2, steps: 3 } } as unknown as ModelVersion;
    expect(modelSummary(mrcnn)).toBe("mask AP 25.0%, 2 held-out images, 3 steps");
  });
});
