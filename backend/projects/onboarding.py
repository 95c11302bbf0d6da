"""Bringing a brand-new person into a project: the account and the membership in one step."""
from __future__ import annotations

from django.db import transaction

from backend.core.accounts import create_user_with_one_time_password
from backend.core.errors import DomainError

from . import services
from .models import Membership, Project, Role


@transaction.atomic
def reset_member_password(*, project: Project, by, membership_id: int) -> tuple[Membership, str]:
    """A member of this project gets a new one-time password from an instance admin (who must
    manage the project too: the view checked). Their live pages are signed out."""
    from backend.core import events
    from backend.core.accounts import reset_password
    from backend.core.errors import NotFound

    membership = Membership.objects.select_related("user").filter(project=project, pk=membership_id).first()
    if membership is None:
        raise NotFound("Not a member of this project.")
    password = reset_password(by=by, user=membership.user)
    events.signed_out(user_id=membership.user_id)
    # Signed out everywhere, so the images they held are free: others were kept out 5 minutes.
    from backend.images.claims import release_held
    from backend.images.models import Image

    release_held(Image.objects.filter(claimed_by_id=membership.user_id))
    return membership, password


@transaction.atomic
def add_new_user(*, project: Project, by, username: str, role: str) -> tuple[Membership, str]:
    """Returns the membership and the one-time password (shown to the admin once). A bad role
    creates no account: both happen or neither."""
    if role not in Role.values:
        raise DomainError(f"Unknown role '{role}'. Allowed: {', '.join(Role.values)}.")
    user, password = create_user_with_one_time_password(by=by, username=username)
    membership = services.add_member(project=project, username=user.username, role=role)
    return membership, password
