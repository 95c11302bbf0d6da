from django.db.models import Count, Q, QuerySet

from backend.core.errors import NotFound
from backend.core.filters import apply_filters, choice_filter, int_filter
from backend.projects.models import Project

from .models import Image, ImageStatus

IMAGE_FILTERS = {
    "status": choice_filter("status", ImageStatus.values),
    "id": int_filter("pk"),
    "label_class": int_filter("annotations__label_class"),
}
IMAGE_ORDERINGS = {"id": "id", "created_at": "created_at", "original_name": "original_name", "status": "status"}


def images_of_project(project: Project, params) -> QuerySet[Image]:
    queryset = Image.objects.filter(project=project).annotate(
        annotation_count=Count("annotations", distinct=True),
        pending_count=Count(
            "annotations",
            filter=Q(annotations__class_review="pending") | Q(annotations__mask_review="pending"),
            distinct=True,
        ),
    )
    queryset = apply_filters(queryset, params, filters=IMAGE_FILTERS, orderings=IMAGE_ORDERINGS, default_ordering="id")
    return queryset.distinct() if "label_class" in params else queryset


def get_image(project: Project, image_id: int) -> Image:
    image = Image.objects.filter(project=project, pk=image_id).first()
    if image is None:
        raise NotFound("Image not found.")
    return image


def status_counts(project: Project) -> dict[str, int]:
    counts = dict(Image.objects.filter(project=project).values_list("status").annotate(n=Count("id")))
    return {status: counts.get(status, 0) for status in ImageStatus.values}
