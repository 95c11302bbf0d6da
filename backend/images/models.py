from django.conf import settings
from django.db import models

from backend.projects.models import Project


class ImageStatus(models.TextChoices):
    NEW = "new"
    PRELABELED = "prelabeled"
    IN_REVIEW = "in_review"
    DONE = "done"


class Image(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(max_length=300)  # an app-generated name under MEDIA_ROOT
    original_name = models.CharField(max_length=500)
    # A small JPEG (long side <= 256 px) made at upload; "" until made (old images: on first request).
    thumbnail = models.CharField(max_length=300, blank=True, default="")
    # The PNG the review page draws for a file browsers cannot (images/display.py), made at the
    # first ?display=1 and kept: rebuilding it took 1.4 s a 6 MP TIFF, 7-19 s a 100 MP APNG, per open.
    rendition = models.CharField(max_length=300, blank=True, default="")
    content_type = models.CharField(max_length=40)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=ImageStatus.choices, default=ImageStatus.NEW)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # A reviewer's short lease on the image while it is open; a heartbeat extends it.
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)
    # The chunked upload (UploadSession id) that stored it: that upload's retry after a database
    # outage reports the images its first run stored as created, not as duplicates of themselves.
    # A plain id, no constraint or index: only ever compared with the session being processed.
    from_upload = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_unique_sha256_per_project"),
            models.CheckConstraint(condition=models.Q(status__in=ImageStatus.values), name="image_valid_status"),
            models.CheckConstraint(condition=models.Q(width__gt=0, height__gt=0), name="image_positive_size"),
        ]
        indexes = [models.Index(fields=["project", "status"])]

    @property
    def api_version(self) -> int:
        """The version the API shows and checks (images/versions.py)."""
        from .versions import api_version

        return api_version(self)

    def __str__(self) -> str:
        return self.original_name


class UploadStatus(models.TextChoices):
    RECEIVING = "receiving"  # chunks are arriving
    QUEUED = "queued"  # all bytes here; waiting for the cpu worker
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class UploadSession(models.Model):
    """One file sent in chunks: the bytes land in a temp file under VAR_DIR/uploads, and the cpu
    worker turns it into images (a zip into many). `received_bytes` is what a client resumes from."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="upload_sessions")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    file_name = models.CharField(max_length=500)
    size_bytes = models.BigIntegerField()
    received_bytes = models.BigIntegerField(default=0)
    # Optional hash the client computed; the worker checks the assembled bytes against it.
    sha256 = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=UploadStatus.choices, default=UploadStatus.RECEIVING)
    # {"created": [ids], "duplicates": [{name, existing_id}], "errors": [{name, error}]}
    result = models.JSONField(default=dict, blank=True)
    # Where the finished file waits for the cpu worker, in media storage (S3 or disk), so a worker
    # on another host can read it; empty while receiving.
    stored_name = models.CharField(max_length=300, blank=True, default="")
    # When its task reached the broker; None while queued = the commit hook could not send it and
    # the sweeper will (core/outbox.py).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=UploadStatus.values), name="upload_valid_status"),
            models.CheckConstraint(
                condition=models.Q(received_bytes__gte=0, received_bytes__lte=models.F("size_bytes")),
                name="upload_received_within_size",
            ),
        ]
        indexes = [models.Index(fields=["status", "updated_at"])]

    def __str__(self) -> str:
        return self.file_name
