"""User accounts made by an instance admin: a one-time password, changed at first sign-in.

"Must change password" is membership of one auth Group rather than a column: the user model is
Django's own, and a group needs no schema change and shows up in the Django admin as it is.
"""
from __future__ import annotations

import secrets
import unicodedata

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from .errors import DomainError, PermissionDenied
from .text import lookalike_mix

MUST_CHANGE_PASSWORD_GROUP = "must-change-password"
USERNAME_MAX = 150
# pg_advisory_xact_lock key: one new account at a time, so the "name taken?" check and the insert
# are one step (six simultaneous 'fold' / 'FOLD' / 'ｆｏｌｄ' made four accounts, black-box round 16).
NEW_USER_LOCK = 0x5E4D


def _group() -> Group:
    return Group.objects.get_or_create(name=MUST_CHANGE_PASSWORD_GROUP)[0]


def must_change_password(user) -> bool:
    return bool(user.is_authenticated) and user.groups.filter(name=MUST_CHANGE_PASSWORD_GROUP).exists()


@transaction.atomic
def create_user_with_one_time_password(*, by, username: str) -> tuple[object, str]:
    """Only an instance admin (is_staff) makes accounts. Returns (user, password): the password
    is shown once to the admin and never stored in clear."""
    if not getattr(by, "is_staff", False):
        raise PermissionDenied("Only an instance admin can create users.")
    # Stored as create_user stores it (NFKC: 'ｆｏｌｄ' is 'fold'), so the check below sees that name.
    username = unicodedata.normalize("NFKC", username or "").strip()
    User = get_user_model()
    try:
        User.username_validator(username)
    except ValidationError as exc:
        raise DomainError(f"'{username}' is not a valid username: {' '.join(exc.messages)}") from None
    if not username or len(username) > USERNAME_MAX:
        raise DomainError(f"A username has 1 to {USERNAME_MAX} characters.")
    mixed = lookalike_mix(username)
    if mixed:  # 'аdmin' with a Cyrillic 'а' would pass for 'admin' in every list and message
        main, odd, letter = mixed
        raise DomainError(f"'{username}' mixes {main} and {odd} letters ('{letter}' is {odd}), so it can pass for "
                          "another name: write it in one alphabet.")
    taken = f"A user named '{username}' already exists; add them by name instead."
    with connection.cursor() as cursor:  # held to the end of this transaction
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [NEW_USER_LOCK])
    if _name_taken(User, username):  # 'Bob' and 'bob', 'straße' and 'STRASSE' would confuse people
        raise DomainError(taken)
    password = secrets.token_urlsafe(12)
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password)
    except IntegrityError:  # created by someone else in the meantime
        raise DomainError(taken) from None
    user.groups.add(_group())
    return user, password


def _name_taken(User, username: str) -> bool:
    """Whether a user's name is `username` once both are case-folded. PostgreSQL's iexact folds
    one letter to one ('straße' and 'STRASSE' passed for two names), so a miss there is checked
    again with Python's full case folding, over the names only (an admin's rare call)."""
    if User.objects.filter(username__iexact=username).exists():
        return True
    key = username.casefold()
    return any(name.casefold() == key
               for name in User.objects.values_list("username", flat=True).iterator(chunk_size=5000))


@transaction.atomic
def reset_password(*, by, user) -> str:
    """An instance admin gives `user` a new one-time password (they forgot theirs, or the first
    one was lost): returned to show once, changed at the next sign-in. Every API token of the
    user goes; their sessions end by themselves (a session holds a hash of the password)."""
    from rest_framework.authtoken.models import Token

    if not getattr(by, "is_staff", False):
        raise PermissionDenied("Only an instance admin can reset passwords.")
    if user.pk == by.pk:
        raise DomainError("This is your own account: change your password on your Account page.")
    if (user.is_superuser or user.is_staff) and not by.is_superuser:
        raise PermissionDenied(f"{user.username} is an instance admin: only a superuser can reset their password.")
    if not user.is_active:
        raise DomainError(f"{user.username}'s account is deactivated.")
    # The row lock orders this with a token being issued for the old password (token_view locks it
    # too): a token asked for during the reset was created after its tokens were deleted.
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.save(update_fields=["password"])
    user.groups.add(_group())
    Token.objects.filter(user=user).delete()
    return password


@transaction.atomic
def change_own_password(*, user, current_password: str, new_password: str) -> None:
    # Checked against the locked row: an admin's reset committed meanwhile is what counts.
    locked = get_user_model().objects.select_for_update().get(pk=user.pk)
    user.password = locked.password
    if not user.check_password(current_password):
        raise DomainError("The current password is wrong.", extra={"field": "current_password"})
    if new_password == current_password:
        raise DomainError("Choose a new password different from the current one.")
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages)) from None
    user.set_password(new_password)
    user.save(update_fields=["password"])
    user.groups.remove(_group())
