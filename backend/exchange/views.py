from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backend.core.errors import NotFound, PermissionDenied
from backend.core.files import private_file_response
from backend.core.filters import only_params
from backend.core.params import int_or_404
from backend.core.body_parsers import FilesOnlyWhereNamed
from backend.core.strict import empty_body, single_form_fields
from backend.projects.access import ROLE_CAPABILITIES, Capability, ProjectScopedMixin

from . import selectors, services
from .serializers import ExportJobSerializer, ExportRequestSerializer, ImportJobSerializer, ImportRequestSerializer


class ExportViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    serializer_class = ExportJobSerializer
    capabilities = {"create": Capability.MANAGE, "destroy": Capability.MANAGE}

    def list(self, request, project_pk=None):
        only_params(request.query_params)
        page = self.paginate_queryset(selectors.export_jobs(self.project))
        return self.get_paginated_response(ExportJobSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(ExportJobSerializer(selectors.get_export_job(self.project, int_or_404(pk))).data)

    @extend_schema(request=ExportRequestSerializer, responses={202: ExportJobSerializer})
    def create(self, request, project_pk=None):
        serializer = ExportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = services.start_export(project=self.project, user=request.user, **serializer.validated_data)
        return Response(ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={204: None})
    def destroy(self, request, project_pk=None, pk=None):
        """Delete the export and its file; a queued or running one is cancelled."""
        empty_body(request)
        services.delete_export(project=self.project, job_id=int_or_404(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "application/zip"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, project_pk=None, pk=None):
        job = selectors.get_export_job(self.project, int_or_404(pk))
        if job.expired_at is not None:
            raise services.ExportGone(
                f"The file of export {job.pk} was removed: only the newest {settings.EXPORTS_KEPT_PER_PROJECT} "
                f"finished exports of a project keep their files. Start a new export.")
        if job.status != "done" or not job.result_file:
            raise NotFound("This export has no file (yet).")
        name = f"{self.project.name}-{job.format}-export-{job.pk}.zip"
        return private_file_response(job.result_file, "application/zip", name, attachment=True)


class ImportViewSet(FilesOnlyWhereNamed, ProjectScopedMixin, viewsets.GenericViewSet):
    multipart_actions = ("create",)
    multipart_field = "file"
    serializer_class = ImportJobSerializer
    capabilities = {"create": Capability.ANNOTATE}

    def list(self, request, project_pk=None):
        only_params(request.query_params)
        page = self.paginate_queryset(selectors.import_jobs(self.project))
        return self.get_paginated_response(ImportJobSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        return Response(ImportJobSerializer(selectors.get_import_job(self.project, int_or_404(pk))).data)

    @extend_schema(request={"multipart/form-data": ImportRequestSerializer}, responses={202: ImportJobSerializer})
    def create(self, request, project_pk=None):
        single_form_fields(request, files=("file",))
        serializer = ImportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # Creating classes changes the project's vocabulary: that is a manager's decision.
        if data["create_missing_classes"] and Capability.MANAGE not in ROLE_CAPABILITIES[self.membership.role]:
            raise PermissionDenied(f"Your role '{self.membership.role}' cannot create classes (create_missing_classes).")
        if data["as_accepted"] and Capability.REVIEW not in ROLE_CAPABILITIES[self.membership.role]:
            # Accepted objects reach approved-only exports: only a reviewer may approve, here too.
            raise PermissionDenied(f"Your role '{self.membership.role}' cannot import objects as accepted (as_accepted).")
        job = services.start_import(
            project=self.project, user=request.user, format=data["format"], upload=data["file"],
            as_accepted=data["as_accepted"], create_missing_classes=data["create_missing_classes"],
        )
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
