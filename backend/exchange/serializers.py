from rest_framework import serializers

from backend.core.strict import StrictFieldsMixin
from backend.images.models import ImageStatus

from .models import ExchangeFormat, ExportJob, ImportJob


class ExportRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    format = serializers.ChoiceField(choices=ExchangeFormat.choices)
    segmentation = serializers.ChoiceField(
        choices=["rle", "polygon"], required=False,
        help_text="COCO: rle (default) or polygon; LabelMe and YOLO write polygons, native and Label Studio RLE.",
    )
    include_pending = serializers.BooleanField(default=False)
    include_empty_images = serializers.BooleanField(
        default=False, help_text="Also list images with no exported object (unreviewed or empty ones).",
    )
    include_images = serializers.BooleanField(default=False)
    image_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=100_000)
    status = serializers.ListField(child=serializers.ChoiceField(choices=ImageStatus.choices), required=False)
    class_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=10_000,
        help_text="Only objects of these classes (ids of this project's classes); empty = all classes.",
    )

    def validate(self, attrs):
        # A segmentation the format cannot write was accepted and ignored (YOLO "rle" gave polygons).
        allowed = SEGMENTATIONS_OF[attrs["format"]]
        chosen = attrs.setdefault("segmentation", allowed[0])
        if chosen not in allowed:
            raise serializers.ValidationError(
                {"segmentation": f"{attrs['format']} writes {' or '.join(allowed)} only; send that or leave it out."})
        return attrs


# What each format can write, its default first.
SEGMENTATIONS_OF = {"coco": ("rle", "polygon"), "labelme": ("polygon",), "yolo": ("polygon",), "native": ("rle",),
                    "labelstudio": ("rle",)}


class ImportRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=ExchangeFormat.choices)
    as_accepted = serializers.BooleanField(default=False)
    create_missing_classes = serializers.BooleanField(default=False)


class _JobSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    progress = serializers.SerializerMethodField()

    def get_progress(self, job) -> dict:
        return {"done": job.progress_done, "total": job.progress_total}


class ExportJobSerializer(_JobSerializer):
    download_url = serializers.SerializerMethodField()
    expired = serializers.SerializerMethodField(
        help_text="The file was removed by retention (only the newest finished exports keep theirs).")

    class Meta:
        model = ExportJob
        fields = [
            "id", "format", "options", "status", "progress", "error", "result", "result_size", "download_url",
            "expired", "expired_at", "created_by", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields

    def get_expired(self, job) -> bool:
        return job.expired_at is not None

    def get_download_url(self, job) -> str | None:
        if job.status != "done" or not job.result_file:
            return None
        return f"/api/projects/{job.project_id}/exports/{job.pk}/download/"


class ImportJobSerializer(_JobSerializer):
    def get_progress(self, job) -> dict:
        return {"done": job.progress_done, "total": job.progress_total, "stage": job.progress_stage}

    class Meta:
        model = ImportJob
        fields = [
            "id", "format", "options", "upload_name", "status", "progress", "errors", "result",
            "created_by", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields
