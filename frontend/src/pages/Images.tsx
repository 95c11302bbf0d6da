import { useEffect, useRef, useState } from "react";
import { api, ApiError, get, P, qs, type ImageRow, type Page } from "../api/client";
import { count } from "../plural";
import { checkProjectAccess } from "../api/access";
import { subscribe } from "../api/live";
import { notify } from "../notify";
import { Link, navigate, usePath } from "../router";
import type { ProjectCtx } from "./ProjectLayout";
import { LockIcon } from "../review/icons";
import "./pages-round4.css";

/** Who else has the row's image open (as the list showed it), or null: the badge, the confirms and
 * the deletions' ?force=1 all ask this. */
export function otherHolder(im: { claimed_by?: string | null }, me?: string): string | null {
  return im.claimed_by && im.claimed_by !== me ? im.claimed_by : null;
}

/** The question before deleting an image: which one, and what goes with it. */
export function deleteImageQuestion(im: Pick<ImageRow, "id" | "original_name" | "annotation_count"> & { claimed_by?: string | null },
  me?: string): string {
  const n = im.annotation_count ?? 0;
  const objects = n === 0 ? "It has no objects." : `Its ${n} object${n === 1 ? "" : "s"} and their review history go with it.`;
  // Someone reviewing it loses their open work: say who (it went unsaid).
  const holder = otherHolder(im, me);
  const open = holder ? ` ${holder} has it open for review right now.` : "";
  return `Delete image #${im.id} "${im.original_name}"?${open} ${objects} This can't be undone.`;
}

/** What a refused image deletion means, in words (null: nothing to say, the project is gone). */
export function deleteImageError(e: unknown, name: string): string {
  if (e instanceof ApiError && e.status === 409 && e.code === "claimed")
    return `"${name}" was opened by ${e.body?.claimed?.[0]?.claimed_by ?? "someone"} since this list was loaded, so it was not deleted. `
      + "The list is reloaded: delete it again if you still mean to.";
  if (e instanceof ApiError && e.status === 409)
    return `"${name}" changed since this list was loaded (someone reviewed or edited it), so it was not deleted. `
      + "The list is reloaded: check the image and delete it again if you still mean to.";
  if (e instanceof ApiError && e.status === 404) return `"${name}" was already deleted.`;
  if (e instanceof ApiError && e.status === 403) return "Only a project admin can delete images.";
  return `Couldn't delete "${name}": ${(e as Error).message}`;
}

const NAME_MIN = 180;
const SORTABLE = { id: "#", original_name: "Name", status: "Status" } as const;
type SortKey = keyof typeof SORTABLE;

/** The list's state lives in the URL (status, class, ordering, page): reload and share keep it. */
export function readListParams(search: string) {
  const q = new URLSearchParams(search);
  const ordering = q.get("ordering") ?? "";
  const key = ordering.replace(/^-/, "");
  return {
    status: q.get("status") ?? "",
    label_class: q.get("label_class") ?? "",
    ordering: key in SORTABLE ? ordering : "",
    page: Math.max(1, Number(q.get("page")) || 1),
  };
}

export function ImagesPage({ ctx }: { ctx: ProjectCtx }) {
  const pid = ctx.project.id;
  const path = usePath();
  const { status, label_class: cls, ordering, page } = readListParams(path.includes("?") ? path.slice(path.indexOf("?")) : "");
  const [data, setData] = useState<Page<ImageRow> | null>(null);
  const [tick, setTick] = useState(0);
  const [deleting, setDeleting] = useState<number | null>(null);
  const deletingRef = useRef(false);
  /** Rows ticked for "Delete selected": ids with the version the list showed (checked by the server). */
  const [picked, setPicked] = useState<Map<number, ImageRow>>(new Map());
  const canDelete = ctx.isAdmin; // the API: DELETE /images/{id}/ needs the manage capability (admins)
  const update = (patch: Partial<{ status: string; label_class: string; ordering: string; page: number }>, replace = false) => {
    const next = { status, label_class: cls, ordering, page, ...patch };
    // A history entry per filter, sort or page: Back returns to the list as it was (it replaced
    // the entry, and Back after a deep link left the app).
    navigate(`/p/${pid}/images${qs({ ...next, page: next.page > 1 ? next.page : undefined })}`, replace);
  };
  useEffect(() => {
    let stale = false; // a slower answer to an older query must not overwrite a newer one
    get<Page<ImageRow>>(`${P(pid)}/images/${qs({ status, label_class: cls, ordering, page, page_size: 100 })}`)
      .then((d) => !stale && setData(d))
      .catch(async (e) => {
        if (stale) return;
        // The page's rows went (deleted here or elsewhere): show the last page there is, not the
        // rows that were deleted under "There is no page 2" (black-box round 16).
        const last = e instanceof ApiError && e.status === 404 ? Number(e.body?.last_page) : NaN;
        if (Number.isInteger(last) && last >= 1 && last < page) { update({ page: last }, true); return; }
        // A 404 here is the project's: the layout then says it is gone, instead of this toast.
        if (e instanceof ApiError && e.status === 404 && (await checkProjectAccess(pid)) === "lost") return;
        if (!stale) notify(`Couldn't load images: ${e.message}`, "error");
      });
    return () => { stale = true; };
  }, [pid, status, cls, ordering, page, tick]);
  useEffect(() => {
    // A big upload sends one event per image: reload at most twice a second, not per event.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = subscribe(pid, (ev) => {
      if (!(ev.type.startsWith("image.") || ev.type === "resync") || timer) return;
      timer = setTimeout(() => { timer = undefined; setTick((t) => t + 1); }, 500);
    });
    return () => { off(); clearTimeout(timer); };
  }, [pid]);

  const remove = async (im: ImageRow) => {
    if (deletingRef.current || !window.confirm(deleteImageQuestion(im, ctx.me.username))) return;
    deletingRef.current = true;
    setDeleting(im.id);
    try {
      // The confirm named who holds it: deleting it from under them is then meant (?force=1).
      const held = otherHolder(im, ctx.me.username);
      await api("DELETE", `${P(pid)}/images/${im.id}/${held ? "?force=1" : ""}`, { version: im.version });
      notify(`Deleted "${im.original_name}".`);
      setData((d) => d && { ...d, count: d.count - 1, results: d.results.filter((r) => r.id !== im.id) });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && (await checkProjectAccess(pid)) === "lost") return;
      notify(deleteImageError(e, im.original_name), e instanceof ApiError && e.status === 404 ? "info" : "error");
    } finally {
      deletingRef.current = false;
      setDeleting(null);
      setTick((t) => t + 1);
    }
  };

  // Only rows on screen stay ticked: a filter, sort or page change hid ticked rows and "Delete
  // selected" then deleted them unseen (black-box round 15). A reload keeps the ticked rows it
  // still shows, as shown now (their version is what the server checks).
  useEffect(() => { setPicked(new Map()); }, [pid, status, cls, ordering, page]);
  useEffect(() => {
    if (!data) return;
    setPicked((old) => {
      if (!old.size) return old;
      const next = new Map<number, ImageRow>();
      for (const im of data.results) if (old.has(im.id)) next.set(im.id, im);
      return next.size === old.size && [...next].every(([id, im]) => old.get(id) === im) ? old : next;
    });
  }, [data]);
  const pick = (im: ImageRow, on: boolean) => setPicked((old) => {
    const next = new Map(old);
    if (on) next.set(im.id, im); else next.delete(im.id);
    return next;
  });
  const pageRows = data?.results ?? [];
  const allPicked = pageRows.length > 0 && pageRows.every((im) => picked.has(im.id));
  const pickPage = (on: boolean) => setPicked((old) => {
    const next = new Map(old);
    for (const im of pageRows) if (on) next.set(im.id, im); else next.delete(im.id);
    return next;
  });
  // Clearing 200 images took 200 clicks and 200 confirms: one request for the ticked ones.
  const removePicked = async () => {
    const rows = [...picked.values()];
    if (!rows.length || deletingRef.current) return;
    const others = rows.map((im) => otherHolder(im, ctx.me.username)).filter((h): h is string => h !== null);
    const open = others.length;
    const holders = [...new Set(others)].join(", ");
    const names = rows.slice(0, 5).map((im) => `"${im.original_name}"`).join(", ") + (rows.length > 5 ? ` and ${rows.length - 5} more` : "");
    const question = `Delete ${count(rows.length, "image")} with their objects (${names})?${open ? ` ${count(open, "image")} ${open > 1 ? "are" : "is"} open by ${holders} now.` : ""} This can't be undone.`;
    if (!window.confirm(question)) return;
    deletingRef.current = true;
    setDeleting(-1);
    try {
      const res = await api<{ deleted: number[] }>("POST", `${P(pid)}/images/delete/${open ? "?force=1" : ""}`,
        { images: rows.map((im) => [im.id, im.version]) });
      notify(`Deleted ${count(res.deleted.length, "image")}.`);
      setPicked(new Map());
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && (await checkProjectAccess(pid)) === "lost") return;
      notify(`Nothing was deleted: ${(e as Error).message}`, "error");
    } finally {
      deletingRef.current = false;
      setDeleting(null);
      setTick((t) => t + 1);
    }
  };

  // Column widths in px; the name's 0 takes what is left (at least NAME_MIN).
  const cols = [...(canDelete ? [36] : []), 70, 64, 0, 110, 110, 86, 86, 150, ...(canDelete ? [90] : [])];
  const sortHeader = (key: SortKey) => {
    const active = ordering.replace(/^-/, "") === key || (!ordering && key === "id");
    const desc = active && ordering.startsWith("-");
    return (
      <th aria-sort={active ? (desc ? "descending" : "ascending") : "none"}>
        <button className="link sort" onClick={() => update({ ordering: active && !desc ? `-${key}` : key === "id" ? "" : key, page: 1 })}>
          {SORTABLE[key]} {active ? (desc ? "▼" : "▲") : ""}
        </button>
      </th>
    );
  };
  return (
    <main className="page">
      <div className="toolbar">
        <h1>Images</h1>
        <select aria-label="status filter" value={status} onChange={(e) => update({ status: e.target.value, page: 1 })}>
          <option value="">All statuses</option>
          <option value="new">New</option>
          <option value="prelabeled">Pre-labeled</option>
          <option value="in_review">In review</option>
          <option value="done">Done</option>
        </select>
        <select aria-label="class filter" value={cls} onChange={(e) => update({ label_class: e.target.value, page: 1 })}>
          <option value="">All classes</option>
          {ctx.classes.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
        </select>
        <span className="muted small">{data ? count(data.count, "image") : ""}</span>
        {canDelete && picked.size > 0 && (
          <>
            <span className="spacer" />
            <button type="button" className="link small" onClick={() => setPicked(new Map())}>Clear selection</button>
            <button type="button" className="danger" data-testid="delete-selected" disabled={deleting !== null}
              onClick={() => void removePicked()}>
              {deleting === -1 ? "Deleting…" : `Delete selected (${picked.size})`}
            </button>
          </>
        )}
      </div>
      {/* The name is the link into an image: it keeps NAME_MIN px, and a narrower window scrolls the
          table in its wrapper (the name column shrank to 0 px at 800 px). */}
      <div className="table-scroll">
      <table className="table fixed" data-testid="images-table" style={{ minWidth: cols.reduce((a, b) => a + b, 0) + NAME_MIN }}>
        <colgroup>{cols.map((w, i) => <col key={i} style={w ? { width: w } : undefined} />)}</colgroup>
        <thead><tr>{canDelete && <th><input type="checkbox" aria-label="select every image on this page" checked={allPicked}
          onChange={(e) => pickPage(e.target.checked)} /></th>}{sortHeader("id")}<th aria-label="Preview"></th>{sortHeader("original_name")}<th>Size</th>{sortHeader("status")}<th>Objects</th><th>Pending</th><th></th>{canDelete && <th aria-label="Actions"></th>}</tr></thead>
        <tbody>
          {data?.results.map((im) => (
            <tr key={im.id} className="clickable"
              onClick={(e) => { if (!(e.target as HTMLElement).closest("a, button, input, label")) navigate(`/p/${pid}/review/${im.id}`); }}>
              {canDelete && <td><input type="checkbox" aria-label={`select image ${im.original_name}`} data-testid={`pick-image-${im.id}`}
                checked={picked.has(im.id)} onChange={(e) => pick(im, e.target.checked)} /></td>}
              <td>{im.id}</td>
              <td><Thumb src={im.thumbnail_url} /></td>
              {/* a link: reached with Tab, opened in a new tab with a middle click */}
              <td className="cell-name"><Link to={`/p/${pid}/review/${im.id}`} className="ellipsis" title={im.original_name}>{im.original_name}</Link></td>
              <td>{im.width}×{im.height}</td>
              <td><span className={`badge badge-${im.status}`}>{im.status.replace("_", " ")}</span></td>
              <td>{im.annotation_count}</td>
              <td>{im.pending_count}</td>
              <td>{otherHolder(im, ctx.me.username) ? <span className="badge badge-locked ellipsis" title={`Open by ${im.claimed_by}`}><LockIcon /> {im.claimed_by}</span> : null}</td>
              {canDelete && (
                <td className="images-actions">
                  <button type="button" className="small danger" data-testid={`delete-image-${im.id}`}
                    aria-label={`Delete image ${im.original_name}`} disabled={deleting !== null}
                    onClick={(e) => { e.stopPropagation(); void remove(im); }}>
                    {deleting === im.id ? "Deleting…" : "Delete"}
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      </div>
      {data && (data.next || data.previous) && (
        <div className="toolbar">
          <button disabled={!data.previous} onClick={() => update({ page: page - 1 })}>← Previous</button>
          <span className="small">page {page}</span>
          <button disabled={!data.next} onClick={() => update({ page: page + 1 })}>Next →</button>
        </div>
      )}
      {data && data.count === 0 && <p className="muted">No images here. <Link to={`/p/${pid}/upload`}>Upload some</Link>.</p>}
    </main>
  );
}

/** A list thumbnail: lazy (only rows on screen load), fixed box so rows never jump. */
export function Thumb({ src, size = 48 }: { src: string; size?: number }) {
  const [failed, setFailed] = useState(false);
  const box = { width: size, height: size, borderRadius: 4, background: "#e2e8f0", display: "block" } as const;
  if (failed) return <span style={box} aria-label="no preview" />;
  return <img src={src} alt="" loading="lazy" decoding="async" style={{ ...box, objectFit: "cover" }} data-testid="thumb" onError={() => setFailed(true)} />;
}
