from django.db.models import QuerySet

from backend.core.errors import NotFound
from backend.core.filters import apply_filters, choice_filter, int_filter

from .models import ExemplarSource, GalleryImage, GalleryVersion, HardNegative


def exemplars_of_project(project, params) -> QuerySet[GalleryImage]:
    queryset = GalleryImage.objects.filter(project=project, removed_at__isnull=True).select_related(
        "label_class", "uploaded_by")
    return apply_filters(
        queryset, params,
        filters={"label_class": int_filter("label_class"), "source": choice_filter("source", ExemplarSource.values)},
        orderings={"id": "id", "created_at": "created_at", "class": "label_class__name"}, default_ordering="class",
    )


def get_exemplar(project, exemplar_id: int) -> GalleryImage:
    """Removed exemplars too: they stay part of older gallery versions."""
    exemplar = GalleryImage.objects.filter(project=project, pk=exemplar_id).first()
    if exemplar is None:
        raise NotFound("Gallery image not found.")
    return exemplar


def versions_of_project(project) -> QuerySet[GalleryVersion]:
    return GalleryVersion.objects.filter(project=project).order_by("-number")


def negatives_of_project(project, params) -> QuerySet[HardNegative]:
    queryset = HardNegative.objects.filter(project=project, removed_at__isnull=True).select_related(
        "label_class", "reviewer")
    return apply_filters(
        queryset, params, filters={"label_class": int_filter("label_class")},
        orderings={"id": "id", "created_at": "created_at", "class": "label_class__name"}, default_ordering="class",
    )
