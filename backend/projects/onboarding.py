"""Bringing a brand-new person into a project: the account and the membership in one step."""
from __future__ import annotations

from django.db import transaction

from backend.core.accounts import create_user_with_one_time_password
from backend.core.errors import DomainError

from . import services
from .models import Membership, Project, Role


@transaction.atomic
def add_new_user(*, project: Project, by, username: str, role: str) -> tuple[Membership, str]:
    """Returns the membership and the one-time password (shown to the admin once). A bad role
    creates no account: both happen or neither."""
    if role not in Role.values:
        raise DomainError(f"Unknown role '{role}'. Allowed: {', '.join(Role.values)}.")
    user, password = create_user_with_one_time_password(by=by, username=username)
    membership = services.add_member(project=project, username=user.username, role=role)
    return membership, password
