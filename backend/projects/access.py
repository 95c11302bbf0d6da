"""Who may do what in a project. Non-members get 404 (the project "does not exist" for them)."""
from __future__ import annotations

from enum import Enum

from rest_framework.permissions import SAFE_METHODS

from backend.core.errors import NotFound, PermissionDenied

from .models import Membership, Role


class Capability(str, Enum):
    READ = "read"
    ANNOTATE = "annotate"  # upload images, draw and edit annotations
    REVIEW = "review"  # accept / reject classes and masks
    MANAGE = "manage"  # project settings, members, classes, gallery, deletions


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    Role.REVIEWER: frozenset({Capability.READ, Capability.ANNOTATE, Capability.REVIEW}),
    Role.ANNOTATOR: frozenset({Capability.READ, Capability.ANNOTATE}),
    Role.VIEWER: frozenset({Capability.READ}),
}


def roles_with(capability: Capability) -> list[str]:
    """The role values (as stored) that carry `capability`, for raw SQL (the hot routes)."""
    return sorted(str(getattr(role, "value", role)) for role, caps in ROLE_CAPABILITIES.items() if capability in caps)


def member_sql(roles_param: str) -> str:
    """SQL, for the hot routes' raw statements: user %(u)s is a member of project %(p)s with a
    role in the list bound as %(<roles_param>)s (one of roles_with())."""
    return (f"EXISTS (SELECT 1 FROM {Membership._meta.db_table} pm WHERE pm.project_id = %(p)s "
            f"AND pm.user_id = %(u)s AND pm.role = ANY(%({roles_param})s))")


def require_capability(user, project_id, capability: Capability) -> Membership:
    membership = (
        Membership.objects.select_related("project").filter(project_id=project_id, user_id=user.pk).first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise NotFound("Project not found.")
    if capability not in ROLE_CAPABILITIES[membership.role]:
        raise PermissionDenied(f"Your role '{membership.role}' cannot {capability.value} in this project.")
    return membership


class ProjectScopedMixin:
    """For views under /api/projects/<project_pk>/: resolves the membership before anything else.

    `capabilities` maps a viewset action (or an HTTP method) to what it needs; anything not
    listed needs READ for safe methods and MANAGE otherwise.
    """

    capabilities: dict[str, Capability] = {}
    lookup_value_converter = "int"

    def required_capability(self) -> Capability:
        action = getattr(self, "action", None)
        if action in self.capabilities:
            return self.capabilities[action]
        if self.request.method in self.capabilities:
            return self.capabilities[self.request.method]
        return Capability.READ if self.request.method in SAFE_METHODS else Capability.MANAGE

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.membership = require_capability(request.user, kwargs["project_pk"], self.required_capability())
        self.project = self.membership.project
