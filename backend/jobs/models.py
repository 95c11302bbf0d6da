from django.conf import settings
from django.db import models

from backend.images.models import Image
from backend.projects.models import Project


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_JOB_STATES = {JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED}


class ItemStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_ITEM_STATES = {ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.CANCELLED}


class PrelabelJob(models.Model):
    class Kind(models.TextChoices):
        PRELABEL = "prelabel"  # detector -> SAM 2 -> embedder -> matcher
        BOXES = "boxes"  # boxes already on the images (an import): SAM 2 -> embedder -> matcher

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prelabel_jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PRELABEL)
    # 1, 2, 3… within the project (what people call "job #3"); the id stays global.
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    # What it ran with: prompts, thresholds, model config, gallery version (for reproducibility).
    settings_snapshot = models.JSONField(default=dict)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    stage_ms = models.JSONField(default=dict)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=JobStatus.values), name="prelabeljob_valid_status"),
            models.UniqueConstraint(fields=["project", "number"], name="prelabeljob_unique_number"),
        ]


class PrelabelJobImage(models.Model):
    """One image of a job: the unit of idempotence. A redelivered batch skips finished items."""

    job = models.ForeignKey(PrelabelJob, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    stage_ms = models.JSONField(default=dict)
    detections = models.PositiveIntegerField(default=0)
    # The lease of a running item (leases.py): which worker process holds it, and until when (the
    # database's clock). A running item whose lease lapsed belongs to a dead worker: re-queued.
    lease_owner = models.CharField(max_length=120, blank=True, default="")
    leased_until = models.DateTimeField(null=True, blank=True)
    # When the message that carries this pending item reached the broker (dispatch.py). A pending
    # item without it was never sent (the broker was down at commit): the sweeper sends it.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The sweeper's query: running items by lease expiry (few rows, so a small partial index).
            models.Index(fields=["leased_until"], name="prelabeljobimage_lease", condition=models.Q(status="running")),
            models.Index(
                fields=["updated_at"], name="prelabeljobimage_unsent",
                condition=models.Q(status="pending", dispatched_at__isnull=True),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["job", "image"], name="prelabeljobimage_unique"),
            models.CheckConstraint(condition=models.Q(status__in=ItemStatus.values), name="prelabeljobimage_valid_status"),
        ]
