from django.db.models import QuerySet

from .models import Annotation, AnnotationEvent


def annotations_of_image(image) -> QuerySet[Annotation]:
    return Annotation.objects.filter(image=image).select_related("label_class").defer("embedding").order_by("id")


def events_of_image(image) -> QuerySet[AnnotationEvent]:
    return AnnotationEvent.objects.filter(image=image).select_related("actor").order_by("id")
