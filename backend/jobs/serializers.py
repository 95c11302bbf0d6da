from django.db.models import Sum
from rest_framework import serializers

from backend.core.paths import shown_path
from backend.core.strict import StrictFieldsMixin

from .models import FINAL_JOB_STATES, PrelabelJob, PrelabelJobImage


class PrelabelJobSerializer(serializers.ModelSerializer):
    errors = serializers.SerializerMethodField()
    objects = serializers.SerializerMethodField(
        help_text="Objects the models proposed, once the job has ended (null while it runs): 'done 8/8' alone "
                  "did not tell 'nothing found' from a fault.")
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = PrelabelJob
        fields = [
            "id", "number", "kind", "status", "total", "processed", "failed", "objects", "stage_ms", "error", "errors",
            "settings_snapshot", "created_by", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields

    def to_representation(self, job):
        data = super().to_representation(job)
        snapshot = data.get("settings_snapshot") or {}
        if snapshot.get("ml_config"):  # the host's absolute path is nobody's business here
            data["settings_snapshot"] = {**snapshot, "ml_config": shown_path(snapshot["ml_config"])}
        return data

    def get_objects(self, job) -> int | None:
        if job.status not in FINAL_JOB_STATES:  # no query per progress event of a running job
            return None
        found = getattr(job, "objects_found", None)  # selectors.with_objects_found: a list's page in its query
        return (found if found is not None else job.items.aggregate(n=Sum("detections"))["n"]) or 0

    def get_errors(self, job) -> list[dict]:
        if job.failed == 0:  # the counter moves with every failure: no query per progress event
            return []
        rows = job.items.filter(status="failed").values_list("image_id", "image__original_name", "error")[:200]
        return [{"image": image, "name": name, "error": error} for image, name, error in rows]


class PrelabelJobItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = PrelabelJobImage
        fields = ["image", "status", "attempts", "error", "stage_ms", "detections", "updated_at"]
        read_only_fields = fields


class StartJobSerializer(StrictFieldsMixin, serializers.Serializer):
    images = serializers.JSONField(default="new", help_text='"new", "all" or a list of image ids')
    kind = serializers.ChoiceField(choices=PrelabelJob.Kind.choices, default=PrelabelJob.Kind.PRELABEL)
    prompts = serializers.ListField(child=serializers.CharField(max_length=200), required=False, max_length=20)
    box_threshold = serializers.FloatField(required=False, min_value=0, max_value=1)
    text_threshold = serializers.FloatField(required=False, min_value=0, max_value=1)
    nms_iou = serializers.FloatField(required=False, min_value=0, max_value=1)

    def validate_prompts(self, value):
        return words_only(value)


def words_only(prompts: list[str]) -> list[str]:
    """A prompt of punctuation alone ("...") ran as an empty phrase and found nothing, unsaid.
    Each is written one way (core/text.one_spelling) and repeats go (the first spelling stays):
    the detectors' tokenizers are uncased, so "Hammer" after "hammer" only took room in the text
    window, as did "a" + a zero-width space after "a"."""
    from backend.core.text import one_spelling

    prompts = [one_spelling(p) for p in prompts]
    bad = [p for p in prompts if not any(ch.isalnum() for ch in p)]
    if bad:
        raise serializers.ValidationError(f"A prompt names what to find in words: {bad[0][:40]!r} has no letter or digit.")
    seen, kept = set(), []
    for prompt in prompts:
        if prompt.casefold() not in seen:
            seen.add(prompt.casefold())
            kept.append(prompt)
    return kept


class SegmentRequestSerializer(StrictFieldsMixin, serializers.Serializer):
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
    proposal = serializers.CharField(
        allow_null=True,
        help_text="Send it as `proposal` when creating the object: the server attaches this evidence (candidates, scores).",
    )


class RefineRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    """Shapes only; bounds against the image (inside it, ≤ 64 points, 0/1 labels) are checked by
    jobs.interactive.refine_now so every caller gets the same 400s."""

    points = serializers.ListField(child=serializers.JSONField(), max_length=256, help_text="[[x, y], …] in image pixels, at most 64")
    labels = serializers.ListField(child=serializers.JSONField(), max_length=256, help_text="1 = object, 0 = background, one per point")
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4, required=False, allow_null=True,
                                help_text="optional [x0, y0, x1, y1]")
    annotation = serializers.IntegerField(required=False, allow_null=True,
                                          help_text="the object being refined: its current mask is SAM's mask prompt")


class RefineResultSerializer(serializers.Serializer):
    mask_rle = serializers.DictField()
    bbox = serializers.ListField(child=serializers.FloatField(), help_text="[x, y, w, h]")
    score = serializers.FloatField()
    area = serializers.IntegerField()
    cached = serializers.BooleanField(help_text="the image embedding came from the worker's cache (no re-encoding)")
    ms = serializers.FloatField(help_text="worker time: decode, plus encode when not cached")
    round_trip_ms = serializers.FloatField(help_text="request → answer through the gpu queue")
    encoder_runs = serializers.IntegerField(help_text="image-encoder runs of this worker's cache so far (diagnostics)")


class HeldByOthersSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="images of the job someone else has open now")
    people = serializers.ListField(child=serializers.CharField(), help_text="who has them open")


class StartedJobSerializer(PrelabelJobSerializer):
    """A job as it starts, with the images someone else has open: their untouched proposals are
    replaced under them."""

    held_by_others = HeldByOthersSerializer(read_only=True)

    class Meta(PrelabelJobSerializer.Meta):
        fields = PrelabelJobSerializer.Meta.fields + ["held_by_others"]
        read_only_fields = fields
