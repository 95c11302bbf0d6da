import { describe, expect, it, vi } from "vitest";
import { clearForNavigation, currentNotes, dismiss, NAVIGATION_GRACE_MS, notify } from "../notify";
import { parseIdList } from "./exchange";
import { readListParams } from "./Images";
import { ApiError } from "../api/client";
import { parseSub, reportClassesError, tabsFor } from "./ProjectLayout";
import { splitPrompts, validate } from "./Settings";

describe("project routes", () => {
  it("knows its sections and nothing else", () => {
    expect(parseSub("/")).toEqual({ section: "dashboard" });
    expect(parseSub("")).toEqual({ section: "dashboard" });
    expect(parseSub("/export")).toEqual({ section: "export" });
    expect(parseSub("/members/")).toEqual({ section: "members" });
    expect(parseSub("/review/12")).toEqual({ section: "review", imageId: 12 });
    expect(parseSub("/review")).toEqual({ section: "review" });
    expect(parseSub("/memberz")).toBeNull();
    expect(parseSub("/review/abc")).toBeNull();
    expect(parseSub("/export/3")).toBeNull();
  });
});

describe("project tabs", () => {
  it("hide what a role could only be refused", () => {
    const labels = (role: string) => tabsFor(role).map((t) => t.label);
    expect(labels("viewer")).toEqual(["Dashboard", "Images", "Review", "Classes & gallery", "Export", "Accuracy & models"]);
    expect(labels("annotator")).toEqual(["Dashboard", "Upload", "Images", "Review", "Classes & gallery", "Export", "Import", "Accuracy & models"]);
    expect(labels("admin")).toContain("Members");
    expect(labels("admin")).toContain("Settings");
  });

  it("say nothing about classes when the project itself is out of reach (the page says it)", () => {
    expect(reportClassesError(new ApiError(404, { detail: "Project not found." }, "Project not found."))).toBe(false);
    expect(reportClassesError(new ApiError(500, null, "Request failed (500)."))).toBe(true);
    expect(reportClassesError(new ApiError(0, null, "offline"))).toBe(true);
  });
});

describe("toasts", () => {
  it("are cleared on navigation unless raised by the navigating action", () => {
    vi.useFakeTimers();
    currentNotes().forEach((n) => dismiss(n.id));
    const t0 = Date.now();
    notify("old error", "error");
    vi.setSystemTime(t0 + 5000);
    notify("just now", "warn");
    clearForNavigation(t0 + 5000 + NAVIGATION_GRACE_MS / 2);
    expect(currentNotes().map((n) => n.text)).toEqual(["just now"]);
    clearForNavigation(t0 + 5000 + NAVIGATION_GRACE_MS * 2);
    expect(currentNotes()).toEqual([]);
    vi.useRealTimers();
  });

  it("info fades by itself, errors stay", () => {
    vi.useFakeTimers();
    notify("saved", "info");
    notify("broken", "error");
    vi.advanceTimersByTime(10_000);
    expect(currentNotes().map((n) => n.text)).toEqual(["broken"]);
    currentNotes().forEach((n) => dismiss(n.id));
    vi.useRealTimers();
  });
});

describe("export image ids", () => {
  it("reads ids and ranges", () => {
    expect(parseIdList("")).toEqual([]);
    expect(parseIdList("3, 1-2 9;9")).toEqual([1, 2, 3, 9]);
    expect(() => parseIdList("4-2")).toThrow(/not a valid range: write the smaller id first \(2-4\)/);
    // Black-box round 15: "0" was "not a valid range".
    expect(() => parseIdList("0")).toThrow(/"0": image ids start at 1/);
    expect(() => parseIdList("a")).toThrow(/"a" is not an image id/);
    expect(() => parseIdList("1-200000")).toThrow(/At most/);
  });
});

describe("settings validation", () => {
  const ok = {
    name: "Tools", description: "", prompts: "hammer . wrench", box_threshold: "0.3", text_threshold: "0.25", nms_iou: "0.5",
    unknown_threshold: "0.5", min_margin: "0", top_k: "5", unique_classes_per_image: true,
  };
  it("accepts good values and names each bad field", () => {
    expect(validate(ok)).toEqual({});
    expect(splitPrompts(ok.prompts)).toEqual(["hammer", "wrench"]);
    const bad = validate({ ...ok, name: " ", prompts: " . ", box_threshold: "1.2", nms_iou: "", top_k: "0.5" });
    expect(Object.keys(bad).sort()).toEqual(["box_threshold", "name", "nms_iou", "prompts", "top_k"]);
  });
  it("says a name over the API's 200 characters in words", () => {
    expect(validate({ ...ok, name: "n".repeat(200) })).toEqual({});
    expect(validate({ ...ok, name: "n".repeat(201) }).name).toBe("A project name has at most 200 characters: shorten it.");
  });
});

describe("image list URL state", () => {
  it("reads filters, ordering and page, and ignores unknown orderings", () => {
    expect(readListParams("?status=done&ordering=-original_name&page=3")).toEqual({ status: "done", label_class: "", ordering: "-original_name", page: 3 });
    expect(readListParams("?ordering=sha256&page=-2")).toEqual({ status: "", label_class: "", ordering: "", page: 1 });
  });
});
