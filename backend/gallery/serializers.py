from rest_framework import serializers

from backend.core.strict import StrictFieldsMixin

from .models import GalleryImage, GalleryVersion, HardNegative


class GalleryImageSerializer(serializers.ModelSerializer):
    class_name = serializers.CharField(source="label_class.name", read_only=True)
    file_url = serializers.SerializerMethodField()
    # The uploader, or for a learned exemplar the reviewer whose class fix it came from.
    added_by = serializers.CharField(source="uploaded_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = GalleryImage
        fields = ["id", "label_class", "class_name", "original_name", "width", "height", "created_at", "file_url",
                  "source", "source_image_id", "source_annotation_id", "added_by"]
        read_only_fields = fields

    def get_file_url(self, exemplar) -> str:
        return f"/api/projects/{exemplar.project_id}/gallery/{exemplar.pk}/file/"


class GalleryUploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
    label_class = serializers.IntegerField(required=False, help_text="Omit for an ImageFolder zip.")


class OtherClassSerializer(serializers.Serializer):
    class_id = serializers.IntegerField()
    class_name = serializers.CharField()
    exemplar_id = serializers.IntegerField()


class AlsoInSerializer(serializers.Serializer):
    name = serializers.CharField()
    id = serializers.IntegerField(help_text="the exemplar just added")
    class_name = serializers.CharField()
    also_in = OtherClassSerializer(many=True)


class GalleryUploadReportSerializer(serializers.Serializer):
    created = GalleryImageSerializer(many=True)
    created_classes = serializers.ListField(child=serializers.CharField())
    duplicates = serializers.ListField(child=serializers.DictField())
    errors = serializers.ListField(child=serializers.DictField())
    also_in = AlsoInSerializer(many=True, help_text="Added files whose exact bytes are also an exemplar of another class.")


class GalleryVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = GalleryVersion
        fields = ["id", "number", "exemplar_ids", "negative_ids", "created_at"]
        read_only_fields = fields


class HardNegativeSerializer(serializers.ModelSerializer):
    class_name = serializers.CharField(source="label_class.name", read_only=True)
    reviewer = serializers.CharField(source="reviewer.username", read_only=True, default=None, allow_null=True)
    crop_url = serializers.SerializerMethodField()

    class Meta:
        model = HardNegative
        fields = ["id", "label_class", "class_name", "crop", "crop_url", "source_image_id", "source_annotation_id",
                  "reviewer", "created_at"]
        read_only_fields = fields

    def get_crop_url(self, negative) -> str:
        return f"/api/projects/{negative.project_id}/gallery/{negative.crop_id}/file/"


class PruneSerializer(StrictFieldsMixin, serializers.Serializer):
    exemplar_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=1000, default=list)
    negative_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=1000, default=list)


class PruneReportSerializer(serializers.Serializer):
    exemplars = serializers.IntegerField()
    negatives = serializers.IntegerField()
