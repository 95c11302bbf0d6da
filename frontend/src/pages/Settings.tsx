import { useEffect, useState } from "react";
import { useUnsavedGuard } from "../unsavedGuard";
import { api, ApiError, get, P, patch, type Project } from "../api/client";
import { notify } from "../notify";
import { navigate } from "../router";
import { useInFlight } from "./inFlight";
import { PROJECT_NAME_MAX, projectNameTooLong } from "./Projects";
import type { ProjectCtx } from "./ProjectLayout";
import "./pages-round4.css";

type Form = {
  name: string; description: string; prompts: string;
  box_threshold: string; text_threshold: string; nms_iou: string;
  unknown_threshold: string; min_margin: string; top_k: string; unique_classes_per_image: boolean;
  engine: EngineName; learn_from_reviews: boolean;
};
type EngineName = NonNullable<Project["engine"]>;
/** GET /api/engines/: the ml engine registry plus whether this server has weights for each. */
export type EngineInfo = {
  name: EngineName; title: string; weights: string; hub_ids: string[]; gated: boolean; text_prompts: boolean;
  boxes_given: string; trainable: boolean; config_section: string; configured: boolean | null; default: boolean;
  problem?: string | null; // why it cannot run here (a missing file, no config)
};
// Shown until /api/engines/ answers (or if it cannot): the names the API accepts.
const FALLBACK_ENGINES: EngineInfo[] = (["gdino-sam2", "sam3", "maskrcnn"] as EngineName[]).map((name) => ({
  name, title: name, weights: "", hub_ids: [], gated: false, text_prompts: name !== "maskrcnn", boxes_given: "",
  trainable: name === "maskrcnn", config_section: "", configured: null, default: false,
}));
type Errors = Partial<Record<keyof Form | "form", string>>;

const UNIT_FIELDS = ["box_threshold", "text_threshold", "nms_iou", "unknown_threshold", "min_margin"] as const;

function toForm(p: Project): Form {
  return {
    name: p.name, description: p.description ?? "",
    prompts: Array.isArray(p.prompts) ? (p.prompts as string[]).join("\n") : "",
    box_threshold: String(p.box_threshold ?? ""), text_threshold: String(p.text_threshold ?? ""), nms_iou: String(p.nms_iou ?? ""),
    unknown_threshold: String(p.unknown_threshold ?? ""), min_margin: String(p.min_margin ?? ""), top_k: String(p.top_k ?? ""),
    unique_classes_per_image: !!p.unique_classes_per_image,
    engine: (p.engine ?? "gdino-sam2") as EngineName, learn_from_reviews: !!p.learn_from_reviews,
  };
}

/** Checks in the browser what the server checks too, so most mistakes show before a round trip. */
export function validate(f: Omit<Form, "engine" | "learn_from_reviews">): Errors {  // a select and a checkbox cannot be wrong
  const e: Errors = {};
  if (!f.name.trim()) e.name = "Give the project a name.";
  else if (projectNameTooLong(f.name)) e.name = projectNameTooLong(f.name);
  const prompts = splitPrompts(f.prompts);
  if (!prompts.length) e.prompts = "Give at least one text prompt.";
  else if (prompts.length > 20 || prompts.some((p) => p.length > 200)) e.prompts = "At most 20 prompts of at most 200 characters.";
  for (const k of UNIT_FIELDS) {
    const v = Number(f[k]);
    if (f[k].trim() === "" || !Number.isFinite(v) || v < 0 || v > 1) e[k] = "A number from 0 to 1.";
  }
  const k = Number(f.top_k);
  if (!Number.isInteger(k) || k < 1 || k > 50) e.top_k = "A whole number from 1 to 50.";
  return e;
}
export const splitPrompts = (s: string) => s.split(/[.\n]/).map((x) => x.trim()).filter(Boolean);

export function SettingsPage({ ctx }: { ctx: ProjectCtx }) {
  const pid = ctx.project.id;
  const [form, setFormState] = useState<Form>(() => toForm(ctx.project));
  const [baseline, setBaseline] = useState<Form>(form); // what the server has, as last loaded or saved here
  const setForm = (f: Form) => { setFormState(f); setBaseline(f); };
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => { setFormState((f) => ({ ...f, [k]: v })); setSaved(false); };
  const [engines, setEngines] = useState<EngineInfo[]>(FALLBACK_ENGINES);
  useEffect(() => { get<EngineInfo[]>("/api/engines/").then(setEngines).catch(() => undefined); }, []);
  const engine = engines.find((x) => x.name === form.engine) ?? FALLBACK_ENGINES[0];
  // Edits not saved: leaving asks first (they were dropped without a word).
  const dirty = JSON.stringify(form) !== JSON.stringify(baseline);
  useUnsavedGuard(dirty ? "Your changes to the project settings are not saved.\n\nLeave anyway? They will be lost." : null);

  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    const local = validate(form);
    setErrors(local);
    if (Object.keys(local).length) return;
    setBusy(true);
    try {
      const body = {
        version: ctx.project.version, name: form.name.trim(), description: form.description, prompts: splitPrompts(form.prompts),
        ...Object.fromEntries(UNIT_FIELDS.map((k) => [k, Number(form[k])])),
        top_k: Number(form.top_k), unique_classes_per_image: form.unique_classes_per_image,
        // sent only when changed, so saving thresholds never rewrites the engine choice
        ...(form.engine !== (ctx.project.engine ?? "gdino-sam2") ? { engine: form.engine } : {}),
        ...(form.learn_from_reviews !== !!ctx.project.learn_from_reviews ? { learn_from_reviews: form.learn_from_reviews } : {}),
      };
      const p = await patch<Project>(`${P(pid)}/`, body);
      ctx.setProject(p);
      setForm(toForm(p));
      setSaved(true);
      notify("Settings saved.");
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        setErrors({ form: "Someone else changed these settings meanwhile. The form now shows their version; apply your change again." });
        const fresh = await get<Project>(`${P(pid)}/`).catch(() => null);
        if (fresh) { ctx.setProject(fresh); setForm(toForm(fresh)); }
      } else if (err instanceof ApiError && err.body && typeof err.body === "object" && !err.body.detail) {
        const next: Errors = {};
        for (const [k, v] of Object.entries(err.body)) (next as any)[k in form ? k : "form"] = ([] as unknown[]).concat(v).map(String).join(" ");
        setErrors(next);
      } else setErrors({ form: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };

  const num = (k: (typeof UNIT_FIELDS)[number] | "top_k", label: string, hint: string, step = "0.01") => (
    <label className={errors[k] ? "field invalid" : "field"}>
      {label}
      <input name={k} type="number" step={step} min={k === "top_k" ? 1 : 0} max={k === "top_k" ? 50 : 1} value={form[k]}
        aria-invalid={!!errors[k]} onChange={(e) => set(k, e.target.value)} />
      <span className="muted small">{hint}</span>
      {errors[k] && <span className="error small field-error" data-testid={`error-${k}`}>{errors[k]}</span>}
    </label>
  );

  return (
    <main className="page">
      <h1>Project settings</h1>
      <form onSubmit={save} noValidate data-testid="settings-form">
        <div className="grid2">
          <section className="card">
            <h2>Project</h2>
            <label className="field">Name<input name="name" value={form.name} maxLength={PROJECT_NAME_MAX} onChange={(e) => set("name", e.target.value)} aria-invalid={!!errors.name} />
              {errors.name && <span className="error small field-error" data-testid="error-name">{errors.name}</span>}</label>
            <label className="field">Description<textarea name="description" rows={2} maxLength={5000} value={form.description} onChange={(e) => set("description", e.target.value)} /></label>
            <label className="field">Text prompts <span className="muted small">(one per line, or separated by “.”)</span>
              <textarea name="prompts" rows={4} value={form.prompts} onChange={(e) => set("prompts", e.target.value)} aria-invalid={!!errors.prompts} />
              {errors.prompts && <span className="error small field-error" data-testid="error-prompts">{errors.prompts}</span>}</label>
          </section>
          <section className="card" data-testid="engine-card">
            <h2>Engine</h2>
            <label className={errors.engine ? "field invalid" : "field"}>Pre-annotation engine
              <select name="engine" value={form.engine} onChange={(e) => set("engine", e.target.value as EngineName)}>
                {engines.map((x) => <option key={x.name} value={x.name}>{x.title}{x.configured === false ? " — no weights on this server" : ""}</option>)}
              </select>
              <span className="muted small" data-testid="engine-needs">
                {engine.text_prompts ? "Finds objects from the text prompts." : "Closed set: finds the classes it was trained on; text prompts are not used."}
                {engine.weights && <> Needs {engine.weights}{engine.gated ? " (gated on the hub: an operator must accept its licence)" : ""}.</>}
              </span>
              {engine.configured === false && (
                <span className="error small field-error" data-testid="engine-missing">
                  This server has no weights for this engine{engine.problem ? ` (${engine.problem})` : ""}: its jobs are refused until an operator sets {engine.config_section || "its model"} in the model config.
                </span>
              )}
              {errors.engine && <span className="error small field-error">{errors.engine}</span>}
            </label>
            <label className="check">
              <input type="checkbox" name="learn_from_reviews" checked={form.learn_from_reviews} onChange={(e) => set("learn_from_reviews", e.target.checked)} />
              Learn from reviews: when a reviewer changes an object's class, its crop joins the gallery under the new class and becomes a hard negative for the old one
            </label>
          </section>
          <section className="card">
            <h2>Detector</h2>
            {form.engine !== "gdino-sam2" && <p className="muted small" data-testid="detector-note">These thresholds tune GroundingDINO (gdino-sam2); the {form.engine} engine uses the score threshold of its model config.</p>}
            {num("box_threshold", "Box threshold", "Keep boxes scoring at least this.")}
            {num("text_threshold", "Text threshold", "How well a box must match its prompt.")}
            {num("nms_iou", "NMS overlap (IoU)", "Boxes overlapping more than this are merged.")}
          </section>
          <section className="card">
            <h2>Matcher</h2>
            {num("unknown_threshold", "Unknown threshold", "Below this similarity an object gets no class.")}
            {num("min_margin", "Top-2 margin", "The best class must beat the runner-up by this much.")}
            {num("top_k", "Top-k candidates", "How many ranked classes each object keeps.", "1")}
            <label className="check">
              <input type="checkbox" name="unique_classes_per_image" checked={form.unique_classes_per_image} onChange={(e) => set("unique_classes_per_image", e.target.checked)} />
              One object per class per image (solved as an assignment)
            </label>
          </section>
        </div>
        {errors.form && <p className="error" role="alert">{errors.form}</p>}
        <div className="toolbar">
          <button className="primary" disabled={busy}>{busy ? "Saving…" : "Save settings"}</button>
          {saved && <span className="muted small" data-testid="settings-saved">Saved (version {ctx.project.version}).</span>}
          <span className="muted small">New values apply to the next pre-annotation job; finished jobs keep what they ran with.</span>
        </div>
      </form>
      {ctx.isAdmin && <DeleteProject ctx={ctx} />}
    </main>
  );
}

/** Whether what was typed names the project (spaces around it do not count). */
export const namesProject = (typed: string, name: string) => typed.trim() !== "" && typed.trim() === name.trim();

/** The danger zone: deleting the project, for its admins, once its name is typed. */
function DeleteProject({ ctx }: { ctx: ProjectCtx }) {
  const { project } = ctx;
  const [typed, setTyped] = useState("");
  const [error, setError] = useState("");
  const [busy, run] = useInFlight();
  const ok = namesProject(typed, project.name);
  const remove = (e: React.FormEvent) => {
    e.preventDefault();
    if (!ok) return;
    setError("");
    void run(async () => {
      try {
        await api("DELETE", `${P(project.id)}/`, { version: project.version });
        notify(`Project "${project.name}" deleted.`);
        navigate("/");
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          setError("Someone changed this project's settings meanwhile, so it was not deleted. The page now shows their "
            + "version; look it over and delete again if you still mean to.");
          const fresh = await get<Project>(`${P(project.id)}/`).catch(() => null);
          if (fresh) ctx.setProject(fresh);
        } else if (err instanceof ApiError && err.status === 404) {
          navigate("/"); // already gone (another admin deleted it a moment ago)
        } else {
          setError(`Couldn't delete the project: ${(err as Error).message}`);
        }
      }
    });
  };
  return (
    <section className="card danger-zone" data-testid="danger-zone" aria-labelledby="danger-zone-title">
      <h2 id="danger-zone-title">Danger zone</h2>
      <p>
        <b>Delete this project</b> with its images, annotations, review history, classes, gallery, jobs and exports.
        Every member loses it at once. This can't be undone.
      </p>
      <form onSubmit={remove} className="confirm-row">
        <label>
          <span>Type the project name, <span className="confirm-name" dir="auto">{project.name}</span>, to confirm</span>
          <input name="confirm-project-name" autoComplete="off" spellCheck={false} dir="auto" value={typed}
            aria-label="Type the project name to confirm" onChange={(e) => { setTyped(e.target.value); setError(""); }} />
        </label>
        <button type="submit" className="danger-solid" disabled={!ok || busy}>{busy ? "Deleting…" : "Delete project"}</button>
      </form>
      {error && <p className="error" role="alert" data-testid="delete-project-error">{error}</p>}
    </section>
  );
}
