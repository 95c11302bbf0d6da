"""Writes: start evaluations and trainings, record their progress, and the admin's decision
to activate or retire a model version. Nothing trained becomes active without that decision."""
from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from backend.core import events, outbox
from backend.core.errors import DomainError
from backend.core.locking import check_version
from backend.projects.models import Project

from . import data
from .models import EvaluationRun, ModelKind, ModelVersion, RunState, TrainingRun

SUPPORTED_ENGINES = ("gdino-sam2", "maskrcnn")


def _emit(run) -> None:
    from .serializers import EvaluationRunSerializer, TrainingRunSerializer

    if isinstance(run, EvaluationRun):
        events.emit(run.project_id, "evaluation.progress", run=EvaluationRunSerializer(run).data)
    else:
        events.emit(run.project_id, "training.progress", run=TrainingRunSerializer(run).data)


def _check_engine_config() -> None:
    if not settings.RAZMETKA_ML_CONFIG:
        raise DomainError("No models are configured on the workers: set RAZMETKA_ML_CONFIG to a pipeline config "
                          "(`make tiny-models` writes one for a trial) before measuring or training.")


@transaction.atomic
def start_evaluation(*, project: Project, user, engine: str | None = None, model_version_id: int | None = None) -> EvaluationRun:
    asked = engine
    engine = engine or project.engine
    version = None
    split = EvaluationRun.Split.ALL
    if model_version_id is not None:
        if asked not in (None, "", "maskrcnn"):  # was silently measured as maskrcnn
            raise DomainError(f"A model version is a Mask R-CNN: leave engine out (or say 'maskrcnn'), not {asked!r}.")
        version = ModelVersion.objects.filter(project=project, pk=model_version_id, kind=ModelKind.MASKRCNN).first()
        if version is None:
            raise DomainError("Only a Mask R-CNN model version of this project can be scored on its own.")
        engine, split = "maskrcnn", EvaluationRun.Split.HELDOUT
    if engine not in SUPPORTED_ENGINES:
        raise DomainError(f"Measuring the {engine!r} engine is not supported yet; choose one of "
                          f"{', '.join(SUPPORTED_ENGINES)}.")
    _check_engine_config()
    images = data.reviewed_image_ids(project.pk)
    if not images:
        raise DomainError("Nothing to measure against: no image has approved objects with nothing left pending. "
                          "Review some images first (accept their objects).")
    run = EvaluationRun.objects.create(project=project, engine=engine, model_version=version, split=split,
                                       created_by=user, total=len(images))
    outbox.send_on_commit(run)  # sent by the sweeper if the broker is down right now
    _emit(run)
    return run


HEAD_PARAMS = {"epochs": (1, 5000), "hidden": (4, 4096), "holdout": (0.05, 0.5), "seed": (0, 2**31)}
MASKRCNN_PARAMS = {"steps": (1, 100000), "holdout": (0.05, 0.5), "seed": (0, 2**31), "batch_size": (1, 16),
                   "min_size": (32, 2048), "max_size": (32, 4096), "rois_per_image": (8, 1024), "arch": ("resnet50_fpn", "tiny")}

MASKRCNN_SIZE_DEFAULTS = (800, 1333)  # ml.training.maskrcnn.MaskRCNNTrainingConfig's min_size, max_size
FRACTIONAL_PARAMS = {"holdout"}  # every other numeric setting is a whole number


def _params(kind: str, given: dict) -> dict:
    allowed = HEAD_PARAMS if kind == ModelKind.HEAD else MASKRCNN_PARAMS
    unknown = set(given) - set(allowed)
    if unknown:
        raise DomainError(f"Unknown training setting(s): {', '.join(sorted(unknown))}; allowed: {', '.join(allowed)}.")
    out = {}
    for key, value in given.items():
        if key == "arch":
            if value not in allowed[key]:
                raise DomainError(f"arch must be one of {', '.join(allowed[key])}.", extra={"field": key})
            out[key] = value
            continue
        low, high = allowed[key]
        if key in FRACTIONAL_PARAMS:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
                raise DomainError(f"{key} must be a number from {low} to {high}.", extra={"field": key})
        else:  # counts and sizes: a JSON integer only, as every integer field of the API (2.0 was taken as 2)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise DomainError(f"{key} must be an integer from {low} to {high}.", extra={"field": key})
        out[key] = value
    if kind != ModelKind.HEAD:
        # The shorter side is scaled to min_size unless the longer one would pass max_size: a
        # min_size above max_size is never reached (torchvision's defaults: 800 and 1333).
        low, high = out.get("min_size", MASKRCNN_SIZE_DEFAULTS[0]), out.get("max_size", MASKRCNN_SIZE_DEFAULTS[1])
        if low > high:
            key = "min_size" if "min_size" in given else "max_size"
            raise DomainError(f"min_size ({low}) must not be larger than max_size ({high}).", extra={"field": key})
    return out


@transaction.atomic
def start_training(*, project: Project, user, kind: str, params: dict | None = None) -> TrainingRun:
    if kind not in ModelKind.values:
        raise DomainError(f"kind must be one of {', '.join(ModelKind.values)}.")
    params = _params(kind, params or {})
    _check_engine_config()
    objects = data.approved_objects(project.pk)
    classes = objects.values("label_class_id").distinct().count()
    if kind == ModelKind.HEAD and classes < 2:
        raise DomainError("Training a head needs approved objects of at least two classes.")
    if kind == ModelKind.MASKRCNN and objects.values("image_id").distinct().count() < 2:
        raise DomainError("Training Mask R-CNN needs approved objects on at least two images.")
    run = TrainingRun.objects.create(project=project, kind=kind, params=params, created_by=user)
    outbox.send_on_commit(run)
    _emit(run)
    return run


def mark_running(run) -> None:
    type(run).objects.filter(pk=run.pk).update(state=RunState.RUNNING, started_at=timezone.now(), error="")
    run.refresh_from_db()
    _emit(run)


def record_progress(run, **fields) -> None:
    type(run).objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    _emit(run)


def finish(run, **fields) -> None:
    type(run).objects.filter(pk=run.pk).update(state=RunState.DONE, finished_at=timezone.now(), **fields)
    run.refresh_from_db()
    _emit(run)


def fail(run, error: str) -> None:
    type(run).objects.filter(pk=run.pk).update(state=RunState.FAILED, finished_at=timezone.now(), error=error[:4000])
    run.refresh_from_db()
    _emit(run)


@transaction.atomic
def register_version(*, run: TrainingRun, file_name: str, content, metrics: dict, embedder_version: str = "") -> ModelVersion:
    """A new candidate: never active (only activate_version, an admin's call, does that)."""
    from django.core.files.base import ContentFile

    Project.objects.select_for_update().filter(pk=run.project_id).values_list("pk", flat=True).get()
    last = ModelVersion.objects.filter(project_id=run.project_id, kind=run.kind).order_by("-number").values_list("number", flat=True).first()
    version = ModelVersion(project_id=run.project_id, kind=run.kind, number=(last or 0) + 1, metrics=metrics,
                           embedder_version=embedder_version, created_by=run.created_by)
    version.file.save(file_name, ContentFile(content), save=False)
    version.save()
    TrainingRun.objects.filter(pk=run.pk).update(model_version=version)
    return version


def _after_decision(version: ModelVersion) -> None:
    """A head changes every gallery score: re-score the pending objects (jobs.tasks.rescore on the
    cpu queue; its matcher applies the active head through selectors.active_transform)."""
    if version.kind != ModelKind.HEAD:
        return
    from backend.jobs.tasks import rescore

    project_id = version.project_id
    transaction.on_commit(lambda: outbox.publish(rescore, args=[project_id], queue=settings.QUEUE_CPU))


def _locked(project: Project, version_id: int) -> ModelVersion:
    version = ModelVersion.objects.select_for_update().filter(project=project, pk=version_id).first()
    if version is None:
        from backend.core.errors import NotFound

        raise NotFound("Model version not found.")
    return version


@transaction.atomic
def activate_version(*, project: Project, version_id: int, user, version: int | None) -> ModelVersion:
    model = _locked(project, version_id)
    check_version(model, version)
    if model.state == ModelVersion.State.ACTIVE:
        raise DomainError(f"{model.kind} #{model.number} is already active.")
    # The one it replaces is retired (kept, and can be activated again).
    ModelVersion.objects.filter(project=project, kind=model.kind, state=ModelVersion.State.ACTIVE).update(
        state=ModelVersion.State.RETIRED, version=F("version") + 1)
    model.state = ModelVersion.State.ACTIVE
    model.promoted_by, model.promoted_at = user, timezone.now()
    model.version += 1
    model.save(update_fields=["state", "promoted_by", "promoted_at", "version"])
    _after_decision(model)
    return model


@transaction.atomic
def deactivate_version(*, project: Project, version_id: int, user, version: int | None) -> ModelVersion:
    model = _locked(project, version_id)
    check_version(model, version)
    if model.state != ModelVersion.State.ACTIVE:
        raise DomainError(f"{model.kind} #{model.number} is not active.")
    model.state = ModelVersion.State.RETIRED
    model.version += 1
    model.save(update_fields=["state", "version"])
    _after_decision(model)
    return model
