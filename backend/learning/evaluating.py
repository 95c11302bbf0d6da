"""An evaluation run's work inside the gpu worker: the engine's fresh output on the approved
images, in batches with progress, scored by ml.evaluation."""
from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction

from backend.gallery.versions import current_version
from backend.jobs.engine import get_pipeline, load_config, read_rgb
from backend.jobs.gallery_index import ensure_exemplar_embeddings, load_gallery, project_matcher
from backend.projects.models import Project

from . import data, selectors, services
from .models import EvaluationRun


def _batches(ids: list[int]) -> list[list[int]]:
    size = max(1, int(settings.PRELABEL_CHUNK_SIZE))  # images per model call, as a job's
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _xywh(xyxy) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    return [x0, y0, x1 - x0, y1 - y0]


class PipelineEngine:
    """gdino-sam2: the worker's pipeline with the project's prompts, thresholds, newest gallery
    and matcher (with the active head, when one is)."""

    def __init__(self, project: Project):
        from backend.jobs.tasks import _configure_detector  # the same per-batch thresholds as a job

        self.pipeline = pipeline = get_pipeline()
        with transaction.atomic():
            newest = current_version(project.pk)
            ensure_exemplar_embeddings(project_id=project.pk, pipeline=pipeline)  # exemplars and negatives
            self.gallery = load_gallery(project_id=project.pk, embedder_version=pipeline.embedder_version)
        self.gallery_version = newest.number
        self.matcher = project_matcher(project)
        head = selectors.transform_for(project.pk, pipeline.embedder_version)
        if getattr(self.matcher, "transform", None) is None and head is not None:
            self.matcher.transform = head
        self.head_version = selectors.active_version(project.pk, "head") if head is not None else None
        self.prompts = project.prompts
        _configure_detector(pipeline, {"box_threshold": project.box_threshold, "text_threshold": project.text_threshold,
                                       "nms_iou": project.nms_iou})
        cfg = pipeline.cfg
        self.device = str(getattr(pipeline.embedder, "device", cfg.device))
        head_note = f" + head #{self.head_version.number}" if self.head_version else ""
        self.weights = (f"{cfg.detector.model.rsplit('/', 1)[-1]} / {str(cfg.segmenter.checkpoint).rsplit('/', 1)[-1]} / "
                        f"{str(cfg.embedder.model).rsplit('/', 1)[-1]}{head_note}")
        self.fingerprint = f"{settings.RAZMETKA_ML_CONFIG}|{pipeline.embedder_version}|head={getattr(self.head_version, 'pk', None)}"

    def predict(self, images) -> list[list[dict]]:
        results = self.pipeline.annotate(images, self.gallery, prompts=self.prompts, matcher=self.matcher)
        return [[{"label": d.match.label, "score": float(d.det_score), "class_score": float(d.match.score),
                  "mask_rle": d.mask_rle, "bbox_xywh": _xywh(d.bbox_xyxy)} for d in r.detections] for r in results]


class MaskRCNNEngine:
    """maskrcnn: a given version, else the project's active one, else the configured checkpoint.
    Its classes are class names; they are mapped to the project's class ids."""

    def __init__(self, project: Project, version=None):
        from ml.device import resolve_device
        from ml.maskrcnn_model import load_checkpoint

        version = version or selectors.active_version(project.pk, "maskrcnn")
        cfg = load_config()
        path = selectors.maskrcnn_checkpoint(version) if version else cfg.maskrcnn.model
        device = resolve_device(cfg.device)
        self.model, self.spec = load_checkpoint(path, device)
        self.score_threshold = cfg.maskrcnn.score_threshold if version is None else 0.05
        self.device = str(device)
        self.weights = f"maskrcnn #{version.number} ({self.spec['arch']})" if version else f"{path} ({self.spec['arch']})"
        self.fingerprint = f"maskrcnn:{version.pk if version else path}"
        self.gallery_version = None
        current = data.class_names(project.pk)
        ids = {name.lower(): cid for cid, name in current.items()}
        # A project's own version knows its classes by id (training.py records them): renamed
        # since, they are still the same classes. Else (the configured checkpoint) by name.
        trained = ((version.metrics or {}).get("class_ids") or {}) if version else {}
        by_id = {name: str(cid) for name, cid in trained.items() if str(cid) in current}
        self.label_of = lambda name: by_id.get(str(name)) or ids.get(str(name).lower(), "unknown")

    def predict(self, images) -> list[list[dict]]:
        from ml.training.maskrcnn import predict

        out = predict(self.model, self.spec, images, self.score_threshold)
        return [[{**o, "label": self.label_of(o["label"])} for o in objs] for objs in out]


def run(evaluation: EvaluationRun) -> None:
    from ml.evaluation import evaluate

    project = evaluation.project
    if evaluation.engine == "maskrcnn":
        engine = MaskRCNNEngine(project, evaluation.model_version)
    else:
        engine = PipelineEngine(project)
    image_ids = data.reviewed_image_ids(project.pk)
    if evaluation.split == EvaluationRun.Split.HELDOUT and evaluation.model_version is not None:
        held = set(evaluation.model_version.metrics.get("heldout_image_ids") or [])
        image_ids = [i for i in image_ids if i in held]
    if not image_ids:
        raise ValueError("no reviewed images with approved objects are left to score")
    services.record_progress(evaluation, total=len(image_ids), processed=0, device=engine.device, weights=engine.weights[:300],
                             fingerprint=engine.fingerprint[:500], gallery_version=engine.gallery_version,
                             model_version=evaluation.model_version or getattr(engine, "head_version", None))
    preds, seconds, gone = [], 0.0, []
    for batch in _batches(image_ids):
        read = _read(batch)  # an image deleted while this runs is left out, not a KeyError
        gone += [i for i in batch if i not in read]
        kept = [i for i in batch if i in read]
        t0 = time.perf_counter()
        objects = engine.predict([read[i] for i in kept]) if kept else []
        seconds += time.perf_counter() - t0
        preds += [{"image_id": i, "objects": o} for i, o in zip(kept, objects)]
        services.record_progress(evaluation, total=len(image_ids) - len(gone), processed=len(preds))
    truth = data.ground_truth(project.pk, [p["image_id"] for p in preds])  # images still there
    scored = {t["image_id"] for t in truth}
    gone += [p["image_id"] for p in preds if p["image_id"] not in scored]
    preds = [p for p in preds if p["image_id"] in scored]
    if not preds:
        raise ValueError("every image to score was deleted while the evaluation ran")
    if len(preds) != evaluation.total or len(preds) != evaluation.processed:
        services.record_progress(evaluation, total=len(preds), processed=len(preds))
    metrics = evaluate(truth, preds, data.class_parents(project.pk))
    names = data.class_names(project.pk)
    metrics["per_class"] = [{"class_id": int(k) if k.isdigit() else None, "name": names.get(k, k), **v}
                            for k, v in metrics["per_class"].items()]
    metrics["seconds_per_image"] = seconds / len(preds)
    metrics["image_ids"] = [p["image_id"] for p in preds]
    metrics["deleted_image_ids"] = sorted(gone)  # deleted while it ran: not scored
    services.finish(evaluation, metrics=metrics)


def _read(image_ids: list[int]) -> dict:
    """{image id: RGB pixels} of the images that still exist."""
    from backend.images.models import Image

    names = dict(Image.objects.filter(pk__in=image_ids).values_list("pk", "file"))
    read = {}
    for image_id in image_ids:
        if image_id not in names:
            continue
        try:
            read[image_id] = read_rgb(names[image_id])
        except OSError:
            if Image.objects.filter(pk=image_id).exists():
                raise  # a file missing under a live image is a fault to report, not a deletion
    return read
