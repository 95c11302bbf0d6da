/**
 * Types for fields the generated schema leaves loose (mask_rle, candidates are JSON fields) and
 * for the websocket messages. The jobs/claims/queue/SAM routes are feature-detected at run time
 * (a 404 hides the UI that needs them), so the app also works against an older server.
 */
import type { components } from "./schema";

export interface Rle {
  size: [number, number];
  counts: string;
}
export interface Candidate {
  class_id: number;
  name: string;
  score: number;
  exemplar_id?: number | null;
}
export type Annotation = Omit<components["schemas"]["Annotation"], "mask_rle" | "bbox" | "candidates"> & {
  mask_rle: Rle;
  bbox: [number, number, number, number];
  candidates: Candidate[] | null;
};

export type JobStatus = components["schemas"]["RunStateEnum"]; // the same five states as a training's
export type Job = Omit<components["schemas"]["PrelabelJob"], "errors" | "stage_ms"> & {
  errors: { image: number; name: string; error: string }[];
  stage_ms?: Partial<Record<"detect" | "segment" | "embed" | "match", number>> | null;
};
export interface JobRequest {
  images: "new" | "all" | number[];
  prompts?: string[];
  box_threshold?: number;
  text_threshold?: number;
}
export interface Claim {
  claimed_by: string;
  expires_at: string;
}
export interface SegmentResult {
  mask_rle: Rle;
  bbox: [number, number, number, number];
  score: number;
}
/** Project events carry `seq` (per project, increasing); `resync` means "reload what you show". */
export type LiveEvent = { seq?: number } & (
  | { type: "job.progress"; project: number; job: Job }
  | { type: "image.status"; project: number; image: number; status: string; version: number }
  | { type: "image.claimed"; project: number; image: number; claimed_by: string; expires_at: string }
  | { type: "image.released"; project: number; image: number }
  | { type: "annotation.changed"; project: number; image: number; annotation: number; action: string; version: number }
  | { type: "gallery.changed"; project: number }
  | { type: "resync"; project: number }
  | { type: string; project?: number; [k: string]: unknown }
);
