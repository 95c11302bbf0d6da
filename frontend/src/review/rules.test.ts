import { describe, expect, it } from "vitest";
import { awaitsReview, claimMessage, claimRefusal, NO_CLASS_HINT, reviewPlan } from "./rules";

describe("claim refusals", () => {
  it("reads the holder from a 409 claimed answer", () => {
    const e = { status: 409, body: { code: "claimed", claimed_by: "boris", expires_at: "2026-01-01T10:05:00+00:00", detail: "held by boris" } };
    expect(claimRefusal(e)).toEqual({ by: "boris", until: "2026-01-01T10:05:00+00:00" });
    const text = claimMessage(claimRefusal(e)!, "the class");
    expect(text).toContain("boris holds this image until");
    expect(text).toContain("the class was not saved");
  });
  it("ignores version conflicts and other errors", () => {
    expect(claimRefusal({ status: 409, body: { code: "version_conflict", current: {} } })).toBeNull();
    expect(claimRefusal({ status: 403, body: { code: "claimed" } })).toBeNull();
    expect(claimRefusal(new Error("x"))).toBeNull();
    expect(claimRefusal(null)).toBeNull();
  });
  it("words a refusal without an expiry", () => {
    expect(claimMessage({ by: "boris", until: null }, "")).toBe(
      "boris holds this image; your change was not saved. It is read-only for you until they move on.",
    );
  });
});

describe("awaiting review", () => {
  it("marks pending objects a person edited", () => {
    expect(awaitsReview({ class_review: "pending", mask_review: "accepted", source: "model" }, true)).toBe(true);
    expect(awaitsReview({ class_review: "pending", mask_review: "pending", source: "human" }, false)).toBe(true);
    expect(awaitsReview({ class_review: "pending", mask_review: "pending", source: "model" }, false)).toBe(false);
    expect(awaitsReview({ class_review: "accepted", mask_review: "accepted", source: "human" }, true)).toBe(false);
  });
});

describe("review of an object without a class", () => {
  it("accepts only the mask with a, and sends nothing for c", () => {
    expect(reviewPlan({ label_class: null }, "both", "accepted")).toEqual({ target: "mask", note: expect.stringContaining("mask only") });
    expect(reviewPlan({ label_class: null }, "class", "accepted")).toEqual({ target: null, note: NO_CLASS_HINT });
  });
  it("leaves rejections, pending and classified objects alone", () => {
    expect(reviewPlan({ label_class: null }, "both", "rejected")).toEqual({ target: "both" });
    expect(reviewPlan({ label_class: null }, "mask", "accepted")).toEqual({ target: "mask" });
    expect(reviewPlan({ label_class: 3 }, "both", "accepted")).toEqual({ target: "both" });
  });
});
