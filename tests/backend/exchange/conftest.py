import pytest

from .helpers import build_project, populate


@pytest.fixture
def source(admin_user):
    project, classes, images = build_project(admin_user)
    annotations = populate(project, classes, images)
    return project, classes, images, annotations


@pytest.fixture
def target(admin_user):
    """A fresh project with the same images and classes (same order), nothing annotated."""
    project, classes, images = build_project(admin_user, name="Dst")
    return project, classes, images
