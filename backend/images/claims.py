"""Image claims: a reviewer holds an image for a few minutes while it is open; others see it locked.

The server enforces them: every annotation write goes through `guard_write`, so a write to an
image someone else holds is a 409 that names the holder. Claiming an image releases the claimer's
other claims in the project (they moved on); an idle claim simply expires."""
from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from backend.core import events
from backend.core.errors import Conflict, DomainError, NotFound, PermissionDenied
from backend.projects.access import ROLE_CAPABILITIES, Capability
from backend.projects.models import Membership, Project

from .models import Image

CLAIM_SECONDS = 300


def _locked(project: Project, image_id: int) -> Image:
    # No join to the holder here: a claim that waited for this lock then read the new claim's
    # expiry with no holder (PostgreSQL re-checks only the locked row), and both claimers got 200.
    image = Image.objects.select_for_update().filter(project=project, pk=image_id).first()
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
    # One claim of a person's at a time in a project: two sent at once (two tabs, a retry) each
    # released the other's image before either had committed, and both images stayed held.
    # The membership row first, then the image: the order of member removal (release_held).
    list(Membership.objects.select_for_update().filter(project=project, user=user).values_list("pk"))
    image = _locked(project, image_id)
    holder = active_claimant(image)
    if holder is not None and holder.pk != user.pk:
        raise ClaimConflict(
            f"{holder.username} is reviewing this image (until {image.claim_expires_at:%H:%M:%S} UTC).",
            extra={"claimed_by": holder.username, "expires_at": image.claim_expires_at.isoformat()},
        )
    fresh = holder is None
    if fresh:
        _release_others(project=project, image=image, user=user)
    image.claimed_by = user
    image.claim_expires_at = timezone.now() + timedelta(seconds=CLAIM_SECONDS)
    image.save(update_fields=["claimed_by", "claim_expires_at"])
    if fresh:
        events.emit(project.pk, "image.claimed", image=image.pk, claimed_by=user.username,
                    expires_at=image.claim_expires_at.isoformat())
    return image


def _release_others(*, project: Project, image: Image, user) -> None:
    """One person reviews one image at a time: moving on frees the images they left."""
    release_held(Image.objects.filter(project=project, claimed_by=user, claim_expires_at__gt=timezone.now())
                 .exclude(pk=image.pk))


def release_held(held) -> None:
    """Free the images of `held` (an Image queryset) and tell each one's project: claiming
    another image, leaving a project, losing the right to annotate, signing out."""
    rows = list(held.values_list("pk", "project_id"))
    if rows:
        Image.objects.filter(pk__in=[pk for pk, _ in rows]).update(claimed_by=None, claim_expires_at=None)
        for pk, project_id in rows:
            events.emit(project_id, "image.released", image=pk)


def guard_write(image: Image, *, user, can_override: bool, force: bool = False) -> dict | None:
    """Refuse an annotation write to an image another person holds (409 naming them; nothing is
    written). A project admin may override with an explicit force; the overridden claim is
    returned so the caller records it in the audit trail. An expired claim does not block."""
    holder = active_claimant(image)
    if holder is None or holder.pk == getattr(user, "pk", None):
        return None
    if force and can_override:
        return {"held_by": holder.username, "expires_at": image.claim_expires_at.isoformat()}
    hint = " (as a project admin you may override it with ?force=1)" if can_override else ""
    raise ClaimConflict(
        f"This image is held by {holder.username} until {image.claim_expires_at:%H:%M:%S} UTC{hint}; "
        "your change was not saved. Try again when they have moved on.",
        extra={"claimed_by": holder.username, "expires_at": image.claim_expires_at.isoformat()},
    )


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


class ClaimConflict(Conflict):
    code = "claimed"
