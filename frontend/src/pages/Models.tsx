/** "Accuracy & models" (issue 15): measured accuracy of the engine on approved objects, and
 * trained models that only an admin activates. */
import { useCallback, useEffect, useRef, useState } from "react";
import { count } from "../plural";
import { get, post, P, type Page } from "../api/client";
import { subscribe } from "../api/live";
import { notify } from "../notify";
import { formatWhen } from "./exchange";
import { runExclusive } from "./inFlight";
import type { ProjectCtx } from "./ProjectLayout";

type State = "queued" | "running" | "done" | "failed" | "cancelled";
type AP = { ap: number; ap50: number; ap75: number };
export interface PerClass { class_id: number | null; name: string; gt: number; tp: number; fp: number; precision: number | null; recall: number | null }
export interface Metrics {
  images?: number; gt_objects?: number; matched?: number;
  ap?: { box: { per_class: AP; agnostic: AP }; mask: { per_class: AP; agnostic: AP } };
  class_accuracy?: number | null; type_accuracy?: number | null;
  per_class?: PerClass[];
  auto_accept?: { threshold: number | null; fraction: number; precision: number | null };
  seconds_per_image?: number;
  deleted_image_ids?: number[];
}
export interface EvaluationRun {
  id: number; engine: string; model_version: { id: number; kind: string; number: number } | null; weights: string;
  gallery_version: number | null; device: string; split: string; state: State; total: number; processed: number;
  error: string; metrics: Metrics; created_by: string | null; created_at: string; finished_at: string | null;
}
export interface ModelVersion {
  id: number; kind: "head" | "maskrcnn"; number: number; state: "candidate" | "active" | "retired"; version: number;
  metrics: Record<string, any>; created_by: string | null; created_at: string; promoted_by: string | null; promoted_at: string | null;
}
export interface TrainingRun {
  id: number; kind: "head" | "maskrcnn"; state: State; progress: number; error: string;
  model_version: { id: number; number: number; state: string } | null; created_at: string;
}

const STATE_BADGE = { active: "badge-done", candidate: "badge-running", retired: "" } as const;
const live = (s: State) => s === "queued" || s === "running";
export const pct = (v: number | null | undefined, digits = 1) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(digits)}%`);

/** The run's "data" cell: how many images / objects it was measured on, and which split. */
export function dataLabel(r: EvaluationRun): string {
  const m = r.metrics ?? {};
  const what = r.split === "heldout" ? "held-out" : "approved";
  const gone = m.deleted_image_ids?.length ? ` (${m.deleted_image_ids.length} deleted while it ran, not scored)` : "";
  return m.images !== undefined ? `${count(m.images, `${what} image`)}, ${count(m.gt_objects ?? 0, "object")}${gone}` : count(r.total, `${what} image`);
}

function useList<T extends { id: number }>(url: string) {
  const [rows, setRows] = useState<T[] | null>(null);
  const reload = useCallback(async () => {
    try {
      setRows((await get<Page<T>>(`${url}?page_size=50`)).results);
    } catch (e) {
      notify(`Couldn't load ${url.split("/").slice(-2)[0]}: ${(e as Error).message}`, "error");
    }
  }, [url]);
  return { rows, setRows, reload };
}

export function ModelsPage({ ctx }: { ctx: ProjectCtx }) {
  const pid = ctx.project.id;
  const evals = useList<EvaluationRun>(`${P(pid)}/evaluations/`);
  const models = useList<ModelVersion>(`${P(pid)}/models/`);
  const trainings = useList<TrainingRun>(`${P(pid)}/trainings/`);
  const [busy, setBusy] = useState("");
  const inFlight = useRef(false); // one evaluation / training / activation per click
  const reloadAll = useCallback(() => { evals.reload(); models.reload(); trainings.reload(); }, [evals.reload, models.reload, trainings.reload]);

  useEffect(() => {
    reloadAll();
    return subscribe(pid, (ev) => {
      const t = (ev as { type: string }).type;
      if (t === "evaluation.progress" || t === "training.progress" || t === "resync") reloadAll();
    });
  }, [pid, reloadAll]);
  // Polling as well: progress must show even when the live socket is down.
  const running = !!evals.rows?.some((r) => live(r.state)) || !!trainings.rows?.some((r) => live(r.state));
  useEffect(() => {
    if (!running) return;
    const t = setInterval(reloadAll, 2000);
    return () => clearInterval(t);
  }, [running, reloadAll]);

  const act = (label: string, fn: () => Promise<unknown>, ok: string) =>
    runExclusive(inFlight, (on) => setBusy(on ? label : ""), async () => {
      try {
        await fn();
        notify(ok);
        reloadAll();
      } catch (e: any) {
        // "Training failed" for a refused start said something failed; nothing had started.
        notify(`Couldn't ${label}: ${e.message}`, "error");
        if (e.status === 409) reloadAll();
      }
    });
  const evaluate = () => act("start the evaluation", () => post(`${P(pid)}/evaluations/`, {}), "Evaluation started.");
  const train = (kind: "head" | "maskrcnn") => act("start the training", () => post(`${P(pid)}/trainings/`, { kind }), `Training of a ${kind === "head" ? "projection head" : "Mask R-CNN"} started.`);
  // A run holds the one gpu worker (pre-annotation waits behind it): an admin can stop it.
  const cancel = (what: "evaluations" | "trainings", id: number, name: string) =>
    confirm(`Cancel ${name}? A running one stops at its next check (a training every 10 steps) and keeps nothing.`)
    && act(`cancel ${name}`, () => post(`${P(pid)}/${what}/${id}/cancel/`, {}), `${name[0].toUpperCase()}${name.slice(1)} cancelled.`);
  const decide = (m: ModelVersion, what: "activate" | "deactivate") =>
    (what === "deactivate" || confirm(activationQuestion(m))) && act(`${what} the model`, () => post(`${P(pid)}/models/${m.id}/${what}/`, { version: m.version }),
      `${m.kind === "head" ? "Projection head" : "Mask R-CNN"} #${m.number} ${what === "activate" ? "is active; pending objects are being re-scored" : "is retired"}.`);

  const latest = evals.rows?.find((r) => r.state === "done");
  return (
    <main className="page" data-testid="models-page">
      <h1>Accuracy &amp; models</h1>
      <p className="muted small">Scores measure the engine against objects reviewers approved (images with nothing left pending).
        Numbers from tiny test models mean nothing about real accuracy.</p>
      <section className="card">
        <div className="toolbar" style={{ justifyContent: "space-between" }}>
          <h2>Measured accuracy</h2>
          {ctx.isAdmin
            ? <button className="primary" onClick={evaluate} disabled={!!busy} data-testid="start-evaluation">{busy === "start the evaluation" ? "Starting…" : "Measure now"}</button>
            : <span className="muted small">Only project admins start an evaluation.</span>}
        </div>
        {evals.rows === null ? <p className="muted">Loading…</p> : evals.rows.length === 0 ? <p className="muted">No evaluation yet.</p> : (
          <table className="table compact" data-testid="evaluation-table">
            <thead><tr><th>#</th><th>Engine</th><th>Weights</th><th>Data</th><th>Device</th><th>Box AP</th><th>Mask AP</th><th>Class accuracy</th><th title="share of objects a class-score threshold with 95% precision would accept">Auto-accept @95%</th><th>s/image</th><th>When</th></tr></thead>
            <tbody>{evals.rows.map((r) => <EvalRow key={r.id} run={r}
              onCancel={ctx.isAdmin && live(r.state) ? () => cancel("evaluations", r.id, `evaluation #${r.id}`) : undefined} busy={!!busy} />)}</tbody>
          </table>
        )}
      </section>
      {latest?.metrics.per_class && <PerClassTable run={latest} classes={ctx.classes} />}
      <section className="card">
        <div className="toolbar" style={{ justifyContent: "space-between" }}>
          <h2>Trained models</h2>
          {ctx.isAdmin && (
            <span className="row">
              <button onClick={() => train("head")} disabled={!!busy} data-testid="train-head">Train projection head</button>
              <button onClick={() => train("maskrcnn")} disabled={!!busy} data-testid="train-maskrcnn">Train Mask R-CNN</button>
            </span>
          )}
        </div>
        <p className="muted small">Training registers a candidate; nothing replaces the current model until an admin activates it.</p>
        {trainings.rows?.filter((t) => live(t.state) || t.state === "failed" || t.state === "cancelled").slice(0, 5).map((t) => (
          <div key={t.id} className={t.state === "failed" ? "error small" : t.state === "cancelled" ? "muted small" : "small"} data-testid={`training-${t.id}`}>
            Training #{t.id} ({t.kind}): {t.state === "failed" || t.state === "cancelled" ? t.error || t.state
              : <><progress value={t.progress} max={1} /> {t.state === "queued" ? "queued" : pct(t.progress, 0)}{" "}
                {ctx.isAdmin && <button className="small" onClick={() => cancel("trainings", t.id, `training #${t.id}`)} disabled={!!busy} data-testid={`cancel-training-${t.id}`}>Cancel</button>}</>}
          </div>
        ))}
        {models.rows === null ? <p className="muted">Loading…</p> : models.rows.length === 0 ? <p className="muted">No trained model yet.</p> : (
          <table className="table compact" data-testid="model-table">
            <thead><tr><th>Model</th><th>State</th><th>Held-out result</th><th>Trained</th><th>Decided</th><th></th></tr></thead>
            <tbody>
              {models.rows.map((m) => (
                <tr key={m.id} data-testid={`model-${m.id}`}>
                  <td>{m.kind === "head" ? "Projection head" : "Mask R-CNN"} #{m.number}</td>
                  <td><span className={`badge ${STATE_BADGE[m.state]}`}>{m.state}</span></td>
                  <td className="small">{modelSummary(m)}</td>
                  <td className="small">{m.created_by ?? "—"}, {formatWhen(m.created_at)}</td>
                  <td className="small">{m.promoted_by ? `${m.promoted_by}, ${formatWhen(m.promoted_at)}` : "—"}</td>
                  <td>{ctx.isAdmin && (m.state === "active"
                    ? <button onClick={() => decide(m, "deactivate")} disabled={!!busy}>Deactivate</button>
                    : <button className="primary" onClick={() => decide(m, "activate")} disabled={!!busy}>Activate</button>)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </main>
  );
}

/** What to say before activating: every later job uses the model, and a head that measured
 *  worse than none (16.7 % against 66.7 %) was switched on with one click. */
export function activationQuestion(m: ModelVersion): string {
  const name = `${m.kind === "head" ? "projection head" : "Mask R-CNN"} #${m.number}`;
  const x = m.metrics ?? {};
  const worse = m.kind === "head" && typeof x.heldout_top1 === "number" && typeof x.heldout_top1_identity === "number"
    && x.heldout_top1 < x.heldout_top1_identity;
  const warning = worse
    ? `It measured WORSE than no head: gallery top-1 ${pct(x.heldout_top1)} against ${pct(x.heldout_top1_identity)} on held-out objects. `
    : "";
  return `Activate ${name}? ${warning}Every later pre-annotation job uses it${m.kind === "head" ? ", and pending objects are re-scored now" : ""}.`;
}

export function modelSummary(m: ModelVersion): string {
  const x = m.metrics ?? {};
  if (m.kind === "head") {
    return `gallery top-1 ${pct(x.heldout_top1)} (was ${pct(x.heldout_top1_identity)} without the head), ${x.heldout_objects ?? "?"} held-out objects`;
  }
  const ap = x.ap?.mask?.per_class?.ap;
  return `mask AP ${pct(ap)}, ${x.heldout_images ?? "?"} held-out images, ${x.steps ?? "?"} steps`;
}

function EvalRow({ run, onCancel, busy }: { run: EvaluationRun; onCancel?: () => void; busy: boolean }) {
  const m = run.metrics ?? {};
  const cells = run.state === "done" ? (
    <>
      <td title={`AP50 ${pct(m.ap?.box.per_class.ap50)}; class-agnostic AP ${pct(m.ap?.box.agnostic.ap)}`}>{pct(m.ap?.box.per_class.ap)}</td>
      <td title={`AP50 ${pct(m.ap?.mask.per_class.ap50)}; class-agnostic AP ${pct(m.ap?.mask.agnostic.ap)}`}>{pct(m.ap?.mask.per_class.ap)}</td>
      <td>{pct(m.class_accuracy)}</td>
      <td title={m.auto_accept?.threshold != null ? `class score ≥ ${m.auto_accept.threshold.toFixed(3)}` : "no threshold reaches 95% precision"}>{pct(m.auto_accept?.fraction)}</td>
      <td>{m.seconds_per_image?.toFixed(2) ?? "—"}</td>
    </>
  ) : (
    <td colSpan={5} className={run.state === "failed" ? "error small" : run.state === "cancelled" ? "muted small" : "small"}>
      {run.state === "failed" || run.state === "cancelled" ? run.error || run.state
        : <><progress value={run.processed} max={Math.max(1, run.total)} /> {run.processed} / {count(run.total, "image")} ({run.state})</>}
      {onCancel && <>{" "}<button className="small" onClick={onCancel} disabled={busy} data-testid={`cancel-evaluation-${run.id}`}>Cancel</button></>}
    </td>
  );
  return (
    <tr data-testid={`evaluation-${run.id}`}>
      <td>{run.id}</td>
      <td>{run.engine}</td>
      <td className="small">{run.weights || "—"}{run.gallery_version ? `, gallery v${run.gallery_version}` : ""}</td>
      <td className="small">{dataLabel(run)}</td>
      <td>{run.device || "—"}</td>
      {cells}
      <td className="small">{formatWhen(run.finished_at ?? run.created_at)}</td>
    </tr>
  );
}

function PerClassTable({ run, classes }: { run: EvaluationRun; classes: { id: number; name: string }[] }) {
  const rows = run.metrics.per_class ?? [];
  // A class renamed since the evaluation ran is shown by its name now (its id is kept).
  const nameOf = (c: PerClass) => classes.find((k) => k.id === c.class_id)?.name ?? c.name;
  return (
    <section className="card" data-testid="per-class">
      <h2>Per class <span className="muted small">(evaluation #{run.id})</span></h2>
      <table className="table compact">
        <thead><tr><th>Class</th><th>Approved objects</th><th>Correct</th><th>Wrong or extra</th><th>Precision</th><th>Recall</th><th></th></tr></thead>
        <tbody>
          {rows.map((c) => (
            <tr key={c.name}>
              <td>{nameOf(c)}</td><td>{c.gt}</td><td>{c.tp}</td><td>{c.fp}</td><td>{pct(c.precision)}</td><td>{pct(c.recall)}</td>
              <td><span title={`recall ${pct(c.recall)}`} style={{ display: "inline-block", width: 120, height: 8, background: "#eef0f3", borderRadius: 4 }}>
                <span style={{ display: "block", height: 8, borderRadius: 4, background: "#16a34a", width: `${(c.recall ?? 0) * 100}%` }} />
              </span></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
