from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backend.core.filters import only_params
from backend.core.params import int_or_404
from backend.core.strict import empty_body
from backend.projects.access import Capability, ProjectScopedMixin

from . import selectors, services
from .models import EvaluationRun, TrainingRun
from .serializers import (
    DecisionSerializer,
    EvaluationRunSerializer,
    ModelVersionSerializer,
    StartEvaluationSerializer,
    StartTrainingSerializer,
    TrainingRunSerializer,
)


def _cancel(view, request, pk, model, serializer):
    empty_body(request)  # no fields at all
    run = services.cancel_run(project=view.project, model=model, run_id=int_or_404(pk), user=request.user)
    return Response(serializer(run).data)


class EvaluationViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    """Measured accuracy: admins start (and cancel), members read."""

    serializer_class = EvaluationRunSerializer
    capabilities = {"cancel": Capability.MANAGE}

    def list(self, request, project_pk=None):
        only_params(request.query_params)
        page = self.paginate_queryset(selectors.evaluation_runs(self.project))
        return self.get_paginated_response(EvaluationRunSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        run = selectors.get_or_404(selectors.evaluation_runs(self.project), int_or_404(pk), "Evaluation")
        return Response(EvaluationRunSerializer(run).data)

    @extend_schema(request=StartEvaluationSerializer, responses={201: EvaluationRunSerializer})
    def create(self, request, project_pk=None):
        s = StartEvaluationSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        run = services.start_evaluation(project=self.project, user=request.user, engine=s.validated_data.get("engine"),
                                        model_version_id=s.validated_data.get("model_version"))
        return Response(EvaluationRunSerializer(run).data, status=201)

    @extend_schema(request=None, responses=EvaluationRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, project_pk=None, pk=None):
        return _cancel(self, request, pk, EvaluationRun, EvaluationRunSerializer)


class TrainingViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    serializer_class = TrainingRunSerializer
    capabilities = {"cancel": Capability.MANAGE}

    def list(self, request, project_pk=None):
        only_params(request.query_params)
        page = self.paginate_queryset(selectors.training_runs(self.project))
        return self.get_paginated_response(TrainingRunSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        run = selectors.get_or_404(selectors.training_runs(self.project), int_or_404(pk), "Training run")
        return Response(TrainingRunSerializer(run).data)

    @extend_schema(request=StartTrainingSerializer, responses={201: TrainingRunSerializer})
    def create(self, request, project_pk=None):
        s = StartTrainingSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        run = services.start_training(project=self.project, user=request.user, kind=s.validated_data["kind"],
                                      params=s.validated_data.get("params") or {})
        return Response(TrainingRunSerializer(run).data, status=201)

    @extend_schema(request=None, responses=TrainingRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, project_pk=None, pk=None):
        return _cancel(self, request, pk, TrainingRun, TrainingRunSerializer)


class ModelVersionViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    """Trained models; activate / deactivate are an admin's decision (MANAGE), with version."""

    serializer_class = ModelVersionSerializer
    capabilities = {"activate": Capability.MANAGE, "deactivate": Capability.MANAGE}

    def list(self, request, project_pk=None):
        only_params(request.query_params)
        page = self.paginate_queryset(selectors.model_versions(self.project))
        return self.get_paginated_response(ModelVersionSerializer(page, many=True).data)

    def retrieve(self, request, project_pk=None, pk=None):
        v = selectors.get_or_404(selectors.model_versions(self.project), int_or_404(pk), "Model version")
        return Response(ModelVersionSerializer(v).data)

    @extend_schema(request=DecisionSerializer, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, project_pk=None, pk=None):
        s = DecisionSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = services.activate_version(project=self.project, version_id=int_or_404(pk), user=request.user,
                                      version=s.validated_data["version"])
        return Response(ModelVersionSerializer(v).data)

    @extend_schema(request=DecisionSerializer, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, project_pk=None, pk=None):
        s = DecisionSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = services.deactivate_version(project=self.project, version_id=int_or_404(pk), user=request.user,
                                        version=s.validated_data["version"])
        return Response(ModelVersionSerializer(v).data)
