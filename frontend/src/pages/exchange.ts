/** Shared by the Export and Import pages: job types, the live job list, and small formatters. */
import { useCallback, useEffect, useState } from "react";
import { get, P, type Page } from "../api/client";
import type { components } from "../api/schema";
import { subscribe } from "../api/live";
import { notify } from "../notify";

type S = components["schemas"];
export type ExportJob = Omit<S["ExportJob"], "progress" | "result" | "options"> & {
  progress: { done: number; total: number };
  result: { images?: number; annotations?: number } | null;
  options: { segmentation?: string; include_pending?: boolean; include_images?: boolean; class_ids?: number[]; status?: string[]; image_ids?: number[] };
};
export type ImportJob = Omit<S["ImportJob"], "progress" | "result" | "errors" | "options"> & {
  progress: { done: number; total: number; stage: string };
  errors: { item: string; error: string }[];
  result: { annotations?: number; images?: number; classes_created?: string[]; already_present?: number; error_count?: number } | null;
  options: { as_accepted?: boolean; create_missing_classes?: boolean };
};
type AnyJob = { id: number; status: string; progress: { done: number; total: number; stage?: string } };

export const isLive = (j: { status: string }) => j.status === "queued" || j.status === "running";

/**
 * A project's export or import jobs, kept current by live `<kind>.progress` / `<kind>.finished`
 * events, with polling while one runs (in case the websocket is down).
 */
export function useExchangeJobs<J extends AnyJob>(projectId: number, kind: "export" | "import") {
  const [jobs, setJobs] = useState<J[] | null>(null);
  const url = `${P(projectId)}/${kind}s/`;
  const reload = useCallback(async () => {
    try {
      setJobs((await get<Page<J>>(`${url}?page_size=50`)).results);
    } catch (e) {
      notify(`Couldn't load past ${kind}s: ${(e as Error).message}`, "error");
    }
  }, [url, kind]);
  const upsert = useCallback((job: J) => {
    setJobs((old) => (old ? (old.some((j) => j.id === job.id) ? old.map((j) => (j.id === job.id ? job : j)) : [job, ...old]) : [job]));
  }, []);
  useEffect(() => {
    reload();
    return subscribe(projectId, (ev) => {
      const e = ev as { type: string; job?: number; done?: number; total?: number; stage?: string };
      if (e.type === `${kind}.progress` && typeof e.job === "number") {
        setJobs((old) => old?.map((j) => (j.id === e.job
          ? { ...j, status: j.status === "queued" ? "running" : j.status, progress: { ...j.progress, done: e.done ?? 0, total: e.total ?? 0, stage: e.stage ?? j.progress.stage } }
          : j)) ?? old);
      } else if (e.type === `${kind}.finished` || e.type === "resync") reload();
    });
  }, [projectId, kind, reload]);
  const running = !!jobs?.some(isLive);
  useEffect(() => {
    if (!running) return;
    const t = setInterval(reload, 2000);
    return () => clearInterval(t);
  }, [running, reload]);
  return { jobs, reload, upsert };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatWhen(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** "1-5, 9, 12" → [1,2,3,4,5,9,12]; throws with a message naming the bad part. */
export function parseIdList(text: string, max = 100_000): number[] {
  const out = new Set<number>();
  for (const raw of text.split(/[\s,;]+/).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(raw);
    if (!m) throw new Error(`"${raw}" is not an image id or a range like 3-7.`);
    const a = Number(m[1]);
    const b = m[2] ? Number(m[2]) : a;
    if (a < 1) throw new Error(`"${raw}": image ids start at 1.`);
    if (b < a) throw new Error(`"${raw}" is not a valid range: write the smaller id first (${b}-${a}).`);
    if (b - a + out.size > max) throw new Error(`At most ${max} images in one export.`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}
