from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backend.core.errors import NotFound
from backend.core.params import force_from, int_or_404, version_from
from backend.projects.access import Capability, ProjectScopedMixin

from . import services
from .models import Annotation
from .serializers import (
    AnnotationCreateSerializer,
    AnnotationSerializer,
    AnnotationUpdateSerializer,
    ReviewSerializer,
)


FORCE = OpenApiParameter(
    "force", bool, description="1: a project admin writes through another person's claim (audited); otherwise such a write is a 409",
)


class AnnotationViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    serializer_class = AnnotationSerializer
    capabilities = {
        "retrieve": Capability.READ,
        "create": Capability.ANNOTATE,
        "partial_update": Capability.ANNOTATE,
        "destroy": Capability.ANNOTATE,
        "review": Capability.REVIEW,
    }

    def retrieve(self, request, project_pk=None, pk=None):
        annotation = Annotation.objects.filter(project=self.project, pk=int_or_404(pk)).select_related("label_class").first()
        if annotation is None:
            raise NotFound("Annotation not found.")
        return Response(AnnotationSerializer(annotation).data)

    @extend_schema(request=AnnotationCreateSerializer, responses={201: AnnotationSerializer}, parameters=[FORCE])
    def create(self, request, project_pk=None):
        serializer = AnnotationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        annotation = services.create_annotation(
            project=self.project, image_id=data["image"], user=request.user, class_id=data["label_class"],
            mask_rle=data["mask_rle"], polygons=data["polygons"], force=force_from(request),
        )
        return Response(AnnotationSerializer(annotation).data, status=201)

    @extend_schema(request=AnnotationUpdateSerializer, responses=AnnotationSerializer, parameters=[FORCE])
    def partial_update(self, request, project_pk=None, pk=None):
        serializer = AnnotationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        changes = {}
        if "label_class" in data:
            changes["class_id"] = data["label_class"]
        for key in ("mask_rle", "polygons"):
            if key in data:
                changes[key] = data[key]
        annotation = services.update_annotation(
            project=self.project, annotation_id=int_or_404(pk), user=request.user, version=data["version"],
            force=force_from(request), **changes,
        )
        return Response(AnnotationSerializer(annotation).data)

    @extend_schema(responses={204: None}, parameters=[FORCE])
    def destroy(self, request, project_pk=None, pk=None):
        services.delete_annotation(
            project=self.project, annotation_id=int_or_404(pk), user=request.user, version=version_from(request),
            force=force_from(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ReviewSerializer, responses=AnnotationSerializer, parameters=[FORCE])
    @action(detail=True, methods=["post"])
    def review(self, request, project_pk=None, pk=None):
        serializer = ReviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        annotation = services.review_annotation(
            project=self.project, annotation_id=int_or_404(pk), user=request.user, force=force_from(request),
            **serializer.validated_data,
        )
        return Response(AnnotationSerializer(annotation).data)
