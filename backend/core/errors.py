"""API errors: one JSON shape ({"detail": ..., "code": ...}) and the domain errors services raise."""
from __future__ import annotations

import errno

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler


class DomainError(Exception):
    """A rule of the domain was broken; the view answers 400 with this message."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class ImageUnreadable(DomainError):
    """An image's stored file cannot be read (damaged, cut off, missing): trying again later does
    not help, so not a 503; the message names the image and why."""

    status_code = 422
    code = "image_unreadable"


class PermissionDenied(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"


class Conflict(DomainError):
    """Something live stands in the way (a claim, a running export or run, an upload's offset):
    409, nothing changed; the subclass says what and which `code` a client can act on."""

    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class VersionConflict(Conflict):
    """The client edited a stale copy; nothing was changed. `current` lets it reload."""

    code = "version_conflict"


class IdempotencyKeyReused(DomainError):
    """An Idempotency-Key sent again with another request than the one it was first sent with."""

    status_code = 422
    code = "idempotency_key_reused"


class Busy(DomainError):
    """The server can't take this now (its decoding budget is spent); the same request can succeed later."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "busy"


class PayloadTooLarge(DomainError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "too_large"


def _backing_service_down(exc) -> bool:
    """A lost connection to PostgreSQL, Redis or the broker: the request's transaction rolled
    back, so the honest answer is 503 + Retry-After, not a 500 (`manage.py serve` or compose
    restarts the server within seconds)."""
    from django import db
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout

    return isinstance(exc, (db.OperationalError, db.InterfaceError, BrokerError, RedisConnectionError, RedisTimeout))


def _pool_exhausted(exc) -> bool:
    """A web process's connection pool timed out (settings/database.py, 3 s) because every one of
    its connections is lent to a request, not because PostgreSQL is away: the pool is at its
    size and none is free. Said apart so a busy server is not reported as a restarting database
    (a down one leaves the pool below its size, each new connection failing)."""
    from django import db
    from psycopg_pool import PoolTimeout

    if not isinstance(exc, db.OperationalError) or not isinstance(exc.__cause__, PoolTimeout):
        return False
    pool = getattr(db.connection, "pool", None)
    if pool is None:
        return False
    stats = pool.get_stats()
    return stats.get("pool_size", 0) >= stats.get("pool_max", 1) and stats.get("pool_available", 0) == 0


def _raced(exc) -> str | None:
    """What to tell a client whose write met another at the same moment, or None. Two writes
    that lock in opposite orders deadlock (PostgreSQL cancels one); a row this one refers to can
    be deleted between its checks and its insert (a class, an image). They answered 503 "the
    database is restarting" and 500; nothing was written either way."""
    from django import db
    from psycopg import errors as pg

    cause = exc.__cause__
    if isinstance(exc, db.OperationalError) and isinstance(cause, (pg.DeadlockDetected, pg.SerializationFailure)):
        return "Another change to the same objects ran at the same moment; nothing was changed. Try again."
    if isinstance(exc, db.IntegrityError) and isinstance(cause, pg.ForeignKeyViolation):
        return ("Something this change refers to (a class, an image or the project) was deleted at the same "
                "moment; nothing was changed. Reload and try again.")
    return None


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        from rest_framework.response import Response

        retry = {"Retry-After": "5"} if exc.status_code == 503 else None  # busy or unavailable: worth a retry soon
        return Response({"detail": exc.message, "code": exc.code, **exc.extra}, status=exc.status_code, headers=retry)
    if isinstance(exc, RequestDataTooBig):  # Django's own cap on a non-file body, as JSON
        from django.conf import settings
        from rest_framework.response import Response

        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"detail": f"The request body is larger than {limit} bytes.", "code": "too_large"}, status=400)
    raced = _raced(exc)
    if raced is not None:
        from rest_framework.response import Response

        return Response({"detail": raced, "code": "conflict"}, status=409)
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        from rest_framework.response import Response

        return Response({"detail": too_many_parts(exc), "code": "too_many"}, status=400)
    if _backing_service_down(exc):
        from rest_framework.response import Response

        if _pool_exhausted(exc):
            return Response(
                {"detail": "The server is busy: all its database connections are in use. Nothing was changed; "
                           "try again in a few seconds.", "code": "busy"},
                status=503, headers={"Retry-After": "5"},
            )
        return Response(
            {"detail": "The database or the task queue is restarting; nothing was changed. Try again in a few seconds.",
             "code": "unavailable"},
            status=503, headers={"Retry-After": "5"},
        )
    if storage_problem(exc):
        import logging
        from rest_framework.response import Response

        logging.getLogger("razmetka.storage").error("the file store refused a write: %r", exc)
        return Response({"detail": STORAGE_MESSAGE, "code": "storage_unavailable"}, status=503,
                        headers={"Retry-After": "30"})
    if isinstance(exc, exceptions.UnsupportedMediaType):
        from .body_parsers import unsupported_media_message

        exc = exceptions.UnsupportedMediaType(getattr(context.get("request"), "content_type", ""),
                                              detail=unsupported_media_message(context))
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    if isinstance(exc, ObjectDoesNotExist):
        # A row the view had found was deleted before the service locked it (two Deletes of one
        # project at once, a PATCH meeting the Delete): gone is gone, not a server error.
        exc = exceptions.NotFound("Not found: it was deleted meanwhile.")
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)) and _sent_credentials(context):
        # DRF answers 403 when its first authenticator (the session) has no challenge to offer; a
        # script that sent a token it must replace is told so the standard way (RFC 9110: 401 with
        # a challenge). The browser, which sends no Authorization header, keeps its 403.
        exc.status_code, exc.auth_header = 401, "Token"
        if isinstance(exc, exceptions.NotAuthenticated):  # an Authorization header of another scheme
            exc.detail = exceptions.ErrorDetail("Send the key as 'Authorization: Token <key>' (POST /api/auth/token/ "
                                                "gives one); Bearer and Basic are not accepted.", code="not_authenticated")
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data.setdefault("code", getattr(response.data["detail"], "code", "error"))
    return response


# The file store refused a write (or a read): read-only, full or not ours to use. Said as such (503, worth a
# retry once an administrator has mended it), not as a server error page or a path on the server.
STORAGE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT})
STORAGE_MESSAGE = ("The file store refused this (it is read-only, full or not ours to use): nothing was "
                   "saved. Try again later, or tell the administrator.")


def storage_problem(exc: BaseException) -> str | None:
    """STORAGE_MESSAGE when `exc` is the file store refusing an operation, else None."""
    return STORAGE_MESSAGE if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS else None


def _sent_credentials(context) -> bool:
    request = context.get("request")
    return bool(request is not None and request.META.get("HTTP_AUTHORIZATION"))


def too_many_parts(exc) -> str:
    from django.conf import settings

    if isinstance(exc, TooManyFilesSent):
        return (f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files in one request: send them in several "
                "requests (the app's upload sends each file on its own).")
    return f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} parameters or form fields in one request."


def bad_request(request, exception=None):
    """Django's 400 (a SuspiciousOperation outside DRF's views, e.g. too many query parameters
    read by a middleware): JSON under /api/, as every other API answer; Django's page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import bad_request as django_bad_request

    if not request.path.startswith("/api/"):
        return django_bad_request(request, exception)
    if isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        detail = too_many_parts(exception)
    elif isinstance(exception, SuspiciousOperation):
        detail = "The request was refused as malformed."
    else:
        detail = "Bad request."
    return JsonResponse({"detail": detail, "code": "bad_request"}, status=400)
