from rest_framework import serializers

from .models import GalleryImage, GalleryVersion


class GalleryImageSerializer(serializers.ModelSerializer):
    class_name = serializers.CharField(source="label_class.name", read_only=True)
    file_url = serializers.SerializerMethodField()

    class Meta:
        model = GalleryImage
        fields = ["id", "label_class", "class_name", "original_name", "width", "height", "created_at", "file_url"]
        read_only_fields = fields

    def get_file_url(self, exemplar) -> str:
        return f"/api/projects/{exemplar.project_id}/gallery/{exemplar.pk}/file/"


class GalleryUploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
    label_class = serializers.IntegerField(required=False, help_text="Omit for an ImageFolder zip.")


class GalleryUploadReportSerializer(serializers.Serializer):
    created = GalleryImageSerializer(many=True)
    created_classes = serializers.ListField(child=serializers.CharField())
    duplicates = serializers.ListField(child=serializers.DictField())
    errors = serializers.ListField(child=serializers.DictField())


class GalleryVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = GalleryVersion
        fields = ["id", "number", "exemplar_ids", "created_at"]
        read_only_fields = fields
