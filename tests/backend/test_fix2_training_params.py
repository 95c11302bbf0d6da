"""Fix round 2: training settings that count things are whole numbers; a fraction is a 400 (it
used to be queued, then the run failed with a Python TypeError)."""
import pytest

from backend.learning.models import TrainingRun

from .factories import make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind, key, value, low, high", [
    ("head", "epochs", 1.5, 1, 5000), ("head", "hidden", 4.5, 4, 4096), ("head", "seed", 0.5, 0, 2**31),
    ("maskrcnn", "steps", 1.5, 1, 100000), ("maskrcnn", "batch_size", 1.5, 1, 16),
    ("maskrcnn", "min_size", 64.5, 32, 2048), ("maskrcnn", "max_size", 128.25, 32, 4096),
    ("maskrcnn", "rois_per_image", 8.5, 8, 1024),
])
def test_fractional_counts_are_refused(client_for, kind, key, value, low, high):
    owner = make_user("trainer")
    project = make_project(owner)
    response = client_for(owner).post(f"/api/projects/{project.pk}/trainings/",
                                      {"kind": kind, "params": {key: value}}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["detail"] == f"{key} must be an integer from {low} to {high}."
    assert not TrainingRun.objects.filter(project=project).exists()


def test_holdout_stays_a_fraction(client_for):
    from backend.learning.services import _params

    # (Whole floats such as epochs 3.0 were taken as 3 here; round 5 refuses them: a JSON integer only.)
    assert _params("head", {"holdout": 0.25, "epochs": 3, "hidden": 32}) == {"holdout": 0.25, "epochs": 3, "hidden": 32}


def test_an_evaluation_of_a_model_version_with_another_engine_is_refused(client_for):
    """{"engine": "gdino-sam2", "model_version": <maskrcnn>} answered 201 and measured maskrcnn instead."""
    from backend.learning.models import ModelVersion

    from .factories import make_project, make_user

    owner = make_user("evalowner")
    project = make_project(owner)
    version = ModelVersion.objects.create(project=project, kind="maskrcnn", number=1, metrics={}, file="models/x.zip")
    response = client_for(owner).post(f"/api/projects/{project.pk}/evaluations/",
                                      {"engine": "gdino-sam2", "model_version": version.pk}, format="json")
    assert response.status_code == 400 and "Mask R-CNN" in response.json()["detail"]
