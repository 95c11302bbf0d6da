"""Reads: runs, model versions, and the active models other code applies."""
from __future__ import annotations

import io
import logging
import threading
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Max

from backend.core.errors import NotFound
from backend.projects.models import Project

from .models import EvaluationRun, ModelKind, ModelVersion, TrainingRun

logger = logging.getLogger("razmetka.learning")
_lock = threading.Lock()
_heads: dict[int, object] = {}  # ModelVersion id -> ml.head.Head (a version's file never changes)


def evaluation_runs(project: Project):
    return EvaluationRun.objects.filter(project=project).select_related("created_by", "model_version")


def training_runs(project: Project):
    return TrainingRun.objects.filter(project=project).select_related("created_by", "model_version")


def model_versions(project: Project):
    return ModelVersion.objects.filter(project=project).select_related("created_by", "promoted_by")


def get_or_404(queryset, pk: int, what: str):
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise NotFound(f"{what} not found.")
    return obj


def active_version(project_id: int, kind: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(project_id=project_id, kind=kind, state=ModelVersion.State.ACTIVE).first()


KIND_NAMES = {ModelKind.HEAD: "projection head", ModelKind.MASKRCNN: "Mask R-CNN"}


class ModelUnavailable(Exception):
    """A model version's stored file is missing or damaged: it cannot be loaded. The message
    names the version and what to do, never the storage path (the cause goes to the log)."""


def _unavailable(version: ModelVersion, exc: BaseException) -> ModelUnavailable:
    logger.error("model version %s (%s #%s of project %s) cannot be loaded from %s: %s: %s", version.pk,
                 version.kind, version.number, version.project_id, version.file.name, type(exc).__name__, exc)
    what = KIND_NAMES.get(version.kind, version.kind)
    if version.state == ModelVersion.State.ACTIVE:
        return ModelUnavailable(
            f"The active model version #{version.number} ({what}) can't be loaded: its file is damaged or missing. "
            f"Activate another version or train again.")
    return ModelUnavailable(
        f"Model version #{version.number} ({what}, {version.state}) can't be loaded: its file is damaged or missing. "
        f"Use another version or train again.")


def load_head(version: ModelVersion):
    from ml.head import Head

    with _lock:
        if version.pk not in _heads:
            try:
                with default_storage.open(version.file.name, "rb") as fh:
                    _heads[version.pk] = Head.from_bytes(fh.read())
            except Exception as exc:  # missing (OSError), truncated (BadZipFile, ValueError, EOFError)
                raise _unavailable(version, exc) from exc
        return _heads[version.pk]


def active_transform(project_id: int):
    """The project's active projection head as a callable on [N, D] embeddings (ml.head.Head),
    or None when no head is active. Hand it to ml.matcher.Matcher(transform=...): it is applied
    to crop and exemplar vectors alike. Its ``embedder_version`` names the embedder it fits;
    applied to another embedder's vectors it raises ValueError (a different size) or is
    meaningless, so callers with vectors of another embedder should skip it."""
    version = active_version(project_id, ModelKind.HEAD)
    return None if version is None else load_head(version)


def transform_for(project_id: int, embedder_version: str):
    """active_transform, only when it was trained on this embedder's vectors."""
    head = active_transform(project_id)
    return head if head is not None and head.embedder_version == embedder_version else None


def maskrcnn_checkpoint(version: ModelVersion) -> Path:
    """A local folder with the version's checkpoint (maskrcnn.json + model.pt), unpacked once
    from media storage under VAR_DIR/models/ (works with S3 storage too)."""
    # Keyed by id and creation time: a recreated database reuses ids, never both.
    root = Path(settings.VAR_DIR) / "models" / f"maskrcnn-{version.pk}-{int(version.created_at.timestamp() * 1e6)}"
    if not (root / "maskrcnn.json").is_file():
        import shutil
        import tempfile

        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".unpack-"))
        try:
            with default_storage.open(version.file.name, "rb") as fh:
                data = fh.read()
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                if "maskrcnn.json" not in zf.namelist():
                    raise zipfile.BadZipFile("no maskrcnn.json in it")
                zf.extractall(tmp)
        except Exception as exc:  # missing (OSError), truncated or not a zip (BadZipFile, CRC errors)
            shutil.rmtree(tmp, ignore_errors=True)
            raise _unavailable(version, exc) from exc
        try:
            tmp.rename(root)  # atomic: a reader never sees half a checkpoint
        except OSError:  # another process unpacked it meanwhile (same bytes)
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def active_maskrcnn_checkpoint(project_id: int) -> Path | None:
    """The folder the `maskrcnn` engine should load for this project: its active trained
    version, or None (then the engine's configured maskrcnn.model)."""
    version = active_version(project_id, ModelKind.MASKRCNN)
    return None if version is None else maskrcnn_checkpoint(version)


def retired_maskrcnn_problem(project_id: int) -> str | None:
    """Why the `maskrcnn` engine must not run for this project now: it used its own Mask R-CNN
    (a version was active, then retired) and none is active. The engine would fall back to the
    server's configured checkpoint, a model of other classes (a retired cat/dog model gave 32
    "pliers"); that fallback is for projects that have not put one of their own to use (a mere
    candidate waits for an admin's activation, issue 15)."""
    states = dict(ModelVersion.objects.filter(project_id=project_id, kind=ModelKind.MASKRCNN)
                  .values_list("state").annotate(newest=Max("number")).values_list("state", "newest"))
    if ModelVersion.State.ACTIVE in states or ModelVersion.State.RETIRED not in states:
        return None
    return (f"No Mask R-CNN of this project is active (version #{states[ModelVersion.State.RETIRED]} was retired): "
            "activate one on the Models page, or choose another engine in the project's settings. The "
            "server's own Mask R-CNN serves only projects that have not used one of their own.")


def active_ids(project_id: int) -> dict[str, int]:
    """{kind: id} of the project's active model versions, in one query (a job's start)."""
    return dict(ModelVersion.objects.filter(project_id=project_id, state=ModelVersion.State.ACTIVE)
                .order_by("kind", "pk").values_list("kind", "pk"))


def head_transform(version_id: int | None):
    """The head of one ModelVersion (a job's frozen choice), active or not; None for None."""
    if version_id is None:
        return None
    version = ModelVersion.objects.filter(pk=version_id, kind=ModelKind.HEAD).first()
    return None if version is None else load_head(version)
