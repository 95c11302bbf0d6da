from django.conf import settings
from django.db import models

from backend.projects.models import Project


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ExchangeFormat(models.TextChoices):
    COCO = "coco"
    LABELME = "labelme"
    YOLO = "yolo"
    NATIVE = "native"  # seed 000's predictions.json
    LABELSTUDIO = "labelstudio"


class _Job(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    format = models.CharField(max_length=16, choices=ExchangeFormat.choices)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When its task reached the broker; None while queued = the commit hook could not send it and
    # the sweeper will (core/outbox.py).
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-id"]


class ExportJob(_Job):
    error = models.TextField(blank=True, default="")
    result_file = models.CharField(max_length=300, blank=True, default="")  # a storage name under exports/
    result_size = models.BigIntegerField(default=0)
    # When retention (EXPORTS_KEPT_PER_PROJECT) deleted the file of this finished export; its row
    # stays as a record, result_file is then "" and a download answers 410.
    expired_at = models.DateTimeField(null=True, blank=True)
    # {"images": n, "annotations": n, "skipped_unclassified": n}
    result = models.JSONField(default=dict, blank=True)

    class Meta(_Job.Meta):
        indexes = [models.Index(fields=["project", "-id"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=JobStatus.values), name="exportjob_valid_status"),
            models.CheckConstraint(condition=models.Q(format__in=ExchangeFormat.values), name="exportjob_valid_format"),
        ]


class ImportJob(_Job):
    upload_file = models.CharField(max_length=300, blank=True, default="")  # storage name under imports/
    upload_name = models.CharField(max_length=300, blank=True, default="")
    # "checking" (pass 1: done = items read, total 0 until the end) or "writing" (pass 2).
    progress_stage = models.CharField(max_length=10, blank=True, default="")
    # [{"item": "<names the file/entry/object>", "error": "..."}]; any error means nothing applied.
    # At most the first 500, then {"item": "…", "error": "and N more errors"}.
    errors = models.JSONField(default=list, blank=True)
    # {"annotations": n, "images": n, "classes_created": [...], "box_only": [annotation ids]};
    # a failed import: {"error_count": n}.
    result = models.JSONField(default=dict, blank=True)

    class Meta(_Job.Meta):
        indexes = [models.Index(fields=["project", "-id"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=JobStatus.values), name="importjob_valid_status"),
            models.CheckConstraint(condition=models.Q(format__in=ExchangeFormat.values), name="importjob_valid_format"),
        ]
