from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backend.core.strict import StrictFieldsMixin, id_versions

from .models import Image, UploadSession


class ImageSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(
        source="api_version", read_only=True,
        help_text="Moves with every change to the image or its objects (a token to send back, not a count).")
    annotation_count = serializers.IntegerField(read_only=True, default=None)
    pending_count = serializers.IntegerField(read_only=True, default=None)
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    claimed_by = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "original_name", "content_type", "sha256", "size_bytes", "width", "height", "status",
            "created_at", "updated_at", "version", "annotation_count", "pending_count", "file_url",
            "thumbnail_url", "claimed_by", "claim_expires_at",
        ]
        read_only_fields = fields

    def to_representation(self, image):
        if not hasattr(image, "annotation_count"):
            # Lists annotate both counts in their query; a single image (next/, a claim) counts
            # here: null broke the schema's plain integer (black-box round 16).
            from .selectors import object_counts

            image.annotation_count, image.pending_count = object_counts(image.pk)
        return super().to_representation(image)

    def get_claimed_by(self, image) -> str | None:
        from .claims import active_claimant

        holder = active_claimant(image)
        return holder.username if holder else None

    def get_file_url(self, image) -> str:
        return f"/api/projects/{image.project_id}/images/{image.pk}/file/"

    def get_thumbnail_url(self, image) -> str:
        # The hash in the URL lets the browser keep the thumbnail as long as the image exists.
        return f"/api/projects/{image.project_id}/images/{image.pk}/thumbnail/?v={image.sha256[:12]}"


class UploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)


class UploadSessionCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    file_name = serializers.CharField(max_length=5000)
    size_bytes = serializers.IntegerField(help_text="The file's size in bytes (a positive whole number).")
    sha256 = serializers.CharField(required=False, allow_blank=True, default="", max_length=64,
                                   help_text="Optional; a file this project already holds is then never sent.")

    def validate_size_bytes(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("The file is empty (0 bytes).")
        if value < 0:  # -1 was answered "The file is empty (0 bytes)"
            raise serializers.ValidationError(f"size_bytes is the file's size: a positive number of bytes, not {value}.")
        return value


class UploadResultSerializer(serializers.Serializer):
    created = serializers.ListField(child=serializers.IntegerField())
    duplicates = serializers.ListField(child=serializers.DictField())
    errors = serializers.ListField(child=serializers.DictField())


class UploadSessionSerializer(serializers.ModelSerializer):
    chunk_bytes = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField()

    class Meta:
        model = UploadSession
        fields = ["id", "file_name", "size_bytes", "received_bytes", "sha256", "status", "result", "chunk_bytes",
                  "created_at", "updated_at"]
        read_only_fields = fields

    def get_chunk_bytes(self, session) -> int:
        from .upload_sessions import CHUNK_BYTES

        return CHUNK_BYTES

    @extend_schema_field(UploadResultSerializer)
    def get_result(self, session) -> dict:
        return {"created": [], "duplicates": [], "errors": [], **(session.result or {})}


class UploadReportSerializer(serializers.Serializer):
    created = ImageSerializer(many=True)
    duplicates = serializers.ListField(child=serializers.DictField())
    errors = serializers.ListField(child=serializers.DictField())


class ClaimSerializer(serializers.Serializer):
    claimed_by = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class DeleteImagesSerializer(StrictFieldsMixin, serializers.Serializer):
    images = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=2, max_length=2),
        min_length=1, max_length=1000,
        help_text="[[image id, version], …] as the list showed them (at most 1000): all are deleted, or none.",
    )

    def validate_images(self, pairs):
        return id_versions(pairs, "image")


class DeleteImagesResultSerializer(serializers.Serializer):
    deleted = serializers.ListField(child=serializers.IntegerField())
