"""A training run's work inside the gpu worker: approved objects -> ml.training -> a candidate
ModelVersion (services.register_version). Nothing here activates a model."""
from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import logging

from django.conf import settings
from django.db import connection, transaction

from backend.core.task_retry import DB_DOWN, riding_out_outages

from backend.gallery.versions import current_version
from backend.jobs.engine import get_pipeline, read_rgb
from backend.jobs.gallery_index import ensure_exemplar_embeddings, load_gallery

from . import data, services
from .models import ModelKind, TrainingRun

logger = logging.getLogger("razmetka.learning")


def _progress(run: TrainingRun, offset: float, scale: float):
    """The training's progress callback (and its cancel check), which a database restart does not
    end: a 4 s PostgreSQL restart made the whole task run again from step 0 (minutes of training
    lost). The note is skipped while the database is away; the next one reconnects."""

    def report(fraction: float) -> None:
        try:
            services.record_progress(run, progress=offset + scale * fraction)
        except DB_DOWN as exc:
            logger.warning("training %s: progress not recorded, the database is away (%s); training on", run.pk, exc)
            connection.close()  # a broken connection stays broken: the next call opens a new one

    return report


# How long a finished training waits for the database to record its model (a restart takes seconds).
REGISTER_WAIT_S = 120


def _register_despite_outages(**kwargs) -> None:
    # Past REGISTER_WAIT_S the task is run again (core/task_retry.run_or_retry).
    riding_out_outages(services.register_version, within=REGISTER_WAIT_S, **kwargs)


def _image_files(image_ids) -> dict[int, str]:
    from backend.images.models import Image

    return dict(Image.objects.filter(pk__in=list(image_ids)).values_list("pk", "file"))


def _read_image(image_id: int, name: str) -> np.ndarray:
    """An approved image's pixels; one that cannot be read refuses the training naming it, as a job
    names it (the training said "UnidentifiedImageError: cannot identify image file <_io.BytesIO>")."""
    from backend.core.unreadable import unreadable_reason
    from backend.images.models import Image
    from ml.errors import TrainingRefused

    try:
        return read_rgb(name)
    except Exception as exc:  # noqa: BLE001 - any unreadable file: refused with its name
        shown = Image.objects.filter(pk=image_id).values_list("original_name", flat=True).first() or f"#{image_id}"
        raise TrainingRefused(f"could not read the image '{shown}' (#{image_id}): {unreadable_reason(exc)}. Delete it "
                              "(or upload it again) and train again.") from None


def object_features(objects: list[data.ApprovedObject], pipeline, check=None) -> np.ndarray:
    """Each object's embedding: the stored crop vector when this embedder made it, else the
    masked crop embedded now (hand-drawn objects, or another embedder's vectors)."""
    from ml.embedders.crops import make_crop
    from ml.masks import decode_rle

    version = pipeline.embedder_version
    feats: list[np.ndarray | None] = [
        np.asarray(o.embedding, np.float32) if o.embedding is not None and o.embedder_version == version else None
        for o in objects
    ]
    todo = defaultdict(list)
    for i, o in enumerate(objects):
        if feats[i] is None:
            todo[o.image_id].append(i)
    files = _image_files(todo)
    e = pipeline.cfg.embedder
    for image_id, idx in todo.items():
        if check is not None:
            check()  # a cancel is heeded between images here too, not only between epochs
        image = _read_image(image_id, files[image_id])
        crops = []
        for i in idx:
            x, y, w, h = objects[i].bbox
            crops.append(make_crop(image, [x, y, x + w, y + h], decode_rle(objects[i].mask_rle), e.crop_mode,
                                   e.background, e.crop_padding))
        for i, vec in zip(idx, pipeline.embed_crops(crops)):
            feats[i] = vec
    return np.stack(feats) if feats else np.zeros((0, 0), np.float32)


def train_head_run(run: TrainingRun) -> None:
    from ml.training.head import HeadTrainingConfig, train_head

    pipeline = get_pipeline()
    objects = data.approved_for_training(run.project_id)
    x = object_features(objects, pipeline, check=lambda: services.check_live(run))
    with transaction.atomic():
        newest = current_version(run.project_id)
        ensure_exemplar_embeddings(project_id=run.project_id, pipeline=pipeline)
        gallery = load_gallery(project_id=run.project_id, embedder_version=pipeline.embedder_version)
    services.record_progress(run, progress=0.05)
    cfg = HeadTrainingConfig(**{k: v for k, v in run.params.items() if k in ("epochs", "hidden", "holdout", "seed")})
    trained = train_head(
        x, [o.label for o in objects], cfg,
        gallery=(gallery.embeddings, gallery.labels) if len(gallery) else None,
        meta={"embedder_version": pipeline.embedder_version, "project_id": run.project_id},
        progress=_progress(run, 0.05, 0.9),
    )
    metrics = {**trained.metrics, "gallery_version": newest.number, "embedder": pipeline.embedder_version}
    # Registers the candidate and ends the run done, in one transaction (unless it was cancelled).
    _register_despite_outages(run=run, file_name=f"head-p{run.project_id}-r{run.pk}.npz",
                              content=trained.head.to_bytes(), metrics=metrics,
                              embedder_version=pipeline.embedder_version)


def maskrcnn_samples(project_id: int):
    from ml.masks import decode_rle
    from ml.training.maskrcnn import Sample

    names = data.class_names(project_id)
    by_image = defaultdict(list)
    for o in data.approved_for_training(project_id):
        by_image[o.image_id].append(o)
    files = _image_files(by_image)
    return [Sample(_read_image(i, files[i]), [(names[o.label], decode_rle(o.mask_rle)) for o in objs], i)
            for i, objs in sorted(by_image.items())]


def train_maskrcnn_run(run: TrainingRun) -> None:
    from ml.training.maskrcnn import MaskRCNNTrainingConfig, train_maskrcnn

    device = str(getattr(get_pipeline().embedder, "device", "cpu"))  # the worker's device
    # The checkpoint names classes as they are called now; their ids outlive a rename (an
    # evaluation after one lost that class's predictions as "unknown").
    class_ids = {name: int(pk) for pk, name in data.class_names(run.project_id).items()}
    samples = maskrcnn_samples(run.project_id)
    services.check_live(run)
    keys = ("steps", "holdout", "seed", "batch_size", "arch", "min_size", "max_size", "rois_per_image", "lr")
    cfg = MaskRCNNTrainingConfig(**{k: v for k, v in run.params.items() if k in keys},
                                 time_budget_s=settings.CELERY_TASK_SOFT_TIME_LIMIT)
    tmp = Path(tempfile.mkdtemp(prefix="razmetka-maskrcnn-"))
    try:
        trained = train_maskrcnn(samples, tmp / "checkpoint", cfg, device=device,
                                 progress=_progress(run, 0.0, 0.9))
        held = [samples[i].image_id for i in trained.metrics.pop("heldout_indices", [])]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(trained.path.iterdir()):
                zf.write(f, f.name)
        metrics = {**trained.metrics, "heldout_image_ids": held, "class_names": trained.spec["class_names"],
                   "class_ids": {n: class_ids[n] for n in trained.spec["class_names"] if n in class_ids},
                   "device": device}
        _register_despite_outages(run=run, file_name=f"maskrcnn-p{run.project_id}-r{run.pk}.zip",
                                  content=buf.getvalue(), metrics=metrics)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(training: TrainingRun) -> None:
    if training.kind == ModelKind.HEAD:
        train_head_run(training)
    else:
        train_maskrcnn_run(training)
