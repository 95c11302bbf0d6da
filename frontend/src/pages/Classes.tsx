import { useEffect, useRef, useState } from "react";
import { ApiError, del, errorText, get, P, patch, post, uploadWithProgress, type GalleryImage, type GalleryUploadReport, type LabelClass, type Page } from "../api/client";
import { count as plural } from "../plural";
import { subscribe } from "../api/live";
import { notify } from "../notify";
import { retryable } from "../api/access";
import { useInFlight } from "./inFlight";
import type { ProjectCtx } from "./ProjectLayout";
import { ExemplarThumb, LearnedDetails, SourceFilterSelect, type HardNegative, type SourceFilter } from "./galleryLearned";
import "./upload-classes.css";

/** A class name cut for a select's option (the select never grows wider than its card). */
const short = (name: string, max = 40) => (name.length > max ? `${name.slice(0, max - 1)}…` : name);

/** "retryable": the network or the server failed, the same save may still go through. */
type SaveOutcome = "ok" | "retryable" | "refused";

/** A file the upload added whose exact bytes are also an exemplar of another class. */
type AlsoIn = GalleryUploadReport["also_in"][number];
type UploadReport = GalleryUploadReport;

function alsoInText(w: AlsoIn): string {
  return `${w.name.split("/").pop()} (${w.class_name}) is also in ${w.also_in.map((c) => c.class_name).join(", ")}`;
}

export function ClassesPage({ ctx }: { ctx: ProjectCtx }) {
  const pid = ctx.project.id;
  const [gallery, setGallery] = useState<GalleryImage[]>([]);
  const [name, setName] = useState("");
  // null = let the server pick a colour no class uses yet (backend/projects/colors.py)
  const [color, setColor] = useState<string | null>(null);
  const [parent, setParent] = useState<number | "">("");
  const [progress, setProgress] = useState<number | null>(null);
  const [report, setReport] = useState<UploadReport | null>(null);
  const [tick, setTick] = useState(0);
  const [negatives, setNegatives] = useState<HardNegative[]>([]);
  const [source, setSource] = useState<SourceFilter>("all");
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [adding, runAdd] = useInFlight();
  useEffect(() => {
    get<Page<GalleryImage>>(`${P(pid)}/gallery/?page_size=500`).then((p) => setGallery(p.results)).catch((e) => notify(`Couldn't load the gallery: ${e.message}`, "error"));
    get<Page<HardNegative>>(`${P(pid)}/gallery/negatives/?page_size=500`).then((p) => setNegatives(p.results)).catch((e) => notify(`Couldn't load the hard negatives: ${e.message}`, "error"));
    setSelected(new Set());
  }, [pid, tick]);
  useEffect(() => subscribe(pid, (ev) => (ev.type === "gallery.changed" || ev.type === "resync") && (setTick((t) => t + 1), ctx.reloadClasses())), [pid]);

  /** Saves to one class run one after another, each on the version the previous one returned:
   * two quick changes are not a conflict with oneself. */
  const chains = useRef(new Map<number, Promise<unknown>>());
  const versions = useRef(new Map<number, number>());
  const save = (c: LabelClass, change: Partial<LabelClass>, retry?: () => void): Promise<SaveOutcome> => {
    const run = async (): Promise<SaveOutcome> => {
      let outcome: SaveOutcome = "ok";
      try {
        const version = Math.max(c.version, versions.current.get(c.id) ?? 0);
        const saved = await patch<LabelClass>(`${P(pid)}/classes/${c.id}/`, { ...change, version });
        if (saved?.version !== undefined) versions.current.set(c.id, saved.version);
      } catch (e) {
        outcome = retryable(e) ? "retryable" : "refused";
        notify(e instanceof ApiError && e.status === 409 ? `“${c.name}” was changed by someone else; reloaded. Apply your change again.` : `Couldn't save “${c.name}”: ${(e as Error).message}`,
          "error", retry && outcome === "retryable" ? { label: "Retry", run: retry } : undefined);
      }
      await ctx.reloadClasses();
      return outcome;
    };
    const next = (chains.current.get(c.id) ?? Promise.resolve()).then(run);
    chains.current.set(c.id, next.catch(() => undefined));
    return next;
  };
  /** Inline rename on Enter/blur: an empty or refused name puts the class's name back; one that
   * could not be sent keeps what was typed (it was lost) and offers Retry. */
  const rename = async (c: LabelClass, field: HTMLInputElement) => {
    const value = field.value.trim();
    if (!value) {
      notify("A class needs a name.", "warn");
      field.value = c.name;
      return;
    }
    if (value === c.name) {
      field.value = c.name;
      return;
    }
    if ((await save(c, { name: value }, () => void rename(c, field))) === "refused") field.value = c.name;
  };
  const add = (e: React.FormEvent) => {
    e.preventDefault();
    void runAdd(async () => {
      try {
        await post(`${P(pid)}/classes/`, {
          name: name.trim(), ...(color ? { color } : {}), ...(parent ? { kind: "instance", parent } : { kind: "class" }),
        });
        setName("");
        setColor(null);
        setParent(""); // back to a plain class: the next name typed was another instance unnoticed
        await ctx.reloadClasses();
      } catch (err: any) {
        notify(`Couldn't add the class: ${err.message}`, "error");
      }
    });
  };
  const upload = (files: File[], classId?: number) => {
    if (!files.length) return;
    const form = new FormData();
    files.forEach((f) => form.append("files", f, f.name));
    if (classId) form.append("label_class", String(classId));
    setProgress(0);
    setReport(null);
    uploadWithProgress<UploadReport>(`${P(pid)}/gallery/`, form, setProgress).promise.then(({ status, body }) => {
      setProgress(null);
      if (body && typeof body === "object" && "errors" in body) {
        // A class card's upload is told there, by name: its report showed under the zip card.
        if (classId) sayAdded(body, ctx.classes.find((c) => c.id === classId)?.name ?? "the class");
        else setReport(body);
        const twice = body.also_in ?? [];
        if (twice.length) notify(`${plural(twice.length, "uploaded picture")} ${twice.length === 1 ? "is" : "are"} also in another class: `
          + `${alsoInText(twice[0])}${twice.length > 1 ? ", …" : ""}. The matcher cannot tell those classes apart by ${twice.length === 1 ? "it" : "them"}: remove one.`, "warn");
      }
      else if (status >= 300) notify(`Gallery upload failed: ${errorText(body, status)}`, "error");
      setTick((t) => t + 1);
      ctx.reloadClasses();
    }).catch((e) => { setProgress(null); notify(e.message, "error"); });
  };
  const sayAdded = (r: UploadReport, className: string) => {
    const parts = [`${plural(r.created.length, "exemplar")} added to “${className}”`];
    if (r.duplicates.length) parts.push(`${plural(r.duplicates.length, "duplicate")} skipped`);
    if (r.errors.length) parts.push(`${plural(r.errors.length, "file")} refused: ${r.errors.slice(0, 3).map((e: any) => `${String(e.name)} (${String(e.error).replace(/\.$/, "")})`).join("; ")}`);
    // (A reason's own full stop goes inside the brackets: "…Import page).)." read doubled.)
    // Some added and some refused is a warning; red is for nothing added.
    notify(`${parts.join(", ")}.`, !r.errors.length ? "info" : r.created.length || r.duplicates.length ? "warn" : "error");
  };
  /** Delete a class (admins). The server refuses while objects have the class (they would lose
   * it) or while it has instances; its exemplars and hard negatives go with it. */
  const deleteClass = (c: LabelClass) => {
    const exemplars = c.exemplar_count ? ` Its ${plural(c.exemplar_count, "gallery exemplar")} and hard negatives are deleted with it.` : "";
    if (!window.confirm(
      `Delete the class “${c.name}”?${exemplars} Objects are never changed: if any object is labelled “${c.name}”, `
      + `the deletion is refused — give those objects another class first, or Deactivate the class instead (it stays on them but is offered no more). This cannot be undone.`,
    )) return;
    const run = async () => {
      const version = Math.max(c.version, versions.current.get(c.id) ?? 0);
      try {
        await del(`${P(pid)}/classes/${c.id}/?version=${version}`);
        notify(`Deleted the class “${c.name}”.`, "info");
      } catch (e) {
        notify(e instanceof ApiError && e.status === 409 ? `“${c.name}” was changed by someone else; reloaded. Check it and delete again.`
          : e instanceof ApiError && e.status === 404 ? `“${c.name}” was already deleted.`
          : `Couldn't delete “${c.name}”: ${(e as Error).message}`, "error");
      }
      await ctx.reloadClasses();
      setTick((t) => t + 1);
    };
    const next = (chains.current.get(c.id) ?? Promise.resolve()).then(run);
    chains.current.set(c.id, next.catch(() => undefined));
  };
  // A double click on × asked twice and the second delete's 404 said "Gallery image not found."
  const removing = useRef(new Set<number>());
  const remove = async (g: GalleryImage) => {
    if (removing.current.has(g.id)) return;
    removing.current.add(g.id);
    try {
      // Jobs already started keep their gallery version; new matches and re-scoring lose this one.
      if (!window.confirm(`Remove exemplar "${g.original_name}" from the gallery? Pending objects will be re-scored without it.`)) return;
      await del(`${P(pid)}/gallery/${g.id}/`);
      setTick((t) => t + 1);
    } catch (e: any) {
      if (e instanceof ApiError && e.status === 404) setTick((t) => t + 1); // gone already: what was asked
      else notify(e.message, "error");
    } finally {
      removing.current.delete(g.id);
    }
  };

  const select = (id: number, on: boolean) => setSelected((old) => {
    const next = new Set(old);
    if (on) next.add(id); else next.delete(id);
    return next;
  });
  const pruneSelected = async () => {
    const ids = [...selected];
    if (!ids.length || !window.confirm(`Remove ${plural(ids.length, "exemplar")} from the gallery? Pending objects will be re-scored without them.`)) return;
    try {
      await post(`${P(pid)}/gallery/prune/`, { exemplar_ids: ids });
      notify(`Removed ${plural(ids.length, "exemplar")}.`, "info");
    } catch (e: any) {
      notify(`Couldn't remove them: ${e.message}`, "error");
    }
    setTick((t) => t + 1);
  };
  const removeNegative = async (n: HardNegative) => {
    if (!window.confirm(`Remove this hard negative of “${n.class_name}”? Objects that look like it will no longer be pushed away from “${n.class_name}”.`)) return;
    try {
      await del(`${P(pid)}/gallery/negatives/${n.id}/`);
    } catch (e: any) {
      notify(e.message, "error");
    }
    setTick((t) => t + 1);
  };
  const shown = gallery.filter((g) => source === "all" || g.source === source);
  const counts = { all: gallery.length, uploaded: gallery.filter((g) => g.source !== "learned").length, learned: gallery.filter((g) => g.source === "learned").length };

  // Types (kind "class") with their instances nested under them.
  const types = ctx.classes.filter((c) => !c.parent);
  const instancesOf = (typeId: number) => ctx.classes.filter((c) => c.parent === typeId);
  const moveUnder = (c: LabelClass, value: string) =>
    save(c, value ? { kind: "instance", parent: Number(value) } : { kind: "class", parent: null });
  const card = (c: LabelClass) => (
    <section key={c.id} className={`card class-card ${c.active === false ? "inactive" : ""}`} data-testid={`class-${c.name}`} data-kind={c.kind}>
      <div className="toolbar">
        <ColorPicker label={`color of ${c.name}`} value={c.color || "#888888"} disabled={!ctx.isAdmin}
          onPick={(color) => color !== c.color && void save(c, { color })} />
        {ctx.isAdmin ? (
          <input className="class-name" aria-label={`name of ${c.name}`} defaultValue={c.name} key={`${c.id}:${c.version}`}
            onBlur={(e) => void rename(c, e.target)}
            onKeyDown={(e) => e.key === "Enter" && (e.target as HTMLInputElement).blur()} />
        ) : <b className="class-title" title={c.name}>{c.name}</b>}
        {ctx.isAdmin ? (
          <select className="class-kind" aria-label={`kind of ${c.name}`} value={c.parent ?? ""} key={`k${c.id}:${c.version}`} onChange={(e) => moveUnder(c, e.target.value)}
            title={instancesOf(c.id).length ? "A type with instances stays a type" : "A type, or one physical instance of a type"}>
            <option value="">type</option>
            {instancesOf(c.id).length === 0 && types.filter((t) => t.id !== c.id).map((t) => <option key={t.id} value={t.id} title={`instance of ${t.name}`}>instance of {short(t.name)}</option>)}
          </select>
        ) : <span className="muted small class-title">{c.parent ? `instance of ${ctx.classes.find((t) => t.id === c.parent)?.name ?? "?"}` : "type"}</span>}
        <span className="muted small">{plural(c.exemplar_count, "exemplar")}{c.parent ? "" : ` · ${plural(instancesOf(c.id).length, "instance")}`}</span>
        <span className="spacer" />
        {ctx.isAdmin && (
          <>
            {!c.parent && <button className="small" title={`Add an instance of ${c.name} (one physical ${c.name})`} onClick={() => { setParent(c.id); document.querySelector<HTMLInputElement>("input[name=class-name]")?.focus(); }}>+ instance</button>}
            <FileButton className="small" label="Add exemplars" title={`Add exemplar images of ${c.name}`} multiple accept="image/*"
              onFiles={(files) => upload(files, c.id)} />
            <button className="small" onClick={() => save(c, { active: !(c.active ?? true) })}>{c.active === false ? "Activate" : "Deactivate"}</button>
            <button className="small danger" aria-label={`Delete ${c.name}`} title={`Delete the class ${c.name}`} onClick={() => deleteClass(c)}>Delete</button>
          </>
        )}
      </div>
      <div className="thumbs">
        {shown.filter((g) => g.label_class === c.id).map((g) => (
          <ExemplarThumb key={g.id} pid={pid} g={g} admin={ctx.isAdmin} selected={selected.has(g.id)}
            onSelect={(on) => select(g.id, on)} onRemove={() => remove(g)} />
        ))}
      </div>
      <LearnedDetails pid={pid} exemplars={shown.filter((g) => g.label_class === c.id)} admin={ctx.isAdmin}
        negatives={negatives.filter((n) => n.label_class === c.id)} onRemoveNegative={removeNegative} />
    </section>
  );

  return (
    <main className="page classes-page">
      <h1>Classes &amp; gallery</h1>
      {ctx.isAdmin && (
        <div className="grid2">
          <form className="card form-row" onSubmit={add}>
            <h2>Add a class</h2>
            <label>Name <input name="class-name" value={name} onChange={(e) => setName(e.target.value)} /></label>
            <label title="A type (e.g. screwdriver), or one physical instance of a type (e.g. screwdriver-1234)">Kind
              <select name="class-parent" aria-label="kind of the new class" value={parent} onChange={(e) => setParent(e.target.value ? Number(e.target.value) : "")}>
                <option value="">Type (class)</option>
                {types.map((t) => <option key={t.id} value={t.id} title={`Instance of ${t.name}`}>Instance of {short(t.name)}</option>)}
              </select>
            </label>
            <label>Color <input type="color" value={color ?? "#888888"} onChange={(e) => setColor(e.target.value)} />
              {color === null && <span className="small muted"> auto</span>}</label>
            <button className="primary" disabled={!name.trim() || adding}>{parent ? "Add instance" : "Add class"}</button>
          </form>
          <div className="card">
            <h2>Upload an ImageFolder zip</h2>
            <p className="small muted">One folder per class (folders with new names become classes).</p>
            <input type="file" accept=".zip" aria-label="gallery zip" onChange={(e) => { upload([...(e.target.files ?? [])]); e.target.value = ""; }} />
            {progress !== null && <progress max={1} value={progress} />}
            {report && (
              <div className="small">
                <span className="report-names">{report.created.length} exemplars added{report.created_classes.length ? `, new classes: ${report.created_classes.join(", ")}` : ""}</span>
                {report.duplicates.length ? `, ${report.duplicates.length} duplicates` : ""}
                {report.errors.length > 0 && <ul className="errors">{report.errors.map((er: any, i) => <li key={i}><b>{String(er.name)}</b>: {String(er.error)}</li>)}</ul>}
                {(report.also_in?.length ?? 0) > 0 && (
                  <div className="warn" data-testid="gallery-also-in">
                    Same picture in two classes (the matcher cannot tell them apart by it; remove one):
                    <ul>{report.also_in!.map((w, i) => <li key={i}>{alsoInText(w)}</li>)}</ul>
                  </div>
                )}
              </div>
            )}
          </div>
        </div>
      )}
      {ctx.classes.length === 0 && <p className="muted">No classes yet.</p>}
      {gallery.length > 0 && (
        <div className="toolbar" data-testid="gallery-toolbar">
          <SourceFilterSelect value={source} onChange={setSource} counts={counts} />
          {counts.learned > 0 && <span className="small muted">Learned exemplars come from reviewers' class fixes (Settings › learn from reviews).</span>}
          <span className="spacer" />
          {ctx.isAdmin && selected.size > 0 && (
            <>
              <button className="small" onClick={() => setSelected(new Set())}>Clear selection</button>
              <button className="small danger" onClick={pruneSelected}>Remove {plural(selected.size, "selected exemplar")}</button>
            </>
          )}
        </div>
      )}
      {types.map((t) => (
        <div key={t.id} className="class-group" data-testid={`class-group-${t.name}`}>
          {card(t)}
          {instancesOf(t.id).length > 0 && (
            <div className="class-instances" data-testid={`instances-of-${t.name}`} style={{ marginLeft: 28, borderLeft: `3px solid ${t.color}`, paddingLeft: 8 }}>
              {instancesOf(t.id).map(card)}
            </div>
          )}
        </div>
      ))}
    </main>
  );
}

/** A real button that opens a file picker (a <label> around a hidden input is skipped by Tab
 * and is no button to assistive technology). */
export function FileButton(props: { label: string; title?: string; className?: string; multiple?: boolean; accept?: string; onFiles: (files: File[]) => void }) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <button type="button" className={props.className} title={props.title} onClick={() => input.current?.click()}>{props.label}</button>
      <input ref={input} type="file" multiple={props.multiple} accept={props.accept} hidden tabIndex={-1} aria-hidden="true"
        onChange={(e) => { props.onFiles([...(e.target.files ?? [])]); e.target.value = ""; }} />
    </>
  );
}

/** A colour input that saves once, when the picker is released: while the user drags in it the
 * browser fires an input event per step, and saving each of those (all on the same version)
 * made the later ones false conflicts and kept the first colour. */
function ColorPicker(props: { label: string; value: string; disabled?: boolean; onPick: (color: string) => void }) {
  const [value, setValue] = useState(props.value);
  const ref = useRef<HTMLInputElement>(null);
  const pick = useRef(props.onPick);
  pick.current = props.onPick;
  useEffect(() => setValue(props.value), [props.value]);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    // The native "change" event: React's onChange is the per-step "input" event.
    const onChange = () => pick.current(el.value);
    el.addEventListener("change", onChange);
    return () => el.removeEventListener("change", onChange);
  }, []);
  return <input ref={ref} type="color" aria-label={props.label} value={value} disabled={props.disabled} onChange={(e) => setValue(e.target.value)} />;
}
