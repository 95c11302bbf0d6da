from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backend.core.strict import StrictFieldsMixin, id_versions
from backend.images.serializers import ImageSerializer

from .models import MAX_OBJECTS_PER_IMAGE, Annotation, AnnotationEvent, ReviewState


class AnnotationSerializer(serializers.ModelSerializer):
    class_name = serializers.CharField(source="label_class.name", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Annotation
        fields = [
            "id", "image", "label_class", "class_name", "mask_rle", "bbox", "area", "source", "det_score",
            "det_phrase", "mask_score", "class_score", "class_margin", "candidates", "class_review", "mask_review",
            "job_id", "created_at", "updated_at", "version",
        ]
        read_only_fields = fields


class AnnotationCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    image = serializers.IntegerField()
    label_class = serializers.IntegerField(allow_null=True, required=False, default=None)
    mask_rle = serializers.JSONField(required=False, default=None)
    polygons = serializers.JSONField(required=False, default=None)
    proposal = serializers.CharField(
        required=False, allow_null=True, default=None, max_length=64,
        help_text="The `proposal` of a segment answer: the server attaches that evidence (candidates, scores) to this mask.",
    )


class AnnotationUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    version = serializers.IntegerField()
    label_class = serializers.IntegerField(allow_null=True, required=False)
    mask_rle = serializers.JSONField(required=False)
    polygons = serializers.JSONField(required=False)

    class Meta:
        echo_of = AnnotationSerializer  # the object as read may be sent back (core/strict.py)


class ReviewSerializer(StrictFieldsMixin, serializers.Serializer):
    version = serializers.IntegerField()
    target = serializers.ChoiceField(choices=["class", "mask", "both"])
    decision = serializers.ChoiceField(choices=ReviewState.choices)


MAX_SEEN = MAX_OBJECTS_PER_IMAGE  # a reviewer lists every object of an image


class AcceptAllSerializer(StrictFieldsMixin, serializers.Serializer):
    version = serializers.IntegerField(required=False, help_text="The image's version, if the client wants it checked.")
    seen = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2), allow_empty=True,
        max_length=MAX_SEEN,
        # Required: left out, every object that had appeared or changed since the screen was drawn
        # was accepted in the reviewer's name (black-box round 13). [] is "I saw none".
        error_messages={"required": "Send `seen`: [[object id, version], …] of the objects you saw ([] for none)."},
        help_text="[[object id, version], …] as the reviewer saw them ([] if none). An object this would accept that "
                  "is missing here or at another version refuses the whole call: 409 with `changed` (ids) and "
                  "`current` (those objects now). The image's `version` does not change when its objects do.",
    )

    def validate_seen(self, pairs):
        return id_versions(pairs, "object")


class AnnotationEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = AnnotationEvent
        fields = ["id", "annotation_id", "actor", "action", "source", "before", "after", "created_at"]
        read_only_fields = fields


class RestoreSerializer(StrictFieldsMixin, serializers.Serializer):
    version = serializers.IntegerField(help_text="The object's current version.")
    event = serializers.IntegerField(help_text="The audit event whose after-state to restore.")


class ImageDetailSerializer(ImageSerializer):
    """An image with its objects: the review app's bundle."""

    annotations = serializers.SerializerMethodField()

    class Meta(ImageSerializer.Meta):
        fields = ImageSerializer.Meta.fields + ["annotations"]
        read_only_fields = fields

    @extend_schema_field(AnnotationSerializer(many=True))
    def get_annotations(self, image) -> list[dict]:
        return self.context["annotations"]  # pre-rendered rows (selectors.annotation_rows)
