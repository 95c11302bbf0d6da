"""The API's default permission. Kept apart from the services: DRF imports it while its own
settings load, before backend.core.errors can be imported."""
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated

# Set in the session at sign-in while the password is still the one-time one: every API call but
# signing out and changing the password is refused (a session flag costs no query per request;
# a token cannot be had until the password is changed).
SESSION_FLAG = "must_change_password"


class OwnPasswordSet(IsAuthenticated):
    """The default API permission: signed in, and no longer on a one-time password."""

    message = "Set your own password first (PATCH /api/auth/me/ with current_password and new_password)."
    code = "password_change_required"  # the browser keeps a refused write until the password is set

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        session = getattr(request, "session", None)
        return not (session is not None and session.get(SESSION_FLAG))


class StrictWriteParams(BasePermission):
    """Not a permission: a write's query string is checked before the view runs (a repeated or
    unknown parameter is a 400 naming it; backend.core.params.check_write_params)."""

    def has_permission(self, request, view) -> bool:
        if request.method not in SAFE_METHODS:
            from backend.core.params import check_write_params  # not while DRF's settings load

            check_write_params(request, view)
        return True
