"""Fix round 2: in an ImageFolder zip the top folder names the class; deeper folders are only
its subfolders (`wrench/sub/a.png` is a `wrench`, not a new class `sub`). A folder wrapping
several class folders (`dataset/hammer/…`, `dataset/pliers/…`) still is one."""
import pytest

from backend.gallery.models import GalleryImage
from backend.projects.models import LabelClass

from .factories import image_bytes, make_class, make_project, make_user
from .test_fix_gallery_folders import post_zip

pytestmark = pytest.mark.django_db


def classes_of(project):
    return sorted(LabelClass.objects.filter(project=project).values_list("name", flat=True))


def test_a_nested_folder_belongs_to_its_top_folders_class(client_for):
    owner = make_user("gallery-owner")
    project = make_project(owner)
    response = post_zip(client_for(owner), project, {"wrench/sub/a.png": image_bytes(40, 44, (1, 2, 3))})
    assert response.status_code == 201, response.content
    assert response.json()["created_classes"] == ["wrench"]
    assert classes_of(project) == ["wrench"]
    assert GalleryImage.objects.get(project=project).label_class.name == "wrench"


def test_nested_folders_next_to_plain_files(client_for):
    owner = make_user("gallery-owner2")
    project = make_project(owner)
    make_class(project, "wrench")
    response = post_zip(client_for(owner), project, {
        "wrench/sub/a.png": image_bytes(40, 44, (1, 2, 3)),
        "wrench/other/b.png": image_bytes(40, 44, (4, 5, 6)),  # two subfolders of an existing class
        "hammer/c.png": image_bytes(40, 44, (7, 8, 9)),
    })
    assert response.status_code == 201, response.content
    assert response.json()["created_classes"] == ["hammer"] and not response.json()["errors"]
    assert classes_of(project) == ["hammer", "wrench"]
    assert sorted(GalleryImage.objects.filter(project=project).values_list("label_class__name", flat=True)) == [
        "hammer", "wrench", "wrench"]


def test_a_wrapping_folder_of_several_class_folders_still_is_one(client_for):
    owner = make_user("gallery-owner3")
    project = make_project(owner)
    response = post_zip(client_for(owner), project, {
        "dataset/hammer/a.png": image_bytes(40, 44, (1, 2, 3)),
        "dataset/pliers/deep/b.png": image_bytes(40, 44, (4, 5, 6)),
    })
    assert response.status_code == 201, response.content
    assert sorted(response.json()["created_classes"]) == ["hammer", "pliers"]
    assert classes_of(project) == ["hammer", "pliers"]


def test_subfolders_of_an_existing_class_are_not_class_folders(client_for):
    owner = make_user("gallery-owner4")
    project = make_project(owner)
    make_class(project, "Wrench")
    response = post_zip(client_for(owner), project, {
        "wrench/sub/a.png": image_bytes(40, 44, (1, 2, 3)),
        "wrench/other/b.png": image_bytes(40, 44, (4, 5, 6)),
    })
    assert response.status_code == 201, response.content
    assert response.json()["created_classes"] == [] and len(response.json()["created"]) == 2
    assert classes_of(project) == ["Wrench"]


def test_a_folder_named_like_an_existing_class_joins_it(client_for):
    """Folder names are folded like class names: a full-width 'ｈａｍｍｅｒ/' is the class 'hammer'."""
    owner = make_user("folder-owner")
    project = make_project(owner)
    hammer = make_class(project, "hammer")
    response = post_zip(client_for(owner), project, {"ｈａｍｍｅｒ/a.png": image_bytes(40, 44, (1, 2, 3))})
    assert response.status_code in (200, 201), response.content[:300]
    assert LabelClass.objects.filter(project=project).count() == 1
    assert GalleryImage.objects.filter(project=project, label_class=hammer).count() == 1


def test_a_wrapping_folder_of_one_known_class_folder_is_not_a_class(client_for):
    """`dataset/hammer/a.png` (an export of one class) made a new class "dataset"."""
    owner = make_user("gallery-owner5")
    project = make_project(owner)
    hammer = make_class(project, "hammer")
    response = post_zip(client_for(owner), project, {
        "dataset/hammer/a.png": image_bytes(40, 44, (1, 2, 3)),
        "dataset/hammer/deep/b.png": image_bytes(40, 44, (4, 5, 6)),
    })
    assert response.status_code == 201, response.content
    assert response.json()["created_classes"] == [] and not response.json()["errors"]
    assert classes_of(project) == ["hammer"]
    assert GalleryImage.objects.filter(project=project, label_class=hammer).count() == 2
    # An unknown inner folder keeps the rule that the top folder names the class.
    other = post_zip(client_for(owner), project, {"wrench/sub/c.png": image_bytes(40, 44, (7, 8, 9))})
    assert other.json()["created_classes"] == ["wrench"]
