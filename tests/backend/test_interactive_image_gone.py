"""Black-box round 15: segment/ and refine/ sent while their image was being deleted answered a
clean 404, but each task logged an ERROR with a traceback in the worker. A task whose image went
meanwhile answers "gone" quietly (the web says 404); a failure on a live image still raises."""
import logging

import pytest

from backend.images.services import delete_image
from backend.jobs.interactive import GONE, refine_mask, segment_box_match

from .factories import make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def test_a_click_on_an_image_deleted_meanwhile_is_answered_gone_without_an_error(settings, tiny_models_config, caplog):
    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    project = make_project(make_user("owner"))
    image = make_image(project, seed=4)
    image_id = image.pk
    delete_image(project=project, image_id=image_id, version=image.api_version)
    with caplog.at_level(logging.INFO):
        assert segment_box_match(image_id, [0, 0, 30, 20]) == GONE
        assert refine_mask(image_id, [[5.0, 5.0]], [1], None, None) == GONE
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "deleted meanwhile" in caplog.text


def test_a_failure_on_a_live_image_still_raises(settings, tiny_models_config):
    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    image = make_image(make_project(make_user("owner")), seed=5)
    with pytest.raises(Exception):
        refine_mask(image.pk, [[5.0, 5.0]], [1, 0], None, None)  # two labels for one point
