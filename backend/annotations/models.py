from django.conf import settings
from django.db import models
from pgvector.django import VectorField

from backend.images.models import Image
from backend.projects.models import LabelClass, Project


# The most objects one image holds. Accept-all lists what the reviewer saw (`seen`, at most this
# many): an image with more (an import put 30,000 on one) could never be accepted, and each try
# cost a web process 20 s. Far above what a photo of tools or a screen shows.
MAX_OBJECTS_PER_IMAGE = 10_000


class Source(models.TextChoices):
    MODEL = "model"
    HUMAN = "human"


class ReviewState(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Annotation(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="annotations")
    # RESTRICT, not PROTECT: a class in use cannot be deleted, but deleting the whole project
    # (which cascades to both) needs no hand-written pre-deletion of its annotations.
    label_class = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.RESTRICT, related_name="annotations")
    # COCO compressed RLE: {"size": [h, w], "counts": "<str>"}.
    mask_rle = models.JSONField()
    bbox = models.JSONField()  # [x, y, w, h] in pixels, tight around the mask
    # [x, y, w, h] a boxes job prompted SAM with: a re-run prompts with it again, not with the
    # last mask's bbox (each run's box drifted to its mask's). None: the bbox is the box.
    prompt_box = models.JSONField(null=True, blank=True)
    area = models.PositiveIntegerField()
    source = models.CharField(max_length=8, choices=Source.choices)
    det_score = models.FloatField(null=True, blank=True)
    # GroundingDINO's phrase for the box (the prompt words above text_threshold); seed 000's vlm_class.
    det_phrase = models.CharField(max_length=255, blank=True, default="")  # writers cut longer ones
    mask_score = models.FloatField(null=True, blank=True)
    class_score = models.FloatField(null=True, blank=True)
    class_margin = models.FloatField(null=True, blank=True)
    # [{"class_id", "name", "score", "exemplar_id"}...], best first.
    candidates = models.JSONField(default=list, blank=True)
    embedding = VectorField(null=True, blank=True)
    embedder_version = models.CharField(max_length=200, blank=True, default="")
    class_review = models.CharField(max_length=10, choices=ReviewState.choices, default=ReviewState.PENDING)
    mask_review = models.CharField(max_length=10, choices=ReviewState.choices, default=ReviewState.PENDING)
    job_id = models.BigIntegerField(null=True, blank=True)  # the pre-annotation job that proposed it
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(source__in=Source.values), name="annotation_valid_source"),
            models.CheckConstraint(condition=models.Q(class_review__in=ReviewState.values), name="annotation_valid_class_review"),
            models.CheckConstraint(condition=models.Q(mask_review__in=ReviewState.values), name="annotation_valid_mask_review"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="annotation_version_positive"),
        ]
        indexes = [models.Index(fields=["project", "image"]), models.Index(fields=["image", "job_id"])]

    @property
    def touched_by_human(self) -> bool:
        # Re-scoring bumps the version but leaves updated_by empty: only people set it.
        return (
            self.source == Source.HUMAN
            or self.class_review != ReviewState.PENDING
            or self.mask_review != ReviewState.PENDING
            or self.updated_by_id is not None
        )


class ChangeSource(models.TextChoices):
    """Who caused a change: a person in the app, a pre-annotation job, an import, or re-scoring
    after a gallery change."""

    HUMAN = "human"
    MODEL = "model"
    IMPORT = "import"
    RESCORE = "rescore"


class AnnotationEvent(models.Model):
    """Append-only audit trail; a database trigger refuses UPDATEs (but the actor's SET NULL)."""

    class Action(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        REVIEWED = "reviewed"
        DELETED = "deleted"
        RESCORED = "rescored"
        RESTORED = "restored"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="events")
    # A plain id, not a foreign key: the trail outlives the annotation it describes.
    annotation_id = models.BigIntegerField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=10, choices=Action.choices)
    source = models.CharField(max_length=8, choices=ChangeSource.choices)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["image", "id"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(source__in=ChangeSource.values), name="event_valid_source"),
        ]


class CreateKey(models.Model):
    """An object created with an Idempotency-Key header: the same create sent again (a retry after
    an answer lost on the way back) answers this object instead of making a second one. Plain ids,
    not foreign keys: a key outlives its object, so a resend after a deletion is told so instead of
    making the object again. Kept KEY_DAYS days (services.create_annotation prunes a user's older keys)."""

    KEY_DAYS = 7
    MAX_LENGTH = 100

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=MAX_LENGTH)
    image_id = models.BigIntegerField()
    annotation_id = models.BigIntegerField()
    request_hash = models.CharField(max_length=64)  # SHA-256 of what the create asked for
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="createkey_unique_per_user")]
        indexes = [models.Index(fields=["user", "created_at"])]
