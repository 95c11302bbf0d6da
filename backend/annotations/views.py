from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from backend.core.errors import NotFound
from backend.core.filters import one_id, only_params
from backend.core.params import force_from, int_or_404, version_from, version_parameter
from backend.core.strict import echo_context
from backend.images import selectors as image_selectors
from backend.images import services as image_services
from backend.images.serializers import ImageSerializer
from backend.projects.access import Capability, ProjectScopedMixin

from . import selectors, services
from .models import Annotation, CreateKey
from .serializers import (
    AcceptAllSerializer,
    AnnotationCreateSerializer,
    AnnotationEventSerializer,
    AnnotationSerializer,
    AnnotationUpdateSerializer,
    ImageDetailSerializer,
    RestoreSerializer,
    ReviewSerializer,
)


FORCE = OpenApiParameter(
    "force", bool, description="1: a project admin writes through another person's claim (audited); otherwise such a write is a 409",
)


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, location=OpenApiParameter.HEADER,
    description="Any unique text (a UUID) per new object: the same create sent again with it (a retry after a "
                "lost answer) answers 200 with the object the first one made, instead of making a second one",
)


def idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= CreateKey.MAX_LENGTH or not all("!" <= c <= "~" for c in key):
        raise ValidationError({"Idempotency-Key": [f"Send 1 to {CreateKey.MAX_LENGTH} printable ASCII characters "
                                                   "without spaces (a UUID), or leave the header out."]})
    return key


class AnnotationViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    serializer_class = AnnotationSerializer
    capabilities = {
        "retrieve": Capability.READ,
        "create": Capability.ANNOTATE,
        "partial_update": Capability.ANNOTATE,
        "destroy": Capability.ANNOTATE,
        "review": Capability.REVIEW,
        "restore": Capability.ANNOTATE,
        "events": Capability.READ,
    }
    # The query parameters each write takes (backend.core.params.check_write_params).
    write_params = {action: ("force",) for action in ("create", "partial_update", "review", "restore")} | {
        "destroy": ("version", "force"),
    }

    def retrieve(self, request, project_pk=None, pk=None):
        annotation = Annotation.objects.filter(project=self.project, pk=int_or_404(pk)).select_related("label_class").first()
        if annotation is None:
            raise NotFound("Annotation not found.")
        return Response(AnnotationSerializer(annotation).data)

    @extend_schema(request=AnnotationCreateSerializer, responses={201: AnnotationSerializer, 200: AnnotationSerializer},
                   parameters=[FORCE, IDEMPOTENCY_KEY])
    def create(self, request, project_pk=None):
        key = idempotency_key(request)
        serializer = AnnotationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        annotation = services.create_annotation(
            project=self.project, image_id=data["image"], user=request.user, class_id=data["label_class"],
            mask_rle=data["mask_rle"], polygons=data["polygons"], force=force_from(request), proposal=data["proposal"],
            key=key,
        )
        if getattr(annotation, "replayed", False):
            return Response(AnnotationSerializer(annotation).data, status=200, headers={"Idempotent-Replayed": "true"})
        return Response(AnnotationSerializer(annotation).data, status=201)

    @extend_schema(request=AnnotationUpdateSerializer, responses=AnnotationSerializer, parameters=[FORCE])
    def partial_update(self, request, project_pk=None, pk=None):
        serializer = AnnotationUpdateSerializer(data=request.data, context=echo_context(
            request.data, AnnotationUpdateSerializer,
            lambda: Annotation.objects.filter(project=self.project, pk=int_or_404(pk)).select_related("label_class").first()))
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

    @extend_schema(responses={204: None}, parameters=[FORCE, version_parameter()])
    def destroy(self, request, project_pk=None, pk=None):
        services.delete_annotation(
            project=self.project, annotation_id=int_or_404(pk), user=request.user,
            version=version_from(request, also=("force",)), force=force_from(request),
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

    @extend_schema(request=RestoreSerializer, responses=AnnotationSerializer, parameters=[FORCE])
    @action(detail=True, methods=["post"])
    def restore(self, request, project_pk=None, pk=None):
        """Bring the class and mask back to what they were after one of this object's events."""
        serializer = RestoreSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        annotation = services.restore_annotation(
            project=self.project, annotation_id=int_or_404(pk), user=request.user, force=force_from(request),
            event_id=serializer.validated_data["event"], version=serializer.validated_data["version"],
        )
        return Response(AnnotationSerializer(annotation).data)

    @extend_schema(responses=AnnotationEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def events(self, request, project_pk=None, pk=None):
        """This object's history, oldest first; still readable after the object was deleted."""
        only_params(request.query_params)
        annotation_id = int_or_404(pk)
        events = selectors.events_of_annotation(self.project, annotation_id)
        # A deleted object keeps its trail; an id that never was one of this project's is a 404.
        if not events.exists() and not Annotation.objects.filter(project=self.project, pk=annotation_id).exists():
            raise NotFound("Annotation not found.")
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AnnotationEventSerializer(page, many=True).data)


class ImageBundleViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    """An image with its objects, its history, accept-all and deletion (routed under images/)."""

    serializer_class = ImageDetailSerializer
    capabilities = {"accept_all": Capability.REVIEW, "destroy": Capability.MANAGE}
    write_params = {"accept_all": ("force",), "destroy": ("version", "force")}

    @extend_schema(responses=ImageDetailSerializer)
    def retrieve(self, request, project_pk=None, pk=None):
        """The image (fresh: status, claim) with its objects (the rendered JSON, cached per
        process while the rows are unchanged: selectors.annotation_rows_json)."""
        image = selectors.image_for_detail(self.project, int_or_404(pk))
        if image is None:
            raise NotFound("Image not found.")
        head = JSONRenderer().render(ImageSerializer(image).data)
        body = head[:-1] + b',"annotations":' + selectors.annotation_rows_json(image, image.rows_fingerprint) + b"}"
        return HttpResponse(body, content_type="application/json")

    @extend_schema(responses={204: None}, parameters=[
        version_parameter(),
        OpenApiParameter("force", bool, description="1: delete it though someone else holds it (a claim)")])
    def destroy(self, request, project_pk=None, pk=None):
        image_services.delete_image(project=self.project, image_id=int_or_404(pk),
                                    version=version_from(request, also=("force",)), user=request.user,
                                    force=force_from(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses=AnnotationEventSerializer(many=True),
        parameters=[OpenApiParameter("annotation", int, description="only this object's events")],
    )
    @action(detail=True, methods=["get"])
    def events(self, request, project_pk=None, pk=None):
        image = image_selectors.get_image(self.project, int_or_404(pk))
        only_params(request.query_params, {"annotation"})
        raw = request.query_params.get("annotation")
        # A filter, not a path: a bad value is the client's 400, not a 404.
        annotation_id = one_id("annotation", raw) if raw is not None else None  # "" is a 400, not "all"
        page = self.paginate_queryset(selectors.events_of_image(image, annotation_id))
        return self.get_paginated_response(AnnotationEventSerializer(page, many=True).data)

    @extend_schema(
        request=AcceptAllSerializer, responses=AnnotationSerializer(many=True),
        parameters=[OpenApiParameter("force", bool, description="1: a project admin accepts through another person's claim (audited)")],
    )
    @action(detail=True, methods=["post"], url_path="accept-all", pagination_class=None)  # the schema offered page=
    def accept_all(self, request, project_pk=None, pk=None):
        serializer = AcceptAllSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changed = services.accept_all(
            project=self.project, image_id=int_or_404(pk), user=request.user,
            image_version=serializer.validated_data.get("version"), force=force_from(request),
            seen=serializer.validated_data["seen"],
        )
        return Response(AnnotationSerializer(changed, many=True).data)
