from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower


class Role(models.TextChoices):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    ANNOTATOR = "annotator"
    VIEWER = "viewer"


def _default_prompts() -> list[str]:
    return ["hand tool"]


_unit = [MinValueValidator(0.0), MaxValueValidator(1.0)]


class Engine(models.TextChoices):
    """Pre-annotation engines of ml/engines (ml.engines.ENGINES holds the same names)."""
    GDINO_SAM2 = "gdino-sam2", "GroundingDINO + SAM 2"
    SAM3 = "sam3", "SAM 3 (text → masks)"
    MASKRCNN = "maskrcnn", "Mask R-CNN (closed set)"


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    prompts = models.JSONField(default=_default_prompts)
    box_threshold = models.FloatField(default=0.35, validators=_unit)
    text_threshold = models.FloatField(default=0.25, validators=_unit)
    nms_iou = models.FloatField(default=0.5, validators=_unit)
    unknown_threshold = models.FloatField(default=0.5, validators=_unit)
    min_margin = models.FloatField(default=0.0, validators=_unit)
    top_k = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(50)])
    # On by default, as in the ml CLI (MatcherConfig.unique_per_image) and seed 000: a photo holds
    # one of each tool, so two objects never both get the same class.
    unique_classes_per_image = models.BooleanField(default=True)
    # Which ml engine a job of this project runs (frozen into the job's settings snapshot).
    engine = models.CharField(max_length=32, choices=Engine.choices, default=Engine.GDINO_SAM2)
    # Opt-in: a reviewer's class fix adds the object's crop to the gallery (issue 15).
    learn_from_reviews = models.BooleanField(default=False)
    # Bumped on every gallery change: the number of the newest gallery.GalleryVersion (jobs pin one).
    gallery_version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(box_threshold__gte=0, box_threshold__lte=1), name="project_box_threshold_unit"),
            models.CheckConstraint(condition=models.Q(text_threshold__gte=0, text_threshold__lte=1), name="project_text_threshold_unit"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    # A role change or removal names the version it was based on: an admin working from a stale
    # list silently undid another admin's demotion (black-box round 16).
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_valid_role"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.project} ({self.role})"


class LabelClass(models.Model):
    class Kind(models.TextChoices):
        CLASS = "class"
        INSTANCE = "instance"  # one physical object, e.g. "screwdriver-1234"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="classes")
    name = models.CharField(max_length=120)
    color = models.CharField(max_length=7, default="#e6194b", validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$")])
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CLASS)
    # An instance belongs to one type class of the same project (services.validate_hierarchy keeps
    # it one level deep). services.delete_class refuses a type that still has instances; the cascade
    # is for deleting a whole project.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="instances")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "project", name="labelclass_unique_name_ci"),
            models.CheckConstraint(condition=models.Q(kind__in=["class", "instance"]), name="labelclass_valid_kind"),
            models.CheckConstraint(condition=models.Q(color__regex=r"^#[0-9a-fA-F]{6}$"), name="labelclass_valid_color"),
            # An instance has a type and a type has none; the services check the rest (same project,
            # the parent is a type) with messages a user can act on.
            models.CheckConstraint(
                condition=(models.Q(kind="instance", parent__isnull=False) | models.Q(kind="class", parent__isnull=True)),
                name="labelclass_instance_has_parent",
            ),
            models.CheckConstraint(condition=~models.Q(parent=models.F("id")), name="labelclass_not_own_parent"),
        ]

    def __str__(self) -> str:
        return self.name
