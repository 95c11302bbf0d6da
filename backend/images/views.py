import re

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from django.db import transaction
from django.http import HttpResponseNotModified

from backend.core.errors import DomainError, NotFound
from backend.core.files import private_file_response, read_stored
from backend.core.filters import only_params
from backend.core.params import flag_from, force_from, int_or_404
from backend.core.strict import empty_body
from backend.core.upload_guard import check_upload_request
from backend.core.uploads import THUMBNAIL_CONTENT_TYPE
from backend.core.body_parsers import FilesOnlyWhereNamed
from backend.projects.access import ROLE_CAPABILITIES, Capability, ProjectScopedMixin

from . import claims, display, selectors, services, upload_sessions
from .models import ImageStatus
from .serializers import (
    ClaimSerializer,
    DeleteImagesResultSerializer,
    DeleteImagesSerializer,
    ImageSerializer,
    UploadReportSerializer,
    UploadSerializer,
    UploadSessionCreateSerializer,
    UploadSessionSerializer,
)

SESSION_PATH = "uploads/<int:session_id>"  # the router uses path converters
OFFSET_FORM = re.compile(r"[0-9]{1,18}")  # a chunk's ?offset= (hot_upload._CHUNK_QUERY takes the same)


def _derived_response(ensure, image, content_type: str, download_name: str):
    """A thumbnail's or display PNG's file, made again when its stored file went missing (it was a
    404 "missing from storage" for good, black-box round 17b)."""
    try:
        return private_file_response(ensure(image), content_type, download_name)
    except NotFound:
        return private_file_response(ensure(image, missing=True), content_type, download_name)


class ImageViewSet(FilesOnlyWhereNamed, ProjectScopedMixin, viewsets.GenericViewSet):
    multipart_actions = ("create",)
    serializer_class = ImageSerializer
    capabilities = {
        "create": Capability.ANNOTATE, "uploads": Capability.ANNOTATE, "upload": Capability.ANNOTATE,
        "upload_finish": Capability.ANNOTATE,
    }
    @property
    def write_params(self) -> dict:
        """The query parameters each write takes (backend.core.params.check_write_params): a
        chunk's PUT takes offset and finish; a DELETE of the same route none."""
        method = getattr(getattr(self, "request", None), "method", None)
        return {"upload": ("offset", "finish") if method == "PUT" else (), "delete_many": ("force",)}

    @extend_schema(parameters=[
        OpenApiParameter("status", str, enum=ImageStatus.values),
        OpenApiParameter("label_class", int),
        OpenApiParameter("id", str, description="comma-separated ids"),
        OpenApiParameter("ordering", str),
    ])
    def list(self, request, project_pk=None):
        page = self.paginate_queryset(selectors.images_of_project(self.project, request.query_params))
        return self.get_paginated_response(ImageSerializer(page, many=True).data)

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: UploadReportSerializer})
    def create(self, request, project_pk=None):
        report = services.upload_images(project=self.project, user=request.user, files=check_upload_request(request))
        for image in report.created:  # new: no objects yet (and no query each to say so)
            image.annotation_count = image.pending_count = 0
        body = {
            "created": ImageSerializer(report.created, many=True).data,
            "duplicates": report.duplicates,
            "errors": report.errors,
        }
        if report.created:
            code = status.HTTP_201_CREATED
        elif report.errors:
            code = status.HTTP_400_BAD_REQUEST
        else:
            code = status.HTTP_200_OK
        return Response(body, status=code)

    @extend_schema(
        responses={(200, "image/*"): bytes},
        parameters=[OpenApiParameter("display", bool, description="1: a format browsers cannot draw (TIFF), draw darkened "
                                                              "(16-bit PNG) or animate (APNG, animated WebP) comes as an 8-bit "
                                                              "PNG (an animation's first frame, the one annotated)")],
    )
    @action(detail=True, methods=["get"])
    def file(self, request, project_pk=None, pk=None):
        image = selectors.get_image(self.project, int_or_404(pk))
        name = image.original_name.rsplit("/", 1)[-1]
        only_params(request.query_params, ("display",), paged=False)  # '?display=2&zzz=1' was taken as no rendition
        if flag_from(request, "display"):
            head = read_stored(image.file.name, display.HEAD_BYTES) if image.content_type in ("image/png", "image/webp") else b""
            if display.needs_rendition(image.content_type, head):
                stem = name.rsplit(".", 1)[0] or name  # 'x.png' as 'x.png', not 'x.png.png'
                return _derived_response(services.ensure_rendition, image, "image/png", f"{stem}.png")
        return private_file_response(image.file.name, image.content_type, name)


    @extend_schema(request=DeleteImagesSerializer, responses={200: DeleteImagesResultSerializer}, parameters=[
        OpenApiParameter("force", bool, description="1: delete them though someone else holds some (claims)")])
    @action(detail=False, methods=["post"], url_path="delete")
    def delete_many(self, request, project_pk=None):
        """Delete several images at once (admins): all of them, or none when one changed, went, or is
        held by someone else (unless ?force=1)."""
        serializer = DeleteImagesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deleted = services.delete_images(project=self.project, versions=serializer.validated_data["images"],
                                         user=request.user, force=force_from(request))
        return Response({"deleted": deleted})

    @extend_schema(methods=["POST"], request=UploadSessionCreateSerializer, responses={201: UploadSessionSerializer})
    @extend_schema(methods=["GET"], responses=UploadSessionSerializer(many=True))
    @action(detail=False, methods=["get", "post"])
    def uploads(self, request, project_pk=None):
        """POST: open a chunked upload for one file (an image or a zip). GET: your uploads still
        taking bytes here (a client that lost their ids could only guess them to cancel them, and
        the cap on open uploads refused new ones)."""
        if request.method in SAFE_METHODS:  # HEAD too: it ran the POST below and opened an upload
            only_params(request.query_params, (), paged=False)  # not a paged list: 64 at most
            sessions = upload_sessions.open_sessions(self.project, request.user)
            return Response(UploadSessionSerializer(sessions, many=True).data)
        serializer = UploadSessionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        session = upload_sessions.create_session(
            project=self.project, user=request.user, file_name=data["file_name"], size_bytes=data["size_bytes"],
            sha256=data.get("sha256", ""),
        )
        return Response(UploadSessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["PUT"], request={"application/octet-stream": bytes},
        parameters=[OpenApiParameter("offset", int, required=True, description="where this chunk starts in the file"),
                    OpenApiParameter("finish", bool, required=False,
                                     description="1 on the last chunk: hand the file to processing in the same request")],
        responses={200: UploadSessionSerializer, 409: UploadSessionSerializer},
    )
    @extend_schema(methods=["GET"], responses=UploadSessionSerializer)
    @extend_schema(methods=["DELETE"], responses={204: None})
    @action(detail=False, methods=["get", "put", "delete"], url_path=SESSION_PATH)
    def upload(self, request, project_pk=None, session_id=None):
        """GET: where the upload stands (a client resumes from `received_bytes`). PUT: one chunk
        as the raw body at `?offset=` (`&finish=1` on the last one also finishes the upload).
        DELETE: cancel and drop the received bytes."""
        sid = int_or_404(session_id)
        if request.method in (*SAFE_METHODS, "DELETE") and request.query_params:
            # `?offset=5&finish=1` on a DELETE cancelled the upload as if it were a plain one.
            name = sorted(request.query_params)[0]
            raise ValidationError({name: f"Unknown parameter '{name}': {request.method} on an upload takes no parameters "
                                         "(offset and finish go with a chunk's PUT)."})
        if request.method in SAFE_METHODS:  # HEAD as GET: it ran the PUT below (a chunk written, CSRF unchecked)
            return Response(UploadSessionSerializer(upload_sessions.get_session(self.project, sid, request.user)).data)
        if request.method == "DELETE":
            empty_body(request)
            upload_sessions.cancel_session(project=self.project, user=request.user, session_id=sid)
            return Response(status=status.HTTP_204_NO_CONTENT)
        only_params(request.query_params, {"offset", "finish"})
        # 1/0/true/false in any case, once, as ?force= (`finish=yes` left the upload open, in silence;
        # `finish=TRUE` was refused). The hot route (hot_upload.py) reads it the same way.
        finish = flag_from(request, "finish")
        raw_offset = request.query_params.get("offset")
        if raw_offset is None:
            raise DomainError("Give the chunk's start as ?offset=<bytes> and send a Content-Length.")
        # ASCII digits, as ?version= ("٠", " 0", "+0" and "0_0" were read as 0 by int()).
        if not OFFSET_FORM.fullmatch(raw_offset):
            raise ValidationError({"offset": f"offset is where the chunk starts: a byte count in ASCII digits, not {raw_offset!r}."})
        offset = int(raw_offset)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise DomainError("Give the chunk's start as ?offset=<bytes> and send a Content-Length.") from None
        session = upload_sessions.write_chunk(
            project=self.project, user=request.user, session_id=sid, offset=offset, length=length,
            stream=request._request,  # the raw body, read in blocks; never parsed or held whole
            finish=finish,
        )
        return Response(UploadSessionSerializer(session).data)

    @extend_schema(request=None, responses={202: UploadSessionSerializer})
    @action(detail=False, methods=["post"], url_path=SESSION_PATH + "/finish")
    def upload_finish(self, request, project_pk=None, session_id=None):
        """All bytes sent: the cpu worker validates and stores; poll the session for the result."""
        empty_body(request)
        session = upload_sessions.finish_session(project=self.project, user=request.user, session_id=int_or_404(session_id))
        return Response(UploadSessionSerializer(session).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "image/jpeg"): bytes, 304: None})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, project_pk=None, pk=None):
        image = selectors.get_image(self.project, int_or_404(pk))
        # The thumbnail is a function of the image's bytes, so their hash is a strong validator.
        etag = f'"t-{image.sha256[:32]}"'
        if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            response = HttpResponseNotModified()
        else:
            response = _derived_response(services.ensure_thumbnail, image, THUMBNAIL_CONTENT_TYPE, f"thumb-{image.pk}.jpg")
        response["ETag"] = etag
        response["Cache-Control"] = "private, max-age=604800"
        return response


NEXT_CLAIM_TRIES = 5  # images taken by others between the query and the claim, passed over


class ImageReviewViewSet(ProjectScopedMixin, viewsets.GenericViewSet):
    """Claims and the review queue (interactive segmentation: jobs.views.ImageSegmentViewSet)."""

    serializer_class = ImageSerializer
    capabilities = {"claim": Capability.ANNOTATE, "next": Capability.READ}

    @extend_schema(request=None, responses={200: ClaimSerializer, 409: ClaimSerializer})
    @action(detail=True, methods=["post", "delete"])
    def claim(self, request, project_pk=None, pk=None):
        empty_body(request)
        if request.method == "DELETE":
            claims.release_image(project=self.project, image_id=int_or_404(pk), user=request.user, membership=self.membership)
            return Response({"claimed_by": None, "expires_at": None})
        image = claims.claim_image(project=self.project, image_id=int_or_404(pk), user=request.user)
        return Response({"claimed_by": request.user.username, "expires_at": image.claim_expires_at})

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("label_class", int), OpenApiParameter("after", str),
                    OpenApiParameter("claim", bool, description="1: claim the image found, in the same request (a role "
                                     "that can annotate); two reviewers asking at once get two images")],
        responses={200: ImageSerializer, 204: None},
    )
    @action(detail=False, methods=["get"])
    def next(self, request, project_pk=None):
        claim = flag_from(request, "claim") and Capability.ANNOTATE in ROLE_CAPABILITIES[self.membership.role]
        skip: set[int] = set()
        for _ in range(NEXT_CLAIM_TRIES):
            image = selectors.next_for_review(self.project, request.user, request.query_params, skip=skip)
            if image is None or not claim:
                break
            try:  # between the query and the claim someone else may have taken it: the next one then
                with transaction.atomic():
                    image = claims.claim_image(project=self.project, image_id=image.pk, user=request.user)
                break
            except claims.ClaimConflict:
                skip.add(image.pk)
                image = None
        if image is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ImageSerializer(image).data)
