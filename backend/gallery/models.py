from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import VectorField

from backend.projects.models import LabelClass, Project


class ExemplarSource(models.TextChoices):
    UPLOADED = "uploaded"  # an admin uploaded it
    LEARNED = "learned"  # a reviewer's class fix (gallery.learning; projects opt in)


class GalleryImage(models.Model):
    """A reference crop of one class; the matcher compares every crop with every exemplar."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="gallery")
    label_class = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="exemplars")
    file = models.FileField(max_length=300)
    original_name = models.CharField(max_length=500)
    content_type = models.CharField(max_length=40)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Who added it: the uploader, or for a learned exemplar the reviewer whose fix it came from.
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=8, choices=ExemplarSource.choices, default=ExemplarSource.UPLOADED)
    # Provenance of a learned exemplar: plain ids, like the audit trail, so it outlives them.
    source_image_id = models.BigIntegerField(null=True, blank=True)
    source_annotation_id = models.BigIntegerField(null=True, blank=True)
    learned_event_id = models.BigIntegerField(null=True, blank=True, unique=True)  # one exemplar per fix
    created_at = models.DateTimeField(auto_now_add=True)
    # Removing an exemplar only hides it: older gallery versions (and jobs pinned to them) still use it.
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["label_class__name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["label_class", "sha256"], condition=models.Q(removed_at__isnull=True),
                name="gallery_unique_sha256_per_class",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label_class.name}: {self.original_name}"


class GalleryEmbedding(models.Model):
    """An exemplar's embedding for one embedder version (a new model gets new rows, not overwrites)."""

    gallery_image = models.ForeignKey(GalleryImage, on_delete=models.CASCADE, related_name="embeddings")
    embedder_version = models.CharField(max_length=200)
    vector = VectorField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gallery_image", "embedder_version"], name="gallery_embedding_unique_version"),
        ]


class GalleryVersion(models.Model):
    """An immutable set of exemplars: every gallery change records a new one, a job pins one."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="gallery_versions")
    number = models.PositiveIntegerField()  # the project's gallery_version when it was recorded
    exemplar_ids = ArrayField(models.BigIntegerField(), default=list)  # sorted GalleryImage ids
    negative_ids = ArrayField(models.BigIntegerField(), default=list)  # sorted HardNegative ids
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="gallery_version_unique_number"),
        ]

    def __str__(self) -> str:
        return f"gallery v{self.number} of project {self.project_id}"


class HardNegative(models.Model):
    """"This crop is not `label_class`": a class a reviewer moved an object away from. Its
    embedding is its crop's (GalleryEmbedding of `crop`, per embedder version); the matcher
    demotes the class for crops closer to it than to the class's own exemplars."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="hard_negatives")
    label_class = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="hard_negatives")
    crop = models.ForeignKey(GalleryImage, on_delete=models.CASCADE, related_name="negative_of")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    source_image_id = models.BigIntegerField(null=True, blank=True)
    source_annotation_id = models.BigIntegerField(null=True, blank=True)
    learned_event_id = models.BigIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)  # hidden, like exemplars: old versions keep it

    class Meta:
        ordering = ["label_class__name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["label_class", "crop"], condition=models.Q(removed_at__isnull=True),
                name="hard_negative_unique_crop_per_class",
            ),
        ]
