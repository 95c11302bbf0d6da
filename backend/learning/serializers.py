from django.conf import settings
from rest_framework import serializers

from backend.core.paths import shown_path
from backend.core.strict import StrictFieldsMixin
from backend.projects.models import Engine

from .models import EvaluationRun, ModelKind, ModelVersion, TrainingRun


def _username(user) -> str | None:
    return user.username if user else None


class ModelVersionSerializer(serializers.ModelSerializer):
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


class EvaluationRunSerializer(serializers.ModelSerializer):
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

    def to_representation(self, obj):
        data = super().to_representation(obj)
        config = settings.RAZMETKA_ML_CONFIG
        if config and config in (data.get("fingerprint") or ""):  # as jobs show it: not the host's path
            data["fingerprint"] = data["fingerprint"].replace(config, shown_path(config))
        return data


class TrainingRunSerializer(serializers.ModelSerializer):
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
