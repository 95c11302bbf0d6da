"""Image claims: a reviewer holds an image for a few minutes while it is open; others see it locked."""
from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from backend.core import events
from backend.core.errors import DomainError, NotFound, PermissionDenied
from backend.projects.access import ROLE_CAPABILITIES, Capability
from backend.projects.models import Project

from .models import Image

CLAIM_SECONDS = 300


def _locked(project: Project, image_id: int) -> Image:
    image = Image.objects.select_for_update(of=("self",)).select_related("claimed_by").filter(project=project, pk=image_id).first()
    if image is None:
        raise NotFound("Image not found.")
    return image


def active_claimant(image: Image):
    if image.claimed_by_id and image.claim_expires_at and image.claim_expires_at > timezone.now():
        return image.claimed_by
    return None


@transaction.atomic
def claim_image(*, project: Project, image_id: int, user) -> Image:
    """Claim, or extend one's own claim (the heartbeat). Someone else's live claim is a 409."""
    image = _locked(project, image_id)
    holder = active_claimant(image)
    if holder is not None and holder.pk != user.pk:
        raise ClaimConflict(
            f"{holder.username} is reviewing this image (until {image.claim_expires_at:%H:%M:%S} UTC).",
            extra={"claimed_by": holder.username, "expires_at": image.claim_expires_at.isoformat()},
        )
    fresh = holder is None
    image.claimed_by = user
    image.claim_expires_at = timezone.now() + timedelta(seconds=CLAIM_SECONDS)
    image.save(update_fields=["claimed_by", "claim_expires_at"])
    if fresh:
        events.emit(project.pk, "image.claimed", image=image.pk, claimed_by=user.username,
                    expires_at=image.claim_expires_at.isoformat())
    return image


@transaction.atomic
def release_image(*, project: Project, image_id: int, user, membership) -> Image:
    """The holder releases; a project admin may release anyone's claim."""
    image = _locked(project, image_id)
    holder = active_claimant(image)
    if holder is not None and holder.pk != user.pk and Capability.MANAGE not in ROLE_CAPABILITIES[membership.role]:
        raise PermissionDenied(f"Only {holder.username} or a project admin can release this image.")
    image.claimed_by = None
    image.claim_expires_at = None
    image.save(update_fields=["claimed_by", "claim_expires_at"])
    events.emit(project.pk, "image.released", image=image.pk)
    return image


class ClaimConflict(DomainError):
    status_code = 409
    code = "claimed"
