/**
 * Files out of folders, for the Upload page: a folder picked with the folder picker
 * (`<input webkitdirectory>`) or dropped onto the page (DataTransferItem.webkitGetAsEntry, read
 * recursively). The image files in it and its sub-folders are taken, each named by its path in
 * the folder ("field/day1/a.jpg", as zips' entries are: the server keeps that name, imports
 * match by the base name); other files are skipped and counted.
 */

/** What the server stores (backend/core/uploads.py ALLOWED_FORMATS), by extension. */
export const IMAGE_NAME = /\.(jpe?g|png|webp|bmp|tiff?)$/i;

export interface Picked {
  files: File[];
  /** Files in the folders that are not images (or are hidden, like ".DS_Store"), not sent. */
  skipped: string[];
}

/** An image by its name; hidden files (".DS_Store", macOS's "._a.jpg" copies) and anything in a
 * hidden folder (".hidden/", ".thumbnails/", ".git/") are not. */
export const isImageName = (path: string) => IMAGE_NAME.test(path) && !path.split("/").some((part) => part.startsWith("."));

/** The same bytes under the folder-relative name (no copy: a File is a reference to them). */
export function withPath(file: File, path: string): File {
  const name = path.replace(/^\/+/, "");
  if (!name || name === file.name) return file;
  return new File([file], name, { type: file.type, lastModified: file.lastModified });
}

/** The files of a folder picker: images kept under their relative path, the rest skipped. */
export function imagesOfFolder(files: File[]): Picked {
  const picked: Picked = { files: [], skipped: [] };
  for (const f of files) {
    const path = (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
    if (isImageName(path)) picked.files.push(withPath(f, path));
    else picked.skipped.push(path);
  }
  return picked;
}

// The File and Directory Entries API, as far as it is used here (lib.dom types it, but tests
// hand in plain objects).
export interface EntryLike {
  isFile: boolean;
  isDirectory: boolean;
  name: string;
  fullPath: string;
  file?: (ok: (f: File) => void, fail?: (e: unknown) => void) => void;
  createReader?: () => { readEntries: (ok: (entries: EntryLike[]) => void, fail?: (e: unknown) => void) => void };
}
interface ItemLike {
  kind: string;
  webkitGetAsEntry?: () => EntryLike | null;
  getAsFile?: () => File | null;
}

const fileOf = (entry: EntryLike) => new Promise<File>((ok, fail) => entry.file!(ok, fail));

/** Every entry in a directory: readEntries answers in batches (100 in Chromium) until an empty one. */
async function children(dir: EntryLike): Promise<EntryLike[]> {
  const reader = dir.createReader!();
  const all: EntryLike[] = [];
  for (;;) {
    const batch = await new Promise<EntryLike[]>((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) return all;
    all.push(...batch);
  }
}

/** The images under a dropped folder, its sub-folders included. */
async function walk(dir: EntryLike, into: Picked): Promise<void> {
  for (const entry of await children(dir)) {
    const path = entry.fullPath.replace(/^\/+/, "") || entry.name;
    if (entry.isDirectory) await walk(entry, into);
    else if (!isImageName(path)) into.skipped.push(path);
    else {
      try {
        into.files.push(withPath(await fileOf(entry), path));
      } catch {
        into.skipped.push(path); // unreadable (permissions, removed meanwhile)
      }
    }
  }
}

/**
 * What a drop holds: dropped files as they are (images and zips, as the file picker takes them),
 * dropped folders expanded to their images. `files` is dataTransfer.files, used when the
 * browser gives no entries. Reads the items at once: a DataTransfer is emptied after the event.
 */
export async function filesFromDrop(items: ArrayLike<ItemLike> | null | undefined, files: File[]): Promise<Picked> {
  const entries: { entry: EntryLike | null; file: File | null }[] = Array.from(items ?? [])
    .filter((i) => i.kind === "file")
    .map((i) => ({ entry: i.webkitGetAsEntry?.() ?? null, file: i.getAsFile?.() ?? null }));
  if (!entries.length || entries.every((e) => !e.entry)) return { files, skipped: [] };
  const picked: Picked = { files: [], skipped: [] };
  for (const { entry, file } of entries) {
    if (entry?.isDirectory) await walk(entry, picked);
    else if (file) picked.files.push(file);
    else if (entry?.isFile) picked.files.push(await fileOf(entry));
  }
  return picked;
}
