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

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_unique_sha256_per_project"),
            models.CheckConstraint(condition=models.Q(status__in=ImageStatus.values), name="image_valid_status"),
            models.CheckConstraint(condition=models.Q(width__gt=0, height__gt=0), name="image_positive_size"),
        ]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return self.original_name
