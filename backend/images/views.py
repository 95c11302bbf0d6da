from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backend.core.files import private_file_response
from backend.core.params import int_or_404
from backend.core.upload_guard import check_upload_request
from backend.projects.access import Capability, ProjectScopedMixin

from . import claims, selectors, services
from .models import ImageStatus
from .serializers import (
    ClaimSerializer,
    ImageSerializer,
    SegmentRequestSerializer,
    SegmentResultSerializer,
    UploadReportSerializer,
    UploadSerializer,
)


class ImageViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    serializer_class = ImageSerializer
    capabilities = {"create": Capability.ANNOTATE}

    @extend_schema(parameters=[
        OpenApiParameter("status", str, enum=ImageStatus.values),
        OpenApiParameter("label_class", int),
        OpenApiParameter("id", str, description="comma-separated ids"),
        OpenApiParameter("ordering", str),
    ])
    def list(self, request, project_pk=None):
        page = self.paginate_queryset(selectors.images_of_project(self.project, request.query_params))
        return self.get_paginated_response(ImageSerializer(page, many=True).data)

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: UploadReportSerializer})
    def create(self, request, project_pk=None):
        report = services.upload_images(project=self.project, user=request.user, files=check_upload_request(request))
        body = {
            "created": ImageSerializer(report.created, many=True).data,
            "duplicates": report.duplicates,
            "errors": report.errors,
        }
        if report.created:
            code = status.HTTP_201_CREATED
        elif report.errors:
            code = status.HTTP_400_BAD_REQUEST
        else:
            code = status.HTTP_200_OK
        return Response(body, status=code)

    @extend_schema(responses={(200, "image/*"): bytes})
    @action(detail=True, methods=["get"])
    def file(self, request, project_pk=None, pk=None):
        image = selectors.get_image(self.project, int_or_404(pk))
        return private_file_response(image.file.name, image.content_type, image.original_name.rsplit("/", 1)[-1])


class ImageReviewViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    """Claims, the review queue and interactive segmentation on images."""

    serializer_class = ImageSerializer
    capabilities = {"claim": Capability.ANNOTATE, "next": Capability.READ, "segment": Capability.ANNOTATE}

    @extend_schema(request=None, responses={200: ClaimSerializer, 409: ClaimSerializer})
    @action(detail=True, methods=["post", "delete"])
    def claim(self, request, project_pk=None, pk=None):
        if request.method == "DELETE":
            claims.release_image(project=self.project, image_id=int_or_404(pk), user=request.user, membership=self.membership)
            return Response({"claimed_by": None, "expires_at": None})
        image = claims.claim_image(project=self.project, image_id=int_or_404(pk), user=request.user)
        return Response({"claimed_by": request.user.username, "expires_at": image.claim_expires_at})

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("label_class", int), OpenApiParameter("after", str)],
        responses={200: ImageSerializer, 204: None},
    )
    @action(detail=False, methods=["get"])
    def next(self, request, project_pk=None):
        image = selectors.next_for_review(self.project, request.user, request.query_params)
        if image is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ImageSerializer(image).data)

    @extend_schema(request=SegmentRequestSerializer, responses=SegmentResultSerializer)
    @action(detail=True, methods=["post"])
    def segment(self, request, project_pk=None, pk=None):
        serializer = SegmentRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        image = selectors.get_image(self.project, int_or_404(pk))
        from backend.jobs.interactive import segment_box_now

        return Response(segment_box_now(image=image, box=serializer.validated_data["box"]))
