import { describe, expect, it } from "vitest";
import { filesFromDrop, imagesOfFolder, isImageName, type EntryLike } from "./folderFiles";

const bytes = (name: string) => new File([new Uint8Array(3)], name, { type: name.endsWith(".txt") ? "text/plain" : "" });

/** A dropped file or folder as Chromium hands it out (readEntries answers in batches). */
function fileEntry(path: string): EntryLike {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return { isFile: true, isDirectory: false, name, fullPath: `/${path}`, file: (ok) => ok(bytes(name)) };
}
function dirEntry(path: string, entries: EntryLike[], batch = 2): EntryLike {
  return {
    isFile: false, isDirectory: true, name: path.slice(path.lastIndexOf("/") + 1), fullPath: `/${path}`,
    createReader: () => {
      let at = 0;
      return { readEntries: (ok) => { const part = entries.slice(at, at + batch); at += batch; setTimeout(() => ok(part), 0); } };
    },
  };
}
const item = (entry: EntryLike | null, file: File | null = null) => ({ kind: "file", webkitGetAsEntry: () => entry, getAsFile: () => file });

describe("files out of folders", () => {
  it("knows the images the server takes, and not hidden files", () => {
    expect(["a.jpg", "b.JPEG", "c.png", "d.webp", "e.bmp", "f.tif", "g.tiff"].every(isImageName)).toBe(true);
    expect(["notes.txt", "x.gif", ".DS_Store", "field/._a.jpg", "a.jpg.zip"].some(isImageName)).toBe(false);
  });

  it("a picked folder gives its images under their folder path and counts the rest", () => {
    const pick = (path: string) => Object.assign(bytes(path.slice(path.lastIndexOf("/") + 1)), { webkitRelativePath: path });
    const { files, skipped } = imagesOfFolder([pick("set/a.jpg"), pick("set/notes.txt"), pick("set/day2/b.png"), pick("set/.DS_Store")]);
    expect(files.map((f) => f.name)).toEqual(["set/a.jpg", "set/day2/b.png"]);
    expect(files[0].size).toBe(3);
    expect(skipped).toEqual(["set/notes.txt", "set/.DS_Store"]);
  });

  it("a dropped folder is read to the bottom, every batch of every sub-folder", async () => {
    // Only dataTransfer.files was read: a dropped folder came as one unreadable "file".
    const tree = dirEntry("set", [
      fileEntry("set/a.jpg"), fileEntry("set/readme.txt"), fileEntry("set/b.png"),
      dirEntry("set/day2", [fileEntry("set/day2/c.webp"), dirEntry("set/day2/deep", [fileEntry("set/day2/deep/d.jpg")]), fileEntry("set/day2/e.csv")]),
      fileEntry("set/f.jpeg"),
    ]);
    const loose = bytes("loose.zip");
    const { files, skipped } = await filesFromDrop([item(tree), item(fileEntry("loose.zip"), loose)], [bytes("set"), loose]);
    expect(files.map((f) => f.name)).toEqual(["set/a.jpg", "set/b.png", "set/day2/c.webp", "set/day2/deep/d.jpg", "set/f.jpeg", "loose.zip"]);
    expect(skipped).toEqual(["set/readme.txt", "set/day2/e.csv"]);
  });

  it("falls back to dataTransfer.files when the browser gives no entries", async () => {
    const a = bytes("a.jpg");
    expect((await filesFromDrop([item(null, a)], [a])).files).toEqual([a]);
    expect((await filesFromDrop(undefined, [a])).files).toEqual([a]);
  });
  it("skips images inside hidden folders too", () => {
    expect(isImageName("field/.hidden/a.jpg")).toBe(false);
    expect(isImageName(".thumbnails/b.png")).toBe(false);
    expect(isImageName("field/day.1/a.jpg")).toBe(true);
  });
});
