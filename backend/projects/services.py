"""Writes for projects, memberships and classes (keyword-only, atomic, version-checked)."""
from __future__ import annotations

import unicodedata

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError, RestrictedError

from backend.core.errors import DomainError, NotFound, PermissionDenied
from backend.core.files import delete_later
from backend.core.locking import check_version
from backend.core.text import lookalike_problem

from .colors import distinct_colors
from .models import LabelClass, Membership, Project, Role

PROJECT_FIELDS = {
    "name", "description", "prompts", "box_threshold", "text_threshold", "nms_iou",
    "unknown_threshold", "min_margin", "top_k", "unique_classes_per_image", "engine", "learn_from_reviews",
}
CLASS_FIELDS = {"name", "color", "kind", "parent_id", "active"}
# Changing these changes what the matcher sees (which exemplars, grouped under which type).
_MATCHING_FIELDS = ("active", "kind", "parent_id")


@transaction.atomic
def create_project(*, user, **fields) -> Project:
    project = Project.objects.create(created_by=user, **_only(fields, PROJECT_FIELDS))
    Membership.objects.create(project=project, user=user, role=Role.ADMIN)
    return project


@transaction.atomic
def update_project(*, project_id: int, version: int | None, **fields) -> Project:
    project = Project.objects.select_for_update().get(pk=project_id)
    check_version(project, version)
    changes = {key: value for key, value in _only(fields, PROJECT_FIELDS).items() if getattr(project, key) != value}
    if not changes:
        return project  # nothing changed: the version stays, so other clients get no needless 409
    for key, value in changes.items():
        setattr(project, key, value)
    project.version += 1
    project.save()
    return project


@transaction.atomic
def delete_project(*, project_id: int, version: int | None, by=None) -> None:
    """Everything of the project goes in one cascade (annotations and their trail included: the
    class foreign key is RESTRICT, which allows it when the annotations go too). Members with a
    page of it open are told at once, with who deleted it (`by`, the acting user)."""
    from backend.core import events

    project = Project.objects.select_for_update().get(pk=project_id)
    check_version(project, version)
    names = _stored_files(project_id)
    member_ids = list(Membership.objects.filter(project_id=project_id).values_list("user_id", flat=True))
    project.delete()
    events.project_deleted(project_id=project_id, user_ids=member_ids, by=getattr(by, "username", None))
    # The files go too (photos are what a user deleting a project most expects gone).
    transaction.on_commit(lambda: delete_later(names))


def _stored_files(project_id: int) -> list[str]:
    from backend.exchange.models import ExportJob, ImportJob
    from backend.gallery.models import GalleryImage
    from backend.images.models import Image, UploadSession
    from backend.learning.models import ModelVersion

    names: list[str] = []
    for model, fields in ((Image, ("file", "thumbnail", "rendition")), (GalleryImage, ("file",)), (ExportJob, ("result_file",)),
                          (ImportJob, ("upload_file",)), (UploadSession, ("stored_name",)), (ModelVersion, ("file",))):
        for row in model.objects.filter(project_id=project_id).values_list(*fields):
            names.extend(n for n in row if n)
    return names


def bump_gallery_version(*, project_id: int) -> None:
    Project.objects.filter(pk=project_id).update(gallery_version=F("gallery_version") + 1)


@transaction.atomic
def add_member(*, project: Project, username: str, role: str) -> Membership:
    users = get_user_model().objects.filter(is_active=True)
    # New names are unique whatever their case ("ADMIN" is refused beside "admin"), so a name is
    # found the same way; the exact spelling first, for accounts made before that rule.
    # Width folded as names are stored (NFKC): 'ｎｉｎａ' is nina, as at sign-in and for new users.
    folded = unicodedata.normalize("NFKC", username).strip()
    user = (users.filter(username=username).first() or users.filter(username=folded).first()
            or users.filter(username__iexact=folded).first())
    if user is None:
        raise DomainError(f"No active user named '{username}'.")
    if role not in Role.values:
        raise DomainError(f"Unknown role '{role}'. Allowed: {', '.join(Role.values)}.")
    try:
        with transaction.atomic():
            return Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError:
        raise DomainError(f"'{username}' is already a member of this project.") from None


@transaction.atomic
def change_role(*, project: Project, membership_id: int, role: str, version: int | None, actor=None) -> Membership:
    membership = _membership(project, membership_id, actor)
    _spare_instance_admin(membership, actor, "change the role of")
    check_version(membership, version)
    if role not in Role.values:
        raise DomainError(f"Unknown role '{role}'. Allowed: {', '.join(Role.values)}.")
    if role == membership.role:
        return membership  # nothing changes: no new version, no notice (as a PATCH that changes nothing)
    if membership.role == Role.ADMIN and role != Role.ADMIN:
        _keep_an_admin(project, membership)
    membership.role = role
    membership.version += 1  # the row is locked (_membership)
    membership.save(update_fields=["role", "version"])
    if role == Role.VIEWER:
        _release_claims(project, membership.user_id)
    _notify_membership_changed(membership)
    return membership


@transaction.atomic
def remove_member(*, project: Project, membership_id: int, version: int | None, actor=None) -> None:
    membership = _membership(project, membership_id, actor)
    _spare_instance_admin(membership, actor, "remove")
    check_version(membership, version)
    if membership.role == Role.ADMIN:
        _keep_an_admin(project, membership)
    membership.delete()
    _release_claims(project, membership.user_id)
    _notify_membership_changed(membership)


def _release_claims(project: Project, user_id: int) -> None:
    """Someone who may no longer annotate here holds no image: others were blocked until it expired."""
    from backend.images.claims import release_held
    from backend.images.models import Image

    release_held(Image.objects.filter(project=project, claimed_by_id=user_id))


@transaction.atomic
def create_class(*, project: Project, **fields) -> LabelClass:
    _lock_project(project)
    fields = _only(fields, CLASS_FIELDS)
    if not fields.get("color"):  # a colour nobody uses yet, so the new class stands out on the canvas
        fields["color"] = distinct_colors(project.pk, 1)[0]
    label_class = LabelClass(project=project, **fields)
    _settle_kind(label_class, fields)
    validate_hierarchy(label_class)
    try:
        with transaction.atomic():
            label_class.save()
    except IntegrityError:
        taken = _taken_name(project, fields.get("name"))
        raise DomainError(f"A class named '{taken}' already exists in this project.") from None
    if label_class.parent_id is not None:  # a new instance regroups its type's exemplars
        gallery_changed(project.pk)
    _classes_changed(project.pk)
    return label_class


def _taken_name(project: Project, name: str | None) -> str | None:
    """The existing class's own spelling ('cat' when 'CAT' was asked for)."""
    existing = LabelClass.objects.filter(project=project, name__iexact=name or "").values_list("name", flat=True).first()
    return existing or name


@transaction.atomic
def update_class(*, project: Project, class_id: int, version: int | None, **fields) -> LabelClass:
    _lock_project(project)
    label_class = LabelClass.objects.select_for_update().filter(project=project, pk=class_id).first()
    if label_class is None:
        raise NotFound("Class not found.")
    check_version(label_class, version)
    fields = _only(fields, CLASS_FIELDS)
    if "name" in fields and fields["name"].lower() != label_class.name.lower():
        problem = lookalike_problem(fields["name"])  # a new name; its own, kept, is not checked again
        if problem:
            raise DomainError(problem, extra={"field": "name"})
    before = {key: getattr(label_class, key) for key in _MATCHING_FIELDS}
    stored = {key: getattr(label_class, key) for key in CLASS_FIELDS}
    for key, value in fields.items():
        setattr(label_class, key, value)
    _settle_kind(label_class, fields)
    if all(getattr(label_class, key) == value for key, value in stored.items()):
        return label_class  # nothing changed: the version stays
    validate_hierarchy(label_class)
    label_class.version += 1
    try:
        with transaction.atomic():
            label_class.save()
    except IntegrityError:
        taken = _taken_name(project, fields.get("name"))
        raise DomainError(f"A class named '{taken}' already exists in this project.") from None
    # An inactive class leaves the gallery, a moved instance counts for another type: re-score.
    if any(getattr(label_class, key) != value for key, value in before.items()):
        gallery_changed(project.pk)
    _classes_changed(project.pk)
    return label_class


def _settle_kind(label_class: LabelClass, fields: dict) -> None:
    """Naming a parent makes an instance and `kind: class` drops the parent, so a client can send
    either field alone; sending both must agree (validate_hierarchy says why not)."""
    if "kind" not in fields and "parent_id" in fields:
        label_class.kind = LabelClass.Kind.CLASS if fields["parent_id"] is None else LabelClass.Kind.INSTANCE
    if "parent_id" not in fields and fields.get("kind") == LabelClass.Kind.CLASS:
        label_class.parent_id = None


def validate_hierarchy(label_class: LabelClass) -> None:
    """Instances hang one level deep under a type of the same project."""
    Kind = LabelClass.Kind
    if label_class.kind == Kind.CLASS:
        if label_class.parent_id is not None:
            raise DomainError("Only an instance has a parent type; set kind to 'instance' or clear 'parent'.")
        return
    if label_class.parent_id is None:
        raise DomainError("An instance needs a parent: the type class it is one of (e.g. 'screwdriver').")
    if label_class.pk is not None and label_class.parent_id == label_class.pk:
        raise DomainError("A class cannot be its own parent.")
    parent = LabelClass.objects.filter(project_id=label_class.project_id, pk=label_class.parent_id).first()
    if parent is None:
        raise DomainError(f"Parent class {label_class.parent_id} not found in this project.")
    if parent.kind != Kind.CLASS:
        raise DomainError(f"'{parent.name}' is an instance; an instance cannot have instances. Choose a type class.")
    if label_class.pk is not None and LabelClass.objects.filter(parent_id=label_class.pk).exists():
        raise DomainError(f"'{label_class.name}' is a type with instances; move or delete its instances before making it an instance.")


@transaction.atomic
def delete_class(*, project: Project, class_id: int, version: int | None) -> None:
    _lock_project(project)
    label_class = LabelClass.objects.select_for_update().filter(project=project, pk=class_id).first()
    if label_class is None:
        raise NotFound("Class not found.")
    check_version(label_class, version)
    instances = list(LabelClass.objects.filter(parent_id=label_class.pk).order_by("name").values_list("name", flat=True)[:4])
    if instances:
        shown = ", ".join(f"'{n}'" for n in instances[:3]) + (", …" if len(instances) > 3 else "")
        raise DomainError(
            f"Class '{label_class.name}' has instances ({shown}); delete them or make them types of their own first.",
            extra={"code": "class_has_instances"},
        )
    try:
        with transaction.atomic():
            label_class.delete()
    except (ProtectedError, RestrictedError):  # Annotation.label_class is RESTRICT
        from backend.annotations.models import Annotation

        used = Annotation.objects.filter(project=project, label_class_id=label_class.pk).count()
        objects = f"{used} object{'' if used == 1 else 's'}"
        raise DomainError(
            f"Class '{label_class.name}' is used by annotations ({objects} labelled with it), so it was not deleted: "
            f"give those objects another class (or delete them) first, or deactivate it instead of deleting it "
            f"(it then stays on those objects but is no longer offered).",
            extra={"code": "class_in_use", "objects": used},
        ) from None
    gallery_changed(project.pk)
    _classes_changed(project.pk)


def _classes_changed(project_id: int) -> None:
    """Open pages reload the class list: a class deleted (or renamed, deactivated) elsewhere stayed
    in an open picker, and choosing it said "Class 5 does not exist"."""
    from backend.core import events

    events.emit(project_id, "classes.changed")


def gallery_changed(project_id: int) -> None:
    """The set of exemplars the matcher sees changed: bump the version, tell listeners on commit."""
    from backend.core import events
    from backend.gallery import hooks

    bump_gallery_version(project_id=project_id)
    events.emit(project_id, "gallery.changed")
    hooks.gallery_changed(project_id)


def _only(fields: dict, allowed: set[str]) -> dict:
    unknown = set(fields) - allowed
    if unknown:
        raise DomainError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    return fields


def _membership(project: Project, membership_id: int, actor=None) -> Membership:
    """The membership to change, with the project locked: two admins demoting or removing each
    other at once each counted the other as the admin who stays, and the project kept none. Under
    the lock the actor (if given) must still be an admin: the other change may have demoted them."""
    _lock_project(project)
    membership = Membership.objects.select_for_update().filter(project=project, pk=membership_id).first()
    own_as_instance_admin = membership is not None and actor is not None and getattr(actor, "is_staff", False) \
        and membership.user_id == actor.pk
    if actor is not None and not own_as_instance_admin and \
            not Membership.objects.filter(project=project, user=actor, role=Role.ADMIN).exists():
        raise PermissionDenied("You are no longer an admin of this project.")
    if membership is None:
        raise NotFound("Membership not found.")
    return membership


def _lock_project(project: Project) -> None:
    """The project's row, locked until the transaction ends: member changes and class writes run
    one at a time per project, each checking its rules (an admin stays; no instance of an
    instance) against the others'. Together, two of either passed and broke them."""
    Project.objects.select_for_update().filter(pk=project.pk).values_list("pk", flat=True).first()


def _spare_instance_admin(membership: Membership, actor, what: str) -> None:
    """A project admin demoted and then removed the instance admin, who could then not reach the
    project again (404 on it, on its members and on deleting it) though they make the accounts:
    an instance admin's membership changes only by them or another instance admin."""
    if actor is None or getattr(actor, "is_staff", False) or membership.user_id == actor.pk:
        return
    if membership.user.is_staff:
        raise PermissionDenied(f"'{membership.user.username}' is an instance admin: only they or another instance "
                               f"admin can {what} them here.")


def _keep_an_admin(project: Project, leaving: Membership) -> None:
    if not Membership.objects.filter(project=project, role=Role.ADMIN).exclude(pk=leaving.pk).exists():
        raise DomainError("A project needs at least one admin; make someone else admin first.")


def _notify_membership_changed(membership: Membership) -> None:
    """Hook for live connections to re-check access (wired by the realtime app)."""
    from backend.core import events

    events.membership_changed(project_id=membership.project_id, user_id=membership.user_id)
