from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backend.core.strict import empty_body, form_int
from backend.core.files import private_file_response
from backend.core.filters import only_params
from backend.core.params import int_or_404
from backend.core.upload_guard import check_upload_request
from backend.core.body_parsers import FilesOnlyWhereNamed
from backend.projects.access import Capability, ProjectScopedMixin

from . import selectors, services
from .serializers import (
    GalleryImageSerializer, GalleryUploadReportSerializer, GalleryUploadSerializer, GalleryVersionSerializer,
    HardNegativeSerializer, PruneReportSerializer, PruneSerializer,
)


class GalleryViewSet(FilesOnlyWhereNamed, ProjectScopedMixin, viewsets.GenericViewSet):
    multipart_actions = ("create",)
    serializer_class = GalleryImageSerializer
    capabilities = {"file": Capability.READ}

    @extend_schema(parameters=[OpenApiParameter("label_class", int), OpenApiParameter("ordering", str),
                               OpenApiParameter("source", str, enum=["uploaded", "learned"])])
    def list(self, request, project_pk=None):
        page = self.paginate_queryset(selectors.exemplars_of_project(self.project, request.query_params))
        return self.get_paginated_response(GalleryImageSerializer(page, many=True).data)

    @extend_schema(request={"multipart/form-data": GalleryUploadSerializer}, responses={201: GalleryUploadReportSerializer})
    def create(self, request, project_pk=None):
        files = check_upload_request(request, fields=("files", "label_class"))
        raw_class = request.data.get("label_class")
        class_id = form_int(raw_class, name="label_class")  # ASCII digits: int() took " 3" and "٣"
        report = services.upload_exemplars(project=self.project, user=request.user, files=files, class_id=class_id)
        body = {
            "created": GalleryImageSerializer(report.created, many=True).data,
            "created_classes": report.created_classes,
            "duplicates": report.duplicates,
            "errors": report.errors,
            "also_in": report.also_in,
        }
        code = status.HTTP_201_CREATED if report.created else (status.HTTP_400_BAD_REQUEST if report.errors else 200)
        return Response(body, status=code)


    @extend_schema(responses={204: None})
    def destroy(self, request, project_pk=None, pk=None):
        empty_body(request)
        services.delete_exemplar(project=self.project, exemplar_id=int_or_404(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=PruneSerializer, responses={200: PruneReportSerializer})
    @action(detail=False, methods=["post"])
    def prune(self, request, project_pk=None):
        """Remove several exemplars and hard negatives at once (admins; one new gallery version)."""
        body = PruneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(services.prune(project=self.project, **body.validated_data))

    @extend_schema(parameters=[OpenApiParameter("label_class", int), OpenApiParameter("ordering", str)],
                   responses={200: HardNegativeSerializer(many=True)})
    @action(detail=False, methods=["get"])
    def negatives(self, request, project_pk=None):
        """Hard negatives learned from reviewers' class fixes: "this crop is not that class"."""
        page = self.paginate_queryset(selectors.negatives_of_project(self.project, request.query_params))
        return self.get_paginated_response(HardNegativeSerializer(page, many=True).data)

    @extend_schema(responses={204: None})
    @action(detail=False, methods=["delete"], url_path="negatives/<int:negative_id>")
    def delete_negative(self, request, project_pk=None, negative_id=None):
        empty_body(request)
        services.prune(project=self.project, exemplar_ids=[], negative_ids=[int_or_404(negative_id)])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: GalleryVersionSerializer(many=True)})
    @action(detail=False, methods=["get"])
    def versions(self, request, project_pk=None):
        """Every recorded gallery version, newest first: which exemplars each one matched against."""
        only_params(request.query_params)
        page = self.paginate_queryset(selectors.versions_of_project(self.project))
        return self.get_paginated_response(GalleryVersionSerializer(page, many=True).data)

    @extend_schema(responses={(200, "image/*"): bytes})
    @action(detail=True, methods=["get"])
    def file(self, request, project_pk=None, pk=None):
        only_params(request.query_params, paged=False)  # any parameter was taken in silence
        exemplar = selectors.get_exemplar(self.project, int_or_404(pk))
        return private_file_response(exemplar.file.name, exemplar.content_type, exemplar.original_name.rsplit("/", 1)[-1])
