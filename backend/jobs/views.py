from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backend.core.errors import NotFound
from backend.core.filters import apply_filters, choice_filter
from backend.core.strict import empty_body
from backend.core.params import int_or_404
from backend.images import selectors as image_selectors
from backend.projects.access import Capability, ProjectScopedMixin

from . import selectors, services
from .models import ItemStatus, JobStatus, PrelabelJob
from .interactive import refine_now, segment_box_now
from .serializers import (
    PrelabelJobItemSerializer,
    PrelabelJobSerializer,
    RefineRequestSerializer,
    RefineResultSerializer,
    SegmentRequestSerializer,
    SegmentResultSerializer,
    StartJobSerializer,
    StartedJobSerializer,
)


class PrelabelJobViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    serializer_class = PrelabelJobSerializer
    capabilities = {"items": Capability.READ}

    ITEM_FILTERS = {"status": choice_filter("status", ItemStatus.values)}

    def _job(self, pk) -> PrelabelJob:
        job = PrelabelJob.objects.filter(project=self.project, pk=int_or_404(pk)).first()
        if job is None:
            raise NotFound("Job not found.")
        return job

    def list(self, request, project_pk=None):
        queryset = apply_filters(
            PrelabelJob.objects.filter(project=self.project).select_related("created_by"), request.query_params,
            filters={"status": choice_filter("status", JobStatus.values)},
            orderings={"id": "id", "created_at": "created_at"}, default_ordering="-id",
        )
        page = self.paginate_queryset(selectors.with_objects_found(queryset))
        return self.get_paginated_response(PrelabelJobSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(PrelabelJobSerializer(self._job(pk)).data)

    @extend_schema(request=StartJobSerializer, responses={201: StartedJobSerializer})
    def create(self, request, project_pk=None):
        serializer = StartJobSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        job = services.start_job(
            project=self.project, user=request.user, images=data.pop("images"), kind=data.pop("kind"), overrides=data,
        )
        return Response({**PrelabelJobSerializer(job).data, "held_by_others": selectors.held_by_others(job, request.user)},
                        status=201)

    @extend_schema(request=None, responses=PrelabelJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, project_pk=None, pk=None):
        empty_body(request)  # "a write refuses a body field it does not know" (README)
        return Response(PrelabelJobSerializer(services.cancel_job(project=self.project, job_id=int_or_404(pk))).data)

    @extend_schema(request=None, responses=PrelabelJobSerializer)
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request, project_pk=None, pk=None):
        empty_body(request)
        job = services.retry_failed(project=self.project, job_id=int_or_404(pk), user=request.user)
        return Response(PrelabelJobSerializer(job).data)

    @extend_schema(responses=PrelabelJobItemSerializer(many=True))
    @action(detail=True, methods=["get"])
    def items(self, request, project_pk=None, pk=None):
        items = apply_filters(self._job(pk).items.all(), request.query_params, filters=self.ITEM_FILTERS,
                              orderings={"id": "id", "image": "image_id"}, default_ordering="id")
        page = self.paginate_queryset(items)
        return self.get_paginated_response(PrelabelJobItemSerializer(page, many=True).data)


class ImageSegmentViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    """Box → SAM 2 mask on an image, with the gallery's class proposal, and click-refine on the
    worker's cached embedding (routed under images/)."""

    serializer_class = SegmentResultSerializer
    capabilities = {"segment": Capability.ANNOTATE, "refine": Capability.ANNOTATE}

    @extend_schema(request=SegmentRequestSerializer, responses=SegmentResultSerializer)
    @action(detail=True, methods=["post"])
    def segment(self, request, project_pk=None, pk=None):
        serializer = SegmentRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        image = image_selectors.get_image(self.project, int_or_404(pk))
        return Response(segment_box_now(image=image, box=serializer.validated_data["box"], user=request.user))

    @extend_schema(request=RefineRequestSerializer, responses=RefineResultSerializer)
    @action(detail=True, methods=["post"])
    def refine(self, request, project_pk=None, pk=None):
        serializer = RefineRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        image = image_selectors.get_image(self.project, int_or_404(pk))
        return Response(refine_now(image=image, user=request.user, points=data["points"], labels=data["labels"],
                                   box=data.get("box"), annotation_id=data.get("annotation")))
