"""Writes: start evaluations and trainings, record their progress, and the admin's decision
to activate or retire a model version. Nothing trained becomes active without that decision."""
from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from backend.core import events, outbox
from backend.core.errors import Conflict, DomainError
from backend.core.locking import check_version
from backend.core.task_retry import riding_out_outages
from backend.projects.models import Project

from . import data
from .models import LIVE_STATES, EvaluationRun, ModelKind, ModelVersion, RunState, TrainingRun

SUPPORTED_ENGINES = ("gdino-sam2", "maskrcnn")


def _emit(run) -> None:
    from .serializers import EvaluationRunSerializer, TrainingRunSerializer

    if isinstance(run, EvaluationRun):
        events.emit(run.project_id, "evaluation.progress", run=EvaluationRunSerializer(run).data)
    else:
        events.emit(run.project_id, "training.progress", run=TrainingRunSerializer(run).data)


class RunConflict(Conflict):
    """A run that is live (or already over) stands in the way: 409."""


class RunStopped(Exception):
    """The run was cancelled, or deleted with its project, while a worker ran it: the worker
    stops at its next check and registers nothing (tasks._guarded ends it quietly)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "cancelled", "deleted", or the state it was found in


_KIND_NAMES = {"head": "Projection head", "maskrcnn": "Mask R-CNN"}


def _what(run) -> str:
    """How a message names the run, capitalized ("Maskrcnn training" was str.capitalize's)."""
    if isinstance(run, TrainingRun):
        return f"{_KIND_NAMES.get(run.kind, run.kind)} training #{run.pk}"
    return f"Evaluation #{run.pk}"


def _lock_project(project_id: int) -> None:
    """Serializes a project's run starts and model decisions (FOR NO KEY UPDATE: inserts that
    refer to the project are not blocked). A project deleted meanwhile is a 404."""
    if not Project.objects.select_for_update(no_key=True).filter(pk=project_id).exists():
        from backend.core.errors import NotFound

        raise NotFound("Project not found.")


def _one_live_run(queryset, what: str) -> None:
    """At most one queued-or-running run per project and kind: the gpu worker is shared by every
    project's pre-annotation, and each run holds it for up to CELERY_TASK_TIME_LIMIT."""
    live = queryset.filter(state__in=LIVE_STATES).order_by("pk").first()
    if live is not None:
        raise RunConflict(f"{_what(live)} is already {live.state} in this project: wait for it to "
                          f"finish or cancel it before starting another {what}.",
                          extra={"running": {"id": live.pk, "state": live.state}})


def _check_engine_config(engine: str | None = None) -> None:
    if not settings.RAZMETKA_ML_CONFIG:
        raise DomainError("No models are configured on the workers: set RAZMETKA_ML_CONFIG to a pipeline config "
                          "(`make tiny-models` writes one for a trial) before measuring or training.")
    from backend.jobs.engines_api import engine_problem

    problem = engine_problem(engine)
    if problem:  # it started, then failed in the worker (black-box round 18)
        raise DomainError(f"The models can't run: {problem}. Fix the pipeline config (`make tiny-models` writes "
                          "one for a trial); nothing was started.", extra={"field": "engine"})


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
    if engine == "maskrcnn" and version is None:
        from .selectors import retired_maskrcnn_problem

        problem = retired_maskrcnn_problem(project.pk)
        if problem:
            raise DomainError(problem)
    _check_engine_config(engine)
    images = data.reviewed_image_ids(project.pk)
    if not images:
        raise DomainError("Nothing to measure against: no image has approved objects with nothing left pending. "
                          "Review some images first (accept their objects).")
    _lock_project(project.pk)
    _one_live_run(EvaluationRun.objects.filter(project=project), "evaluation")
    run = EvaluationRun.objects.create(project=project, engine=engine, model_version=version, split=split,
                                       created_by=user, total=len(images))
    outbox.send_on_commit(run)  # sent by the sweeper if the broker is down right now
    _emit(run)
    return run


HEAD_PARAMS = {"epochs": (1, 5000), "hidden": (4, 4096), "holdout": (0.05, 0.5), "seed": (0, 2**31)}
MASKRCNN_PARAMS = {"steps": (1, 100000), "holdout": (0.05, 0.5), "seed": (0, 2**31), "batch_size": (1, 16),
                   "min_size": (32, 2048), "max_size": (32, 4096), "rois_per_image": (8, 1024), "lr": (1e-6, 0.1), "arch": ("resnet50_fpn", "tiny")}

MASKRCNN_SIZE_DEFAULTS = (800, 1333)  # ml.training.maskrcnn.MaskRCNNTrainingConfig's min_size, max_size
FRACTIONAL_PARAMS = {"holdout", "lr"}  # every other numeric setting is a whole number


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
    if kind == ModelKind.HEAD and not objects.values("label_class_id").annotate(n=Count("id")).filter(n__gte=2).exists():
        # One object per class leaves nothing to hold out: the head ended "done", measured on nothing.
        raise DomainError("Training a head needs two or more approved objects of some class: one of them is held "
                          "out to measure the head before anyone activates it.")
    if kind == ModelKind.MASKRCNN and objects.values("image_id").distinct().count() < 2:
        raise DomainError("Training Mask R-CNN needs approved objects on at least two images.")
    _lock_project(project.pk)
    _one_live_run(TrainingRun.objects.filter(project=project, kind=kind), f"{kind} training")
    run = TrainingRun.objects.create(project=project, kind=kind, params=params, created_by=user)
    outbox.send_on_commit(run)
    _emit(run)
    return run


@transaction.atomic
def cancel_run(*, project: Project, model: type[EvaluationRun] | type[TrainingRun], run_id: int, user):
    """A queued run never starts; a running one stops at its worker's next step (training) or
    batch of images (evaluation) and registers nothing. Either way it is cancelled from now on."""
    run = model.objects.select_for_update().filter(project=project, pk=run_id).first()
    if run is None:
        from backend.core.errors import NotFound

        raise NotFound(f"{'Training run' if model is TrainingRun else 'Evaluation'} not found.")
    if run.state not in LIVE_STATES:
        raise RunConflict(f"{_what(run)} is already {run.state}; there is nothing to cancel.")
    run.state, run.finished_at = RunState.CANCELLED, timezone.now()
    run.error = f"Cancelled by {getattr(user, 'username', None) or 'an admin'}."
    run.save(update_fields=["state", "finished_at", "error"])
    _emit(run)
    return run


def _stopped(run) -> RunStopped:
    state = type(run).objects.filter(pk=run.pk).values_list("state", flat=True).first()
    return RunStopped("deleted" if state is None else state)


def _update(run, states, **fields) -> bool:
    """Write fields on the run only while it is in one of `states` (a cancelled or deleted run is
    never written again); False when it was not. No refresh_from_db: the row may be gone."""
    if not type(run).objects.filter(pk=run.pk, state__in=states).update(**fields):
        return False
    for name, value in fields.items():
        setattr(run, name, value)
    _emit(run)
    return True


def mark_running(run) -> bool:
    """False when the run was cancelled or deleted before its worker took it."""
    return _update(run, LIVE_STATES, state=RunState.RUNNING, started_at=timezone.now(), error="")


def check_live(run) -> None:
    """The worker's check between steps / images: raises RunStopped once the run is cancelled or
    gone. A short PostgreSQL restart is waited out (core/task_retry.riding_out_outages)."""
    if not riding_out_outages(type(run).objects.filter(pk=run.pk, state__in=LIVE_STATES).exists):
        raise _stopped(run)


def record_progress(run, **fields) -> None:
    """Progress, and the check between steps: raises RunStopped once it is cancelled or gone."""
    if not riding_out_outages(_update, run, LIVE_STATES, **fields):
        raise _stopped(run)


def finish(run, **fields) -> None:
    if not _update(run, LIVE_STATES, state=RunState.DONE, finished_at=timezone.now(), **fields):
        raise _stopped(run)


def fail(run, error: str) -> bool:
    """False when the run was no longer live (cancelled, finished, or deleted with its project)."""
    return _update(run, LIVE_STATES, state=RunState.FAILED, finished_at=timezone.now(), error=error[:4000])


@transaction.atomic
def register_version(*, run: TrainingRun, file_name: str, content, metrics: dict, embedder_version: str = "") -> ModelVersion:
    """A new candidate: never active (only activate_version, an admin's call, does that). The run
    ends done in the same transaction, so a cancel either comes first (RunStopped, nothing is
    registered) or finds the run done."""
    from django.core.files.base import ContentFile

    if not Project.objects.select_for_update().filter(pk=run.project_id).exists():
        raise RunStopped("deleted")  # with its project, while it trained
    state = TrainingRun.objects.select_for_update().filter(pk=run.pk).values_list("state", flat=True).first()
    if state is None or state in (RunState.CANCELLED, RunState.FAILED):  # failed: by the sweeper, "nothing saved"
        raise RunStopped(state or "deleted")
    last = ModelVersion.objects.filter(project_id=run.project_id, kind=run.kind).order_by("-number").values_list("number", flat=True).first()
    version = ModelVersion(project_id=run.project_id, kind=run.kind, number=(last or 0) + 1, metrics=metrics,
                           embedder_version=embedder_version, created_by=run.created_by)
    version.file.save(file_name, ContentFile(content), save=False)
    version.save()
    if state in LIVE_STATES:
        finish(run, progress=1.0, model_version=version)
    else:  # a finished run that only holds the version (tests, scripts)
        TrainingRun.objects.filter(pk=run.pk).update(model_version=version)
    return version


def _after_decision(version: ModelVersion) -> None:
    """A head changes every gallery score: re-score the pending objects (jobs.tasks.rescore on the
    cpu queue; its matcher applies the active head through selectors.active_transform). Jobs
    running now keep the head of their start, so what they write from now on is re-scored again
    once they are over (tasks.rescore_after_jobs)."""
    if version.kind != ModelKind.HEAD:
        return
    from backend.jobs.models import FINAL_JOB_STATES, PrelabelJob
    from backend.jobs.tasks import rescore

    from .tasks import rescore_after_jobs

    project_id = version.project_id
    live_jobs = list(PrelabelJob.objects.filter(project_id=project_id).exclude(status__in=FINAL_JOB_STATES)
                     .values_list("pk", flat=True))

    def send() -> None:
        outbox.publish(rescore, args=[project_id], queue=settings.QUEUE_CPU)
        if live_jobs:
            outbox.publish(rescore_after_jobs, args=[project_id, live_jobs], queue=settings.QUEUE_CPU)

    transaction.on_commit(send)


def _locked(project: Project, version_id: int) -> ModelVersion:
    # The project first: two activations of one kind at once each retired "the active one" they
    # saw and both set theirs active (IntegrityError on modelversion_one_active, a 500). Now they
    # run one after the other: the second retires the first's, or meets a version conflict.
    _lock_project(project.pk)
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
