from rest_framework import serializers

from backend.annotations.serializers import AnnotationSerializer

from .models import Image


class ImageSerializer(serializers.ModelSerializer):
    annotation_count = serializers.IntegerField(read_only=True, default=None)
    pending_count = serializers.IntegerField(read_only=True, default=None)
    file_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "original_name", "content_type", "sha256", "size_bytes", "width", "height", "status",
            "created_at", "updated_at", "version", "annotation_count", "pending_count", "file_url",
        ]
        read_only_fields = fields

    def get_file_url(self, image) -> str:
        return f"/api/projects/{image.project_id}/images/{image.pk}/file/"


class ImageDetailSerializer(ImageSerializer):
    annotations = serializers.SerializerMethodField()

    class Meta(ImageSerializer.Meta):
        fields = ImageSerializer.Meta.fields + ["annotations"]
        read_only_fields = fields

    def get_annotations(self, image) -> list[dict]:
        return AnnotationSerializer(self.context["annotations"], many=True).data


class UploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)


class UploadReportSerializer(serializers.Serializer):
    created = ImageSerializer(many=True)
    duplicates = serializers.ListField(child=serializers.DictField())
    errors = serializers.ListField(child=serializers.DictField())
