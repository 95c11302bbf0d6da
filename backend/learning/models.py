"""Measured accuracy (EvaluationRun) and trained models (TrainingRun -> ModelVersion), issue 15."""
from django.conf import settings
from django.db import models

from backend.projects.models import Project


class RunState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # by an admin: stopped at the worker's next step / image, nothing registered


LIVE_STATES = (RunState.QUEUED, RunState.RUNNING)
FINAL_STATES = (RunState.DONE, RunState.FAILED, RunState.CANCELLED)


class ModelKind(models.TextChoices):
    HEAD = "head"  # projection head over embedder features (ml.head.Head, .npz)
    MASKRCNN = "maskrcnn"  # Mask R-CNN checkpoint folder, zipped (ml.maskrcnn_model)


class EvaluationRun(models.Model):
    """One engine scored against the project's approved objects (ml.evaluation)."""

    class Split(models.TextChoices):
        ALL = "all"  # every fully reviewed image with approved objects
        HELDOUT = "heldout"  # the held-out images of the model version it scores

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="evaluation_runs")
    engine = models.CharField(max_length=32)
    # A Mask R-CNN version scored on its own, or the head that was active when it ran (recorded).
    model_version = models.ForeignKey("ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    fingerprint = models.CharField(max_length=500, blank=True, default="")  # weights/config it ran with
    weights = models.CharField(max_length=300, blank=True, default="")  # human-readable: what models
    gallery_version = models.PositiveIntegerField(null=True, blank=True)
    device = models.CharField(max_length=40, blank=True, default="")
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.ALL)
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    metrics = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When its task reached the broker; None while queued = the commit hook could not send it and
    # the sweeper will (core/outbox.py).
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=models.Q(state__in=RunState.values), name="evaluationrun_valid_state")]


class ModelVersion(models.Model):
    """A trained model. Training only ever makes a candidate; an admin activates it."""

    class State(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    kind = models.CharField(max_length=10, choices=ModelKind.choices)
    number = models.PositiveIntegerField()  # 1, 2, 3… per project and kind
    state = models.CharField(max_length=10, choices=State.choices, default=State.CANDIDATE)
    file = models.FileField(upload_to="models/", max_length=300)
    embedder_version = models.CharField(max_length=500, blank=True, default="")  # a head fits one embedder
    metrics = models.JSONField(default=dict, blank=True)  # held-out scores and the split it was trained on
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "model version"
        constraints = [
            models.UniqueConstraint(fields=["project", "kind", "number"], name="modelversion_unique_number"),
            # At most one active model of a kind per project.
            models.UniqueConstraint(fields=["project", "kind"], condition=models.Q(state="active"),
                                    name="modelversion_one_active"),
            models.CheckConstraint(condition=models.Q(state__in=["candidate", "active", "retired"]),
                                   name="modelversion_valid_state"),
        ]


class TrainingRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    kind = models.CharField(max_length=10, choices=ModelKind.choices)
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.QUEUED)
    progress = models.FloatField(default=0.0)
    params = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When its task reached the broker; None while queued = the commit hook could not send it and
    # the sweeper will (core/outbox.py).
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=models.Q(state__in=RunState.values), name="trainingrun_valid_state")]
