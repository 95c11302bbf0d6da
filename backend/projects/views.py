from django.db.models import Count, Q
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backend.core.errors import NotFound
from backend.core.params import int_or_404, version_from, version_parameter
from backend.core.strict import echo_context, empty_body
from backend.core.filters import apply_filters, bool_filter, choice_filter, only_params

from . import onboarding, selectors, services
from .access import Capability, ProjectScopedMixin, require_capability
from .models import LabelClass, Membership
from .serializers import (
    LabelClassSerializer,
    LabelClassUpdateSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
    NewUserMembershipResultSerializer,
    NewUserMembershipSerializer,
    ProjectSerializer,
    ProjectUpdateSerializer,
    VersionSerializer,
)


class ProjectViewSet(viewsets.GenericViewSet):
    """Projects the user is a member of. Anyone signed in may create one and becomes its admin."""

    serializer_class = ProjectSerializer
    lookup_value_converter = "int"
    write_params = {"destroy": ("version",)}  # the query parameters a write takes

    def _membership(self, pk, capability):
        return require_capability(self.request.user, pk, capability)

    @extend_schema(responses=ProjectSerializer(many=True))
    def list(self, request):
        queryset = apply_filters(
            selectors.projects_for_user(request.user), request.query_params,
            filters={}, orderings={"id": "id", "name": "name", "created_at": "created_at"}, default_ordering="id",
        )
        page = self.paginate_queryset(queryset)
        roles = dict(request.user.memberships.values_list("project_id", "role"))
        return self.get_paginated_response(ProjectSerializer(page, many=True, context={"roles": roles}).data)

    @extend_schema(request=ProjectSerializer, responses={201: ProjectSerializer})
    def create(self, request):
        serializer = ProjectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = services.create_project(user=request.user, **serializer.validated_data)
        return Response(ProjectSerializer(project, context={"roles": {project.pk: "admin"}}).data, status=201)

    @extend_schema(responses=ProjectSerializer)
    def retrieve(self, request, pk=None):
        membership = self._membership(pk, Capability.READ)
        return Response(ProjectSerializer(membership.project, context={"membership": membership}).data)

    @extend_schema(request=ProjectUpdateSerializer, responses=ProjectSerializer)
    def partial_update(self, request, pk=None):
        membership = self._membership(pk, Capability.MANAGE)
        serializer = ProjectUpdateSerializer(membership.project, data=request.data, partial=True,
                                             context={"membership": membership})  # `my_role` sent back as read
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        project = services.update_project(project_id=membership.project_id, version=data.pop("version", None), **data)
        return Response(ProjectSerializer(project, context={"membership": membership}).data)

    @extend_schema(request=VersionSerializer, responses={204: None}, parameters=[version_parameter()])
    def destroy(self, request, pk=None):
        membership = self._membership(pk, Capability.MANAGE)
        services.delete_project(project_id=membership.project_id, version=version_from(request), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MembershipViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    serializer_class = MembershipSerializer
    capabilities = {"list": Capability.READ}
    write_params = {"destroy": ("version",)}

    def required_capability(self) -> Capability:
        # An instance admin added here as a viewer could not change or drop their own membership
        # (and a project admin could not either): their own membership is theirs to manage.
        if self.action in ("partial_update", "destroy") and self.request.user.is_staff and self._own_membership():
            return Capability.READ
        return super().required_capability()

    def _own_membership(self) -> bool:
        pk = str(self.kwargs.get("pk", ""))
        return pk.isdigit() and Membership.objects.filter(
            project_id=self.kwargs["project_pk"], pk=int(pk), user=self.request.user).exists()

    def list(self, request, project_pk=None):
        only_params(request.query_params)
        page = self.paginate_queryset(selectors.memberships_of_project(self.project))
        return self.get_paginated_response(MembershipSerializer(page, many=True).data)

    @extend_schema(request=MembershipCreateSerializer, responses={201: MembershipSerializer})
    def create(self, request, project_pk=None):
        serializer = MembershipCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.add_member(project=self.project, **serializer.validated_data)
        return Response(MembershipSerializer(membership).data, status=201)

    @extend_schema(request=NewUserMembershipSerializer, responses={201: NewUserMembershipResultSerializer})
    @action(detail=False, methods=["post"], url_path="new-user")
    def new_user(self, request, project_pk=None):
        """An instance admin creates an account with a one-time password and adds it here."""
        serializer = NewUserMembershipSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership, password = onboarding.add_new_user(project=self.project, by=request.user, **serializer.validated_data)
        data = NewUserMembershipResultSerializer(membership).data
        data["one_time_password"] = password
        return Response(data, status=201)

    @extend_schema(request=None, responses={200: NewUserMembershipResultSerializer})
    @action(detail=True, methods=["post"], url_path="reset-password")
    def reset_password(self, request, project_pk=None, pk=None):
        """An instance admin gives this member a new one-time password (shown once; they choose
        their own at the next sign-in). Their API tokens and sessions end."""
        empty_body(request)
        membership, password = onboarding.reset_member_password(project=self.project, by=request.user,
                                                                membership_id=int_or_404(pk))
        data = NewUserMembershipResultSerializer(membership).data
        data["one_time_password"] = password
        return Response(data)

    @extend_schema(request=MembershipUpdateSerializer, responses=MembershipSerializer)
    def partial_update(self, request, project_pk=None, pk=None):
        serializer = MembershipUpdateSerializer(data=request.data, context=echo_context(
            request.data, MembershipUpdateSerializer,
            lambda: Membership.objects.filter(project=self.project, pk=int_or_404(pk)).select_related("user").first()))
        serializer.is_valid(raise_exception=True)
        membership = services.change_role(project=self.project, membership_id=int_or_404(pk), actor=request.user,
                                          **serializer.validated_data)
        return Response(MembershipSerializer(membership).data)

    @extend_schema(request=VersionSerializer, responses={204: None}, parameters=[version_parameter()])
    def destroy(self, request, project_pk=None, pk=None):
        services.remove_member(project=self.project, membership_id=int_or_404(pk), version=version_from(request),
                               actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LabelClassViewSet(ProjectScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = LabelClassSerializer
    capabilities = {"list": Capability.READ, "retrieve": Capability.READ}
    write_params = {"destroy": ("version",)}

    def get_queryset(self):
        queryset = selectors.classes_of_project(self.project).annotate(
            exemplar_count=Count("exemplars", filter=Q(exemplars__removed_at__isnull=True)),  # removed: old versions only
        )
        return apply_filters(
            queryset, self.request.query_params,
            filters={"active": bool_filter("active"), "kind": choice_filter("kind", LabelClass.Kind.values)},
            orderings={"name": "name", "id": "id", "created_at": "created_at"}, default_ordering="name",
        )

    def retrieve(self, request, project_pk=None, pk=None):
        label_class = self.get_queryset().filter(pk=int_or_404(pk)).first()
        if label_class is None:
            raise NotFound("Class not found.")
        return Response(LabelClassSerializer(label_class).data)

    @extend_schema(request=LabelClassSerializer, responses={201: LabelClassSerializer})
    def create(self, request, project_pk=None):
        serializer = LabelClassSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        label_class = services.create_class(project=self.project, **serializer.validated_data)
        return Response(LabelClassSerializer(label_class).data, status=201)

    @extend_schema(request=LabelClassUpdateSerializer, responses=LabelClassSerializer)
    def partial_update(self, request, project_pk=None, pk=None):
        serializer = LabelClassUpdateSerializer(data=request.data, partial=True, context=echo_context(
            request.data, LabelClassUpdateSerializer, lambda: self.get_queryset().filter(pk=int_or_404(pk)).first()))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        label_class = services.update_class(
            project=self.project, class_id=int_or_404(pk), version=data.pop("version", None), **data
        )
        # Read again with its exemplar count: the answer said 0 exemplars whatever the class had.
        return Response(LabelClassSerializer(self.get_queryset().get(pk=label_class.pk)).data)

    @extend_schema(request=VersionSerializer, responses={204: None}, parameters=[version_parameter()])
    def destroy(self, request, project_pk=None, pk=None):
        services.delete_class(project=self.project, class_id=int_or_404(pk), version=version_from(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

