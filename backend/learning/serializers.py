import re
from pathlib import PurePosixPath

from django.conf import settings
from rest_framework import serializers

from backend.core.strict import StrictFieldsMixin
from backend.projects.models import Engine

from .models import EvaluationRun, ModelKind, ModelVersion, TrainingRun


def _username(user) -> str | None:
    return user.username if user else None


# An absolute path inside a text: a "/" that starts a word (after a space, quote, ":", "|", "(", "[" or
# the start), not "//" (a URL) and not inside a relative path or a hub id ("org/model").
_ABSOLUTE = re.compile(r"""(?<![\w.~/…-])/(?!/)[^\s|,;:'"()\[\]{}<>]+""")


def _public_path(match: re.Match) -> str:
    path = PurePosixPath(match.group(0))
    try:
        return str(path.relative_to(settings.BASE_DIR))  # "var/tiny-models/maskrcnn"
    except ValueError:
        return path.name or str(path)  # elsewhere on the host: its last component only


def public(value):
    """What members see of a stored text (weights, fingerprints, embedder versions, errors): the
    server's absolute paths relative to the app's folder, else only their last component. The
    rows keep the full paths (the worker log and an admin on the host know them)."""
    if isinstance(value, str):
        return _ABSOLUTE.sub(_public_path, value) if "/" in value else value
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items()}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


class PublicTextMixin:
    public_fields: tuple[str, ...] = ()

    def to_representation(self, obj):
        data = super().to_representation(obj)
        for name in self.public_fields:
            if name in data:
                data[name] = public(data[name])
        return data


class ModelVersionSerializer(PublicTextMixin, serializers.ModelSerializer):
    public_fields = ("embedder_version", "metrics")
    created_by = serializers.SerializerMethodField()
    promoted_by = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["id", "kind", "number", "state", "embedder_version", "metrics", "version", "created_by",
                  "created_at", "promoted_by", "promoted_at"]

    def get_created_by(self, obj) -> str | None:
        return _username(obj.created_by)

    def get_promoted_by(self, obj) -> str | None:
        return _username(obj.promoted_by)


class EvaluationRunSerializer(PublicTextMixin, serializers.ModelSerializer):
    public_fields = ("fingerprint", "weights", "device", "error", "metrics")
    created_by = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()

    class Meta:
        model = EvaluationRun
        fields = ["id", "engine", "model_version", "fingerprint", "weights", "gallery_version", "device", "split",
                  "state", "total", "processed", "error", "metrics", "created_by", "created_at", "started_at",
                  "finished_at"]

    def get_created_by(self, obj) -> str | None:
        return _username(obj.created_by)

    def get_model_version(self, obj) -> dict | None:
        v = obj.model_version
        return None if v is None else {"id": v.pk, "kind": v.kind, "number": v.number}


class TrainingRunSerializer(PublicTextMixin, serializers.ModelSerializer):
    public_fields = ("error",)
    created_by = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = ["id", "kind", "state", "progress", "params", "error", "model_version", "created_by", "created_at",
                  "started_at", "finished_at"]

    def get_created_by(self, obj) -> str | None:
        return _username(obj.created_by)

    def get_model_version(self, obj) -> dict | None:
        v = obj.model_version
        return None if v is None else {"id": v.pk, "kind": v.kind, "number": v.number, "state": v.state}


class StartEvaluationSerializer(StrictFieldsMixin, serializers.Serializer):
    engine = serializers.ChoiceField(choices=Engine.choices, required=False)
    model_version = serializers.IntegerField(required=False, help_text="a Mask R-CNN version to score on its held-out images")


class StartTrainingSerializer(StrictFieldsMixin, serializers.Serializer):
    kind = serializers.ChoiceField(choices=ModelKind.choices)
    params = serializers.DictField(required=False, help_text="head: epochs, hidden, holdout, seed; "
                                   "maskrcnn: steps, holdout, seed, batch_size, arch, min_size, max_size")


class DecisionSerializer(StrictFieldsMixin, serializers.Serializer):
    version = serializers.IntegerField()
