import { useRef, useState } from "react";
import type { Phase, UploadResult } from "../api/upload";
import { Link } from "../router";
import type { ProjectCtx } from "./ProjectLayout";
import { filesFromDrop, imagesOfFolder, type Picked } from "./folderFiles";
import { cancelAllUploads, cancelUpload, isCancellable, startUploads, useUploads } from "./uploadStore";
import "./upload-classes.css";

const SHOWN = 200; // rows drawn; a 10,000-file drop is summarised by the totals

/** An upload that added nothing, skipped nothing and refused nothing: an empty archive. */
const isEmpty = (r?: UploadResult) => !!r && r.created.length === 0 && r.duplicates.length === 0 && r.errors.length === 0;
const mb = (n: number) => (n < 1024 * 1024 ? `${Math.ceil(n / 1024)} KB` : `${(n / (1024 * 1024)).toFixed(n < 10 * 1024 * 1024 ? 1 : 0)} MB`);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
/** Every image in it was already in the project. */
const allKnown = (r?: UploadResult) => !!r && r.created.length === 0 && r.errors.length === 0 && r.duplicates.length > 0;

type Row = { id: number | string; name: string; result?: UploadResult };

/** Image id → the files of this list that stored it, in list order (made once a render: a search
 * of the whole list for each shown row cost 10,000 x 200 steps at every progress tick). */
function storers(rows: Row[]): Map<number, Row[]> {
  const by = new Map<number, Row[]>();
  for (const row of rows) {
    for (const id of row.result?.created ?? []) {
      const list = by.get(id);
      if (list) list.push(row);
      else by.set(id, [row]);
    }
  }
  return by;
}

/** The name of another file of this list that stored the image `it` was a duplicate of: two copies
 * picked together read "already in the project" for the one that lost the race. */
function twinIn(stored: Map<number, Row[]>, it: Row): string | null {
  const dup = it.result?.duplicates.length === 1 ? it.result.duplicates[0].existing_id : null;
  if (dup === null || dup === undefined) return null;
  return stored.get(dup)?.find((o) => o.id !== it.id)?.name ?? null;
}

const LABEL: Record<Phase, string> = {
  waiting: "waiting", hashing: "preparing", sending: "", reconnecting: "reconnecting…", processing: "processing…", done: "uploaded", failed: "failed", cancelled: "cancelled",
};

export function UploadPage({ ctx }: { ctx: ProjectCtx }) {
  // The list outlives this page (uploadStore.ts): leaving and coming back shows running uploads.
  const items = useUploads(ctx.project.id);
  const input = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);
  // Files a folder held that are not images: not sent, counted here.
  const [skipped, setSkipped] = useState<{ names: string[]; none: boolean } | null>(null);
  const start = (files: File[]) => void startUploads(ctx.project.id, files);
  const startPicked = (picked: Picked, folder: boolean) => {
    const none = picked.files.length === 0;
    setSkipped(picked.skipped.length || (folder && none) ? { names: picked.skipped, none } : null);
    start(picked.files);
  };
  const onDrop = (e: React.DragEvent) => {
    e.preventDefault();
    // Folders are expanded (their images, sub-folders included); the items are read at once.
    void filesFromDrop(e.dataTransfer.items, [...e.dataTransfer.files]).then((p) => startPicked(p, false));
  };

  const live = items.filter((i) => i.phase !== "cancelled");
  const total = live.reduce((s, i) => s + i.size, 0);
  const sent = live.reduce((s, i) => s + Math.min(i.sent, i.size), 0);
  const finished = items.filter((i) => i.phase === "done" || i.phase === "failed" || i.phase === "cancelled").length;
  const cancelled = items.length - live.length;
  // Said apart, not dropped: "837 KB of 837 KB" hid a cancelled 34 MB file.
  const cancelledBytes = items.reduce((s, i) => s + (i.phase === "cancelled" ? i.size : 0), 0);
  const cancellable = items.filter(isCancellable).length;
  const created = items.reduce((s, i) => s + (i.result?.created.length ?? 0), 0);
  const duplicates = items.reduce((s, i) => s + (i.result?.duplicates.length ?? 0), 0);
  const errors = items.reduce((s, i) => s + (i.result?.errors.length ?? 0) + (i.error ? 1 : 0), 0);
  // Failures first so they are never hidden below a long list of successes.
  const rows = [...items.filter((i) => i.phase === "failed" || i.result?.errors.length), ...items.filter((i) => !(i.phase === "failed" || i.result?.errors.length))];
  const stored = storers(rows);

  return (
    <main className="page">
      <h1>Upload images</h1>
      {ctx.canAnnotate && ( // viewers have no Upload tab (ProjectLayout)
        <div
          className="dropzone"
          onDragOver={(e) => e.preventDefault()}
          onDrop={onDrop}
          onClick={() => input.current?.click()}
        >
          <p>Drop images, zip archives or folders here, or choose them below. Large sets are fine: files go in pieces and resume after a dropped connection. After a reload, pick the same files again to go on where they stopped.</p>
          <div className="upload-pickers" onClick={(e) => e.stopPropagation()}>
            <button type="button" className="primary" onClick={() => input.current?.click()}>Choose files</button>
            <button type="button" onClick={() => folderInput.current?.click()}
              title="Every image in the folder and its sub-folders; other files are skipped">Choose a folder</button>
          </div>
          <input ref={input} type="file" name="files" multiple accept="image/*,.zip" hidden
            onChange={(e) => { setSkipped(null); start([...(e.target.files ?? [])]); e.target.value = ""; }} />
          <input ref={folderInput} type="file" name="folder" multiple hidden {...{ webkitdirectory: "", directory: "" }}
            onChange={(e) => { startPicked(imagesOfFolder([...(e.target.files ?? [])]), true); e.target.value = ""; }} />
        </div>
      )}
      {skipped && (
        <p className={`small ${skipped.none ? "warn" : "muted"}`} role="status" data-testid="upload-skipped">
          {skipped.names.length > 0 && (
            <>Skipped {plural(skipped.names.length, "file")} that {skipped.names.length === 1 ? "is" : "are"} not an image (JPEG, PNG, WebP, BMP or TIFF):{" "}
              <span className="skipped-names" title={skipped.names.slice(0, 50).join("\n")}>{skipped.names.slice(0, 5).join(", ")}{skipped.names.length > 5 ? ", …" : ""}</span>.{" "}</>
          )}
          {skipped.none && "No images were found in that folder, so nothing was sent."}
        </p>
      )}
      {items.length > 0 && (
        <section className="card" data-testid="upload-total" aria-label="total progress">
          <div className="job-head">
            <b>{finished} of {items.length} files</b>
            <span className="spacer" />
            <span className="small nowrap">{mb(sent)} of {mb(total)}{cancelled > 0 && ` · ${mb(cancelledBytes)} cancelled`}</span>
            {cancellable > 0 && (
              <button type="button" className="small" data-testid="upload-cancel-all"
                onClick={() => cancelAllUploads(ctx.project.id)}>Cancel all</button>
            )}
          </div>
          <progress max={total || 1} value={sent} aria-label="total bytes sent" />
          <p className="small" data-testid="upload-summary">
            <span data-testid="upload-total-created">{created} added</span>
            {duplicates > 0 && <span data-testid="upload-duplicates">, {plural(duplicates, "duplicate")} skipped</span>}
            {errors > 0 && <span className="error-text" data-testid="upload-error-count">, {errors} refused</span>}
            {cancelled > 0 && <span data-testid="upload-cancelled-count">, {cancelled} cancelled</span>}
          </p>
        </section>
      )}
      <ul className="uploads">
        {rows.slice(0, SHOWN).map((it) => { const twin = twinIn(stored, it); return (
          <li key={it.id} className={`upload upload-${it.phase}`} data-testid="upload-item" data-phase={it.phase}>
            <div className="job-head">
              <b className="ellipsis" title={it.name}>{it.name}</b>
              <span className="spacer" />
              <span className="small nowrap" data-testid="upload-state">
                {it.phase === "sending" ? `${Math.floor((it.sent / Math.max(it.size, 1)) * 100)}%`
                  : it.phase === "done" && isEmpty(it.result) ? "nothing added"
                  : it.phase === "done" && allKnown(it.result) ? (twin ? (twin === it.name ? "uploaded above" : "a copy of another file here") : "already in the project") : LABEL[it.phase]}
              </span>
              {isCancellable(it) && (
                <button type="button" className="small" aria-label={`Cancel ${it.name}`} title={`Stop uploading ${it.name}`}
                  onClick={() => cancelUpload(ctx.project.id, it.id)}>Cancel</button>
              )}
            </div>
            {it.phase !== "failed" && it.phase !== "cancelled" && <progress max={Math.max(it.size, 1)} value={Math.min(it.sent, it.size)} />}
            {it.resumedFrom !== undefined && it.resumedFrom > 0 && (
              <p className="small muted" data-testid="upload-resumed">Resumed: {mb(it.resumedFrom)} were already on the server.</p>
            )}
            {it.note && <p className="small muted" role="status">{it.note}</p>}
            {/* One style for a refused file, whether the whole upload failed (an empty file) or the
                server refused it (a corrupt picture): a small red line under the name, not a large red paragraph. */}
            {it.error && (
              <ul className="errors small" data-testid="upload-failed">
                <li className="error"><b className="ellipsis-inline" title={it.name}>{it.name}</b>: {it.error}</li>
              </ul>
            )}
            {it.result && isEmpty(it.result) && (
              <p className="warn" role="alert" data-testid="upload-empty">
                {/\.zip$/i.test(it.name) ? "This archive holds no images, so nothing was added. Check that you zipped the right folder." : "No images were found in what you chose, so nothing was added."}
              </p>
            )}
            {it.result && !isEmpty(it.result) && (
              <div className="small">
                {it.result.created.length > 0 && <span data-testid="upload-created">{it.result.created.length} added</span>}
                {it.result.duplicates.length > 0 && (
                  <span data-testid="upload-duplicate">{it.result.created.length > 0 ? ", " : ""}{plural(it.result.duplicates.length, "duplicate")} skipped
                    {it.result.duplicates.length === 1 && (twin
                      ? (twin === it.name ? ` (uploaded above, stored as image id ${it.result.duplicates[0].existing_id})`
                        : ` (the same file as ${twin} in this upload, stored as image id ${it.result.duplicates[0].existing_id})`)
                      : ` (already in the project as image id ${it.result.duplicates[0].existing_id})`)}</span>
                )}
                {it.result.errors.length > 0 && (
                  <ul className="errors" data-testid="upload-errors">
                    {it.result.errors.map((e, i) => <li key={i}><b className="ellipsis-inline" title={e.name}>{e.name}</b>: {e.error}</li>)}
                  </ul>
                )}
              </div>
            )}
          </li>
        ); })}
      </ul>
      {rows.length > SHOWN && <p className="muted small">…and {rows.length - SHOWN} more files (counted in the totals above).</p>}
      {/* Only admins start pre-annotation; the others were sent to a dashboard that said so. */}
      {items.some((i) => i.phase === "done") && (ctx.isAdmin
        ? <Link to={`/p/${ctx.project.id}`} className="upload-next">Back to the dashboard to pre-annotate →</Link>
        : <Link to={`/p/${ctx.project.id}/images`} className="upload-next">See the images →</Link>)}
    </main>
  );
}
