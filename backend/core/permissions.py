"""The API's default permission. Kept apart from the services: DRF imports it while its own
settings load, before backend.core.errors can be imported."""
from rest_framework.permissions import IsAuthenticated

# Set in the session at sign-in while the password is still the one-time one: every API call but
# signing out and changing the password is refused (a session flag costs no query per request;
# a token cannot be had until the password is changed).
SESSION_FLAG = "must_change_password"


class OwnPasswordSet(IsAuthenticated):
    """The default API permission: signed in, and no longer on a one-time password."""

    message = "Set your own password first (PATCH /api/auth/me/ with current_password and new_password)."

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        session = getattr(request, "session", None)
        return not (session is not None and session.get(SESSION_FLAG))
