from rest_framework import serializers

from .models import Image


class ImageSerializer(serializers.ModelSerializer):
    annotation_count = serializers.IntegerField(read_only=True, default=None)
    pending_count = serializers.IntegerField(read_only=True, default=None)
    file_url = serializers.SerializerMethodField()
    claimed_by = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "original_name", "content_type", "sha256", "size_bytes", "width", "height", "status",
            "created_at", "updated_at", "version", "annotation_count", "pending_count", "file_url",
            "claimed_by", "claim_expires_at",
        ]
        read_only_fields = fields

    def get_claimed_by(self, image) -> str | None:
        from .claims import active_claimant

        holder = active_claimant(image)
        return holder.username if holder else None

    def get_file_url(self, image) -> str:
        return f"/api/projects/{image.project_id}/images/{image.pk}/file/"


class UploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)


class UploadReportSerializer(serializers.Serializer):
    created = ImageSerializer(many=True)
    duplicates = serializers.ListField(child=serializers.DictField())
    errors = serializers.ListField(child=serializers.DictField())


class ClaimSerializer(serializers.Serializer):
    claimed_by = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class SegmentRequestSerializer(serializers.Serializer):
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4)


class SegmentCandidateSerializer(serializers.Serializer):
    class_id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    score = serializers.FloatField()
    exemplar_id = serializers.IntegerField(allow_null=True)


class SegmentResultSerializer(serializers.Serializer):
    mask_rle = serializers.DictField()
    bbox = serializers.ListField(child=serializers.FloatField())
    score = serializers.FloatField()
    label_class = serializers.IntegerField(allow_null=True, help_text="Class proposed by the gallery match; null when the gallery is empty or the match is unsure.")
    class_name = serializers.CharField(allow_null=True)
    class_score = serializers.FloatField(allow_null=True)
    class_margin = serializers.FloatField(allow_null=True)
    candidates = SegmentCandidateSerializer(many=True)
    gallery_size = serializers.IntegerField()
