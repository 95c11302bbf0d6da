"""Instance classes (seed 001: "отвертка-1234" is one screwdriver of the type "отвертка"): the
hierarchy's rules through the API, exemplars of an instance, matching that names the instance,
exports that carry it, and colours for new classes."""
import json

import numpy as np
import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.annotations.models import Annotation, ReviewState, Source
from backend.core.masks import mask_geometry
from backend.exchange.formats import parser_for
from backend.exchange.formats.base import Record, SourceFile
from backend.gallery.models import GalleryEmbedding, GalleryImage
from backend.gallery.versions import current_version
from backend.jobs.rescoring import rescore_project
from backend.projects.colors import PALETTE, distinct_colors
from backend.projects.models import LabelClass

from .exchange.helpers import H, W, annotate, export, rect
from .factories import add_member, image_bytes, make_class, make_image, make_project, make_user, rect_rle

VERSION = "test-embedder-v1"


def url(project, suffix=""):
    return f"/api/projects/{project.pk}/classes/{suffix}"


@pytest.fixture
def tools(admin_user):
    project = make_project(admin_user)
    screwdriver = make_class(project, "отвертка")
    pliers = make_class(project, "pliers")
    return project, screwdriver, pliers


# --------------------------------------------------------------------------- the hierarchy


@pytest.mark.django_db
def test_create_an_instance_under_a_type_and_list_it(tools, admin_user, client_for):
    project, screwdriver, _ = tools
    api = client_for(admin_user)
    r = api.post(url(project), {"name": "отвертка-1234", "kind": "instance", "parent": screwdriver.pk}, format="json")
    assert r.status_code == 201, r.content
    assert (r.json()["kind"], r.json()["parent"]) == ("instance", screwdriver.pk)
    # Naming a parent alone is enough: it makes an instance.
    r = api.post(url(project), {"name": "отвертка-2345", "parent": screwdriver.pk}, format="json")
    assert r.status_code == 201 and r.json()["kind"] == "instance"
    listed = {c["name"]: c for c in api.get(url(project) + "?page_size=50").json()["results"]}
    assert listed["отвертка-2345"]["parent"] == screwdriver.pk and listed["отвертка"]["parent"] is None
    assert LabelClass.objects.get(name="отвертка-1234").parent_id == screwdriver.pk


@pytest.mark.django_db
@pytest.mark.parametrize("body, message", [
    ({"kind": "instance"}, "needs a parent"),
    ({"kind": "class", "parent": "TYPE"}, "Only an instance has a parent"),
    ({"parent": 999999}, "not found in this project"),
    ({"parent": "FOREIGN"}, "not found in this project"),
    ({"parent": "INSTANCE"}, "an instance cannot have instances"),
])
def test_invalid_hierarchies_are_clear_400s(tools, admin_user, client_for, body, message):
    project, screwdriver, _ = tools
    instance = make_class(project, "отвертка-1234", kind="instance", parent=screwdriver)
    foreign = make_class(make_project(admin_user, name="Other"), "foreign type")
    ids = {"TYPE": screwdriver.pk, "FOREIGN": foreign.pk, "INSTANCE": instance.pk}
    body = {k: ids.get(v, v) for k, v in body.items()}
    r = client_for(admin_user).post(url(project), {"name": "new one", **body}, format="json")
    assert r.status_code == 400 and message in r.json()["detail"], r.content
    assert not LabelClass.objects.filter(name="new one").exists()


@pytest.mark.django_db
def test_update_rules_with_version(tools, admin_user, client_for):
    project, screwdriver, pliers = tools
    api = client_for(admin_user)
    instance = make_class(project, "отвертка-1234", kind="instance", parent=screwdriver)

    r = api.patch(url(project, f"{pliers.pk}/"), {"parent": pliers.pk, "version": pliers.version}, format="json")
    assert r.status_code == 400 and "its own parent" in r.json()["detail"]
    r = api.patch(url(project, f"{screwdriver.pk}/"), {"parent": pliers.pk, "version": screwdriver.version}, format="json")
    assert r.status_code == 400 and "type with instances" in r.json()["detail"]
    r = api.patch(url(project, f"{instance.pk}/"), {"parent": pliers.pk}, format="json")
    assert r.status_code == 400 and "'version' is required" in r.json()["detail"]
    r = api.patch(url(project, f"{instance.pk}/"), {"parent": pliers.pk, "version": instance.version + 5}, format="json")
    assert r.status_code == 409

    before = project.__class__.objects.get(pk=project.pk).gallery_version
    r = api.patch(url(project, f"{instance.pk}/"), {"parent": pliers.pk, "version": instance.version}, format="json")
    assert r.status_code == 200 and r.json()["parent"] == pliers.pk
    # Moving an instance changes what the matcher sees: a new gallery version, re-scoring.
    assert project.__class__.objects.get(pk=project.pk).gallery_version == before + 1
    r = api.patch(url(project, f"{instance.pk}/"), {"kind": "class", "version": r.json()["version"]}, format="json")
    assert r.status_code == 200 and (r.json()["kind"], r.json()["parent"]) == ("class", None)

    nine = make_class(project, "отвертка-9", kind="instance", parent=screwdriver)
    r = api.delete(url(project, f"{screwdriver.pk}/"), {"version": screwdriver.version}, format="json")
    assert r.status_code == 400 and "has instances" in r.json()["detail"]
    # Clearing the parent alone makes a type again.
    r = api.patch(url(project, f"{nine.pk}/"), {"parent": None, "version": nine.version}, format="json")
    assert r.status_code == 200 and (r.json()["kind"], r.json()["parent"]) == ("class", None)


@pytest.mark.django_db
def test_only_admins_create_instances(tools, admin_user, client_for):
    project, screwdriver, _ = tools
    reviewer = make_user("rita")
    add_member(project, reviewer, "reviewer")
    r = client_for(reviewer).post(url(project), {"name": "x-1", "parent": screwdriver.pk}, format="json")
    assert r.status_code == 403


# --------------------------------------------------------------------------- exemplars and matching


def unit(*values) -> list[float]:
    v = np.asarray(values, np.float32)
    return (v / np.linalg.norm(v)).tolist()


def add_exemplar(label_class, vector, seed: int) -> GalleryImage:
    exemplar = GalleryImage.objects.create(
        project=label_class.project, label_class=label_class, file=f"gallery/{seed}.png", original_name=f"{seed}.png",
        content_type="image/png", sha256=f"sha-{seed}", width=8, height=8,
    )
    GalleryEmbedding.objects.create(gallery_image=exemplar, embedder_version=VERSION, vector=vector)
    return exemplar


def proposal(image, embedding) -> Annotation:
    rle = rect_rle(image.height, image.width, 4, 4, 20, 16)
    bbox, area = mask_geometry(rle)
    return Annotation.objects.create(
        project=image.project, image=image, mask_rle=rle, bbox=bbox, area=area, source=Source.MODEL,
        class_review=ReviewState.PENDING, mask_review=ReviewState.PENDING, embedding=embedding,
        embedder_version=VERSION, label_class=None, class_score=None, candidates=[],
    )


@pytest.mark.django_db
def test_exemplars_of_an_instance_go_through_the_gallery_api_and_versions(tools, admin_user, client_for):
    project, screwdriver, _ = tools
    instance = make_class(project, "отвертка-1234", kind="instance", parent=screwdriver)
    r = client_for(admin_user).post(
        f"/api/projects/{project.pk}/gallery/",
        {"label_class": instance.pk, "files": [SimpleUploadedFile("a.png", image_bytes(9, 9, (1, 2, 3)), "image/png")]},
        format="multipart",
    )
    assert r.status_code in (200, 201), r.content
    exemplar = GalleryImage.objects.get(label_class=instance)
    assert exemplar.pk in current_version(project.pk).exemplar_ids
    # A deactivated type takes its instances' exemplars out of the gallery with it.
    r = client_for(admin_user).patch(url(project, f"{screwdriver.pk}/"), {"active": False, "version": screwdriver.version}, format="json")
    assert r.status_code == 200
    assert exemplar.pk not in current_version(project.pk).exemplar_ids


@pytest.mark.django_db
def test_rescoring_labels_the_instance_and_keeps_both_levels_in_the_candidates(tools, admin_user):
    project, screwdriver, pliers = tools
    project.unknown_threshold, project.min_margin, project.unique_classes_per_image = 0.5, 0.05, True
    project.save()
    s1234 = make_class(project, "отвертка-1234", kind="instance", parent=screwdriver)
    s2345 = make_class(project, "отвертка-2345", kind="instance", parent=screwdriver)
    e1234 = add_exemplar(s1234, unit(1, 0.25, 0, 0), 1)
    add_exemplar(s2345, unit(1, -0.25, 0, 0), 2)
    add_exemplar(pliers, unit(0, 0, 1, 0), 3)
    image = make_image(project)
    # Both objects look most like 1234; one screwdriver cannot be in the photo twice.
    first, second = proposal(image, unit(1, 0.2, 0, 0)), proposal(image, unit(1, 0.1, 0, 0))
    between = proposal(make_image(project, seed=1), unit(1, 0, 0.05, 0))  # equally like both

    assert rescore_project(project_id=project.pk) == 3
    for a in (first, second, between):
        a.refresh_from_db()
    assert (first.label_class_id, second.label_class_id) == (s1234.pk, s2345.pk)
    assert between.label_class_id == screwdriver.pk  # the type is sure, the instance is not
    head = first.candidates[:3]
    assert [(c["class_id"], c["kind"], c["parent_id"]) for c in head] == [
        (screwdriver.pk, "class", None), (s1234.pk, "instance", screwdriver.pk), (s2345.pk, "instance", screwdriver.pk),
    ]
    assert head[0]["exemplar_id"] == e1234.pk  # the type's best exemplar is its instance's
    assert first.candidates[3]["class_id"] == pliers.pk


# --------------------------------------------------------------------------- exports


@pytest.fixture
def exported_instance(admin_user):
    project = make_project(admin_user, name="Src")
    screwdriver = make_class(project, "отвертка")
    instance = make_class(project, "отвертка-1234", kind="instance", parent=screwdriver)
    image = make_image(project, width=W, height=H, seed=1)
    annotate(image, instance, rect(2, 20, 3, 25))
    annotate(image, screwdriver, rect(30, 40, 30, 50))
    return project, screwdriver, instance


def parse(fmt: str, files: dict[str, bytes]) -> list[Record]:
    records = list(parser_for(fmt).parse([SourceFile(name, data) for name, data in files.items()]))
    assert all(isinstance(r, Record) for r in records), records
    return records


@pytest.mark.django_db
def test_coco_category_is_the_type_and_the_instance_an_attribute(exported_instance, admin_user):
    project, screwdriver, instance = exported_instance
    _, zf = export(project, admin_user, "coco")
    doc = json.loads(zf.read("annotations/instances.json"))
    assert doc["categories"] == [{"id": screwdriver.pk, "name": "отвертка", "supercategory": ""}]
    anns = sorted(doc["annotations"], key=lambda a: a["id"])
    assert [a["category_id"] for a in anns] == [screwdriver.pk, screwdriver.pk]
    assert anns[0]["attributes"] == {"instance_id": instance.pk, "instance": "отвертка-1234"}
    assert "attributes" not in anns[1]
    records = parse("coco", {"annotations/instances.json": zf.read("annotations/instances.json")})
    assert sorted((r.class_name, r.instance_name or "") for r in records) == [("отвертка", ""), ("отвертка", "отвертка-1234")]


@pytest.mark.django_db
def test_labelme_native_yolo_labelstudio_carry_the_type_and_the_instance(exported_instance, admin_user):
    project, screwdriver, instance = exported_instance
    _, zf = export(project, admin_user, "labelme")
    name = next(n for n in zf.namelist() if n.endswith(".json"))
    doc = json.loads(zf.read(name))
    assert {s["label"] for s in doc["shapes"]} == {"отвертка"}
    assert [s.get("attributes") for s in doc["shapes"]].count({"instance_id": instance.pk, "instance": "отвертка-1234"}) >= 1
    assert sorted(r.instance_name or "" for r in parse("labelme", {name: zf.read(name)})) == ["", "отвертка-1234"]

    _, zf = export(project, admin_user, "native")
    detections = json.loads(zf.read("predictions.json"))[0]["detections"]
    assert [d["class"] for d in detections] == ["отвертка", "отвертка"]
    assert (detections[0]["instance_id"], detections[0]["instance"]) == (instance.pk, "отвертка-1234")
    assert "instance" not in detections[1]
    assert [r.instance_name for r in parse("native", {"predictions.json": zf.read("predictions.json")})] == ["отвертка-1234", None]

    _, zf = export(project, admin_user, "yolo")
    assert yaml.safe_load(zf.read("data.yaml"))["names"] == {0: "отвертка"}
    label_file = next(n for n in zf.namelist() if n.startswith("labels/"))
    assert {line.split()[0] for line in zf.read(label_file).decode().splitlines()} == {"0"}

    # Label Studio: the label is the type, the instance an extra key of its region (a round trip
    # turned it into its type).
    _, zf = export(project, admin_user, "labelstudio")
    [task] = json.loads(zf.read("tasks.json"))
    regions = task["annotations"][0]["result"]
    assert [r["value"]["brushlabels"] for r in regions] == [["отвертка"], ["отвертка"]]
    assert [r.get("attributes") for r in regions] == [{"instance_id": instance.pk, "instance": "отвертка-1234"}, None]
    assert [r.instance_name for r in parse("labelstudio", {"tasks.json": zf.read("tasks.json")})] == ["отвертка-1234", None]


# --------------------------------------------------------------------------- colours


@pytest.mark.django_db
def test_distinct_colors_skip_the_ones_in_use(tools, admin_user, client_for):
    project, screwdriver, pliers = tools  # both on the model default, PALETTE[0]
    LabelClass.objects.filter(pk=pliers.pk).update(color=PALETTE[2].upper())
    assert distinct_colors(project.pk, 3) == [PALETTE[1], PALETTE[3], PALETTE[4]]
    many = distinct_colors(project.pk, 40)
    assert len(set(many)) == 40 and not {PALETTE[0], PALETTE[2]} & set(many)
    # A class created without a colour gets an unused one.
    r = client_for(admin_user).post(url(project), {"name": "hammer"}, format="json")
    assert r.status_code == 201 and r.json()["color"] == PALETTE[1]


@pytest.mark.django_db
def test_an_exported_instance_imports_back_as_itself_and_an_unknown_one_as_its_type(exported_instance, admin_user):
    from .exchange.helpers import json_upload, run_import

    project, screwdriver, instance = exported_instance
    _, zf = export(project, admin_user, "coco")
    doc = json.loads(zf.read("annotations/instances.json"))
    dst = make_project(admin_user, name="Dst")
    dst_type = make_class(dst, "отвертка")
    image = make_image(dst, width=W, height=H, seed=1)
    doc["images"][0]["file_name"] = image.original_name
    job = run_import(dst, admin_user, "coco", json_upload(doc))
    assert job.status == "done", job.errors
    # Dst has no class "отвертка-1234" yet: both objects land on the type.
    assert sorted(Annotation.objects.filter(project=dst).values_list("label_class_id", flat=True)) == [dst_type.pk] * 2

    dst_instance = make_class(dst, "отвертка-1234", kind="instance", parent=dst_type)
    Annotation.objects.filter(project=dst).delete()
    job = run_import(dst, admin_user, "coco", json_upload(doc))
    assert job.status == "done", job.errors
    assert sorted(Annotation.objects.filter(project=dst).values_list("label_class_id", flat=True)) == sorted([dst_type.pk, dst_instance.pk])
