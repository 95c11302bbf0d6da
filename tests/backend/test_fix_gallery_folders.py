"""Gallery ImageFolder zips: a folder name becomes a class only if `POST /classes/` would accept
it; a blank or too long name is one clear error for that folder, and the other folders import."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.gallery.models import GalleryImage
from backend.projects.models import LabelClass

from .factories import image_bytes, make_project, make_user, zip_bytes

pytestmark = pytest.mark.django_db


def post_zip(client, project, entries):
    return client.post(f"/api/projects/{project.pk}/gallery/",
                       {"files": [SimpleUploadedFile("f.zip", zip_bytes(entries))]}, format="multipart")


def test_blank_and_too_long_folder_names_are_refused_per_folder(client_for):
    owner = make_user("gallery-admin")
    project = make_project(owner)
    client = client_for(owner)
    long_name = "Z" * 300
    response = post_zip(client, project, {
        "   /a.png": image_bytes(30, 30, (1, 9, 9)),
        "   /b.png": image_bytes(30, 30, (2, 9, 9)),
        f"{long_name}/a.png": image_bytes(30, 30, (3, 9, 9)),
        " pliers /c.png": image_bytes(30, 30, (4, 9, 9)),
    })
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created_classes"] == ["pliers"] and len(body["created"]) == 1
    errors = {e["name"]: e for e in body["errors"]}
    assert set(errors) == {"f.zip/   /", f"f.zip/{long_name}/"}
    assert "may not be blank" in errors["f.zip/   /"]["error"] and errors["f.zip/   /"]["skipped_files"] == 2
    assert "at most 120 characters" in errors[f"f.zip/{long_name}/"]["error"]
    assert list(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["pliers"]
    assert GalleryImage.objects.filter(project=project).count() == 1
    # The API refuses the same names the same way.
    for name in ["   ", long_name]:
        assert client.post(f"/api/projects/{project.pk}/classes/", {"name": name}, format="json").status_code == 400


def test_folder_errors_under_a_common_root_name_the_folder(client_for):
    owner = make_user("gallery-admin2")
    project = make_project(owner)
    response = post_zip(client_for(owner), project, {
        "dataset/ /a.png": image_bytes(30, 30, (1, 2, 3)),
        "dataset/hammer/b.png": image_bytes(30, 30, (4, 5, 6)),
    })
    assert response.status_code == 201, response.content
    assert [e["name"] for e in response.json()["errors"]] == ["f.zip/dataset/ /"]
    assert response.json()["created_classes"] == ["hammer"]
