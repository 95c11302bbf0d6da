import os

from .env import env_int

# Every JSON body: at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (storage.py) and this many levels
# of nesting; either answers 400 with a message.
RAZMETKA_MAX_JSON_DEPTH = env_int("RAZMETKA_MAX_JSON_DEPTH", 64)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "backend.core.authentication.SessionUnlessToken",
        "rest_framework.authentication.TokenAuthentication",
    ],
    # StrictWriteParams: a write's unknown or repeated query parameter is a 400 (after sign-in).
    "DEFAULT_PERMISSION_CLASSES": ["backend.core.permissions.OwnPasswordSet", "backend.core.permissions.StrictWriteParams"],
    "DEFAULT_PAGINATION_CLASS": "backend.core.pagination.Pagination",
    # JSON only: DRF's browsable HTML renderer (what a browser's Accept picked) answered 500 on
    # every list whose view builds its queryset per request; /api/docs/ is the readable API.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # `format` is not DRF's renderer switch (`/exports/?format=coco` answered 404): JSON is the only one.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "backend.core.errors.exception_handler",
    # How many proxies in front add X-Forwarded-For (the throttles' client address). Unset, DRF
    # took the whole header as the address: a client sending a new one each time was never
    # throttled. 0 (the default, the app serving clients itself): the socket's address alone.
    "NUM_PROXIES": env_int("RAZMETKA_TRUSTED_PROXIES", 0),
    # JSON only: the views that take files add multipart for those actions alone
    # (core/body_parsers.FilesOnlyWhereNamed); a form post to a JSON write is a 415.
    "DEFAULT_PARSER_CLASSES": ["backend.core.json_limits.LimitedJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Razmetka API",
    "DESCRIPTION": "Instance-segmentation labeling: projects, images, annotations, review, jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # /api/docs/ loaded Swagger UI from a CDN: blank on a host without internet. Served from
    # /static/ (drf-spectacular-sidecar) instead.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ReviewStateEnum": "backend.annotations.models.ReviewState",
        # also a pre-annotation job's status: the same five states (queued … cancelled)
        "RunStateEnum": "backend.learning.models.RunState",
        "ModelVersionStateEnum": "backend.learning.models.ModelVersion.State",
        "ModelKindEnum": "backend.learning.models.ModelKind",
        "ImageStatusEnum": "backend.images.models.ImageStatus",
        "ExchangeJobStatusEnum": "backend.exchange.models.JobStatus",
        "PrelabelJobKindEnum": "backend.jobs.models.PrelabelJob.Kind",
        "LabelClassKindEnum": "backend.projects.models.LabelClass.Kind",
    },
}

# Django's admin site (/admin/) is off unless asked for: its sign-in has no throttle or lockout.
RAZMETKA_DJANGO_ADMIN = os.environ.get("RAZMETKA_DJANGO_ADMIN", "") == "1"
