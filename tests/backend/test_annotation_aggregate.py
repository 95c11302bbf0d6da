"""The annotation aggregate: one writer (annotations.changes.apply_changes) for every change, each
change recorded once with its source; restore as an audited change; the image status owned by
the annotations app; no import cycle between images and annotations."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.db.models import ProtectedError, RestrictedError

from backend.annotations.models import Annotation, AnnotationEvent
from backend.annotations.status import derive
from backend.images.models import Image
from backend.jobs import services as job_services
from backend.jobs.rescoring import rescore_project
from backend.projects.models import LabelClass, Project

from .factories import add_member, make_class, make_image, make_model_annotation, make_project, make_user, rect_rle

pytestmark = pytest.mark.django_db
BACKEND = Path(__file__).resolve().parents[2] / "backend"
WRITES = {"create", "bulk_create", "bulk_update", "update", "delete", "get_or_create", "update_or_create", "save"}


def url(project, *parts):
    return "/api/projects/{}/{}/".format(project.pk, "/".join(str(p) for p in parts))


# --------------------------------------------------------------------------- the one writer


def _writes_outside_annotations() -> list[str]:
    """Calls like `Annotation.objects.<write>(...)`, `Annotation(...)`, `AnnotationEvent(...)`
    anywhere in backend/ but the annotations app (its migrations aside)."""
    found = []
    for path in BACKEND.rglob("*.py"):
        rel = path.relative_to(BACKEND)
        if rel.parts[0] == "annotations" or "migrations" in rel.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in {"Annotation", "AnnotationEvent"}:
                found.append(f"{rel}:{node.lineno} {func.id}(...)")
            if isinstance(func, ast.Attribute) and func.attr in WRITES:
                text = ast.unparse(func.value)
                if text.split(".")[0] in {"Annotation", "AnnotationEvent"} or ".annotations." in f".{text}.":
                    found.append(f"{rel}:{node.lineno} {text}.{func.attr}(...)")
    return found


def test_no_annotation_or_event_is_written_outside_the_annotations_app():
    assert _writes_outside_annotations() == []


def test_images_never_import_annotations():
    """The status of an image is annotation logic and lives with annotations: images is below it."""
    offenders = []
    for path in (BACKEND / "images").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n.startswith("backend.annotations")]
    assert offenders == []


# --------------------------------------------------------------------------- sources


@pytest.fixture
def setup(client_for):
    owner = make_user("lead")
    project = make_project(owner)
    image = make_image(project)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    return client_for(owner), owner, project, image, hammer, wrench


def _sources(**filters) -> list[tuple[str, str]]:
    return list(AnnotationEvent.objects.filter(**filters).order_by("id").values_list("action", "source"))


def test_a_persons_changes_are_recorded_as_human_with_the_actor(setup):
    client, owner, project, image, hammer, wrench = setup
    created = client.post(url(project, "annotations"), {"image": image.pk, "label_class": hammer.pk,
                                                       "mask_rle": rect_rle(48, 64, 2, 2, 10, 10)}, format="json").json()
    client.patch(url(project, "annotations", created["id"]), {"version": 1, "label_class": wrench.pk}, format="json")
    seen = [[a.pk, a.version] for a in Annotation.objects.filter(image=image)]
    client.post(url(project, "images", image.pk, "accept-all"), {"seen": seen}, format="json")
    assert _sources(annotation_id=created["id"]) == [("created", "human"), ("updated", "human"), ("reviewed", "human")]
    assert set(AnnotationEvent.objects.filter(annotation_id=created["id"]).values_list("actor", flat=True)) == {owner.pk}
    # The live trail carries the source too.
    trail = client.get(url(project, "images", image.pk, "events")).json()["results"]
    assert {e["source"] for e in trail} == {"human"}


def test_a_jobs_result_replaces_untouched_proposals_as_model_changes(setup):
    client, owner, project, image, hammer, wrench = setup
    stale = make_model_annotation(image, hammer)  # an earlier job's untouched proposal
    job = job_services.start_job(project=project, user=owner, images=[image.pk])
    detection = {"label_class": wrench, "mask_rle": rect_rle(48, 64, 30, 5, 50, 30), "bbox": [30.0, 5.0, 20.0, 25.0],
                 "area": 500, "det_score": 0.9, "mask_score": 0.8, "class_score": 0.7, "class_margin": 0.2,
                 "candidates": [], "class_review": "pending", "mask_review": "pending"}
    assert job_services.write_image_result(job_id=job.pk, image_id=image.pk, detections=[detection], stage_ms={}) == 1
    new = Annotation.objects.get(image=image)
    assert new.job_id == job.pk and new.label_class == wrench
    assert _sources(annotation_id=stale.pk) == [("deleted", "model")]
    assert _sources(annotation_id=new.pk) == [("created", "model")]
    assert AnnotationEvent.objects.get(annotation_id=new.pk).actor is None
    image.refresh_from_db()
    assert image.status == "prelabeled"


def test_a_job_that_finds_nothing_still_moves_the_image_on_from_new(setup):
    client, owner, project, image, hammer, wrench = setup
    job = job_services.start_job(project=project, user=owner, images=[image.pk])
    version = Image.objects.get(pk=image.pk).version
    assert job_services.write_image_result(job_id=job.pk, image_id=image.pk, detections=[], stage_ms={}) == 0
    image.refresh_from_db()
    assert (image.status, image.version) == ("prelabeled", version + 1)
    assert not AnnotationEvent.objects.filter(image=image).exists()


def test_rescoring_is_recorded_as_rescore_with_the_gallery_version(admin_user):
    from .test_gallery_versions import add_exemplar, model_annotation, unit

    project = make_project(admin_user, unknown_threshold=0.0)
    wrench = make_class(project, "wrench")
    add_exemplar(wrench, unit(0, 1, 0, 0), 1)
    proposal = model_annotation(make_image(project))
    assert rescore_project(project_id=project.pk) == 1
    event = AnnotationEvent.objects.filter(annotation_id=proposal.pk).get()
    assert (event.action, event.source, event.actor) == ("rescored", "rescore", None)
    assert event.after["label_class"] == wrench.pk and "gallery_version" in event.after
    proposal.refresh_from_db()
    assert proposal.updated_by is None  # re-scoring is not a person's decision


def test_an_import_is_recorded_as_import(setup):
    from .exchange.helpers import json_upload, run_import

    client, owner, project, image, hammer, wrench = setup
    coco = {
        "images": [{"id": 1, "file_name": image.original_name, "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "hammer"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 8, 8], "area": 64, "iscrowd": 0,
                         "segmentation": [[2, 2, 10, 2, 10, 10, 2, 10]]}],
    }
    job = run_import(project, owner, "coco", json_upload(coco))
    assert job.status == "done", job.errors
    assert _sources(project=project) == [("created", "import")]


# --------------------------------------------------------------------------- restore and history


def test_restore_brings_back_class_and_mask_as_a_new_audited_change(setup, client_for):
    client, owner, project, image, hammer, wrench = setup
    first_mask = rect_rle(48, 64, 2, 2, 10, 10)
    created = client.post(url(project, "annotations"), {"image": image.pk, "label_class": hammer.pk, "mask_rle": first_mask},
                          format="json").json()
    aid = created["id"]
    client.patch(url(project, "annotations", aid), {"version": 1, "label_class": wrench.pk,
                                                     "mask_rle": rect_rle(48, 64, 20, 20, 40, 40)}, format="json")
    history = client.get(url(project, "annotations", aid, "events")).json()["results"]
    assert [e["action"] for e in history] == ["created", "updated"]

    stale = client.post(url(project, "annotations", aid, "restore"), {"version": 1, "event": history[0]["id"]}, format="json")
    assert stale.status_code == 409
    restored = client.post(url(project, "annotations", aid, "restore"), {"version": 2, "event": history[0]["id"]}, format="json")
    assert restored.status_code == 200, restored.content
    body = restored.json()
    assert body["label_class"] == hammer.pk and body["mask_rle"]["counts"] == first_mask["counts"]
    assert body["area"] == 64 and body["version"] == 3
    # The trail grows; nothing in it is rewritten.
    assert _sources(annotation_id=aid) == [("created", "human"), ("updated", "human"), ("restored", "human")]
    assert client.get(url(project, "annotations", aid, "events")).json()["results"][0] == history[0]

    again = client.post(url(project, "annotations", aid, "restore"), {"version": 3, "event": history[0]["id"]}, format="json")
    assert again.status_code == 400 and "nothing to restore" in again.json()["detail"]
    foreign = make_model_annotation(make_image(project, seed=5), hammer)
    other = client.post(url(project, "annotations", foreign.pk, "restore"), {"version": 1, "event": history[0]["id"]}, format="json")
    assert other.status_code == 404


def test_restoring_a_version_whose_class_is_now_inactive_is_refused(setup):
    """Every other write refuses an inactive class; restore put one back (200)."""
    client, owner, project, image, hammer, wrench = setup
    proposal = make_model_annotation(image, hammer)
    client.patch(url(project, "annotations", proposal.pk), {"version": 1, "label_class": wrench.pk}, format="json")
    to_wrench = AnnotationEvent.objects.get(annotation_id=proposal.pk)
    client.patch(url(project, "annotations", proposal.pk), {"version": 2, "label_class": hammer.pk}, format="json")
    LabelClass.objects.filter(pk=wrench.pk).update(active=False)
    response = client.post(url(project, "annotations", proposal.pk, "restore"), {"version": 3, "event": to_wrench.pk},
                           format="json")
    assert response.status_code == 400 and "'wrench' is inactive" in response.json()["detail"], response.content
    proposal.refresh_from_db()
    assert (proposal.label_class_id, proposal.version) == (hammer.pk, 3)


def test_an_annotators_restore_waits_for_review(setup, client_for):
    client, owner, project, image, hammer, wrench = setup
    annotator = make_user("ann")
    add_member(project, annotator, "annotator")
    proposal = make_model_annotation(image, hammer)
    client.patch(url(project, "annotations", proposal.pk), {"version": 1, "label_class": wrench.pk}, format="json")
    first = AnnotationEvent.objects.filter(annotation_id=proposal.pk).first()  # the lead's edit to wrench
    client.patch(url(project, "annotations", proposal.pk), {"version": 2, "label_class": hammer.pk}, format="json")
    restored = client_for(annotator).post(url(project, "annotations", proposal.pk, "restore"),
                                          {"version": 3, "event": first.pk}, format="json")
    assert restored.status_code == 200, restored.content
    assert restored.json()["label_class"] == wrench.pk and restored.json()["class_review"] == "pending"


def test_history_of_a_deleted_object_stays_readable(setup):
    client, owner, project, image, hammer, wrench = setup
    proposal = make_model_annotation(image, hammer)
    client.delete(url(project, "annotations", proposal.pk) + "?version=1")
    history = client.get(url(project, "annotations", proposal.pk, "events")).json()["results"]
    assert [e["action"] for e in history] == ["deleted"] and history[0]["before"]["label_class"] == hammer.pk
    per_object = client.get(url(project, "images", image.pk, "events") + f"?annotation={proposal.pk}").json()["results"]
    assert per_object == history


def test_a_deleted_object_is_restored_under_its_own_id(setup):
    """restore/ answered 404 "Annotation not found" for a deleted object although its history
    held every state (black-box api6 F13): only the workspace's undo re-created it."""
    client, owner, project, image, hammer, wrench = setup
    proposal = make_model_annotation(image, hammer)
    client.patch(url(project, "annotations", proposal.pk), {"version": 1, "label_class": wrench.pk}, format="json")
    assert client.delete(url(project, "annotations", proposal.pk) + "?version=2").status_code == 204
    history = client.get(url(project, "annotations", proposal.pk, "events")).json()["results"]
    deleted = next(e for e in history if e["action"] == "deleted")
    stale = client.post(url(project, "annotations", proposal.pk, "restore"), {"version": 1, "event": deleted["id"]}, format="json")
    assert stale.status_code == 409 and "it is now at version 3" in stale.json()["detail"]
    restored = client.post(url(project, "annotations", proposal.pk, "restore"), {"version": 3, "event": deleted["id"]},
                           format="json")
    assert restored.status_code == 200, restored.content
    body = restored.json()
    assert (body["id"], body["label_class"], body["version"], body["class_review"]) == (proposal.pk, wrench.pk, 4, "accepted")
    assert body["mask_rle"] == deleted["before"]["mask_rle"]
    assert _sources(annotation_id=proposal.pk)[-1] == ("restored", "human")
    again = client.post(url(project, "annotations", proposal.pk, "restore"), {"version": 3, "event": deleted["id"]}, format="json")
    assert again.status_code == 409  # it is live again at version 4
    never = client.post(url(project, "annotations", 999999, "restore"), {"version": 1, "event": deleted["id"]}, format="json")
    assert never.status_code == 404


def test_a_restore_by_someone_who_read_the_object_before_its_deletion_is_a_conflict(setup, client_for):
    """Black-box round 13: a reviewer who had read an object at version 2 sent a restore (to undo an
    edit) after an admin deleted it at version 2; the restore passed and brought back what the admin
    had deleted, with no conflict. The deletion moves the version on: the stale restore is a 409."""
    client, owner, project, image, hammer, wrench = setup
    reviewer = make_user("rev")
    add_member(project, reviewer, "reviewer")
    proposal = make_model_annotation(image, hammer)
    client.patch(url(project, "annotations", proposal.pk), {"version": 1, "label_class": wrench.pk}, format="json")
    edited = AnnotationEvent.objects.filter(annotation_id=proposal.pk, action="updated").first()
    assert client.delete(url(project, "annotations", proposal.pk) + "?version=2").status_code == 204
    stale = client_for(reviewer).post(url(project, "annotations", proposal.pk, "restore"),
                                      {"version": 2, "event": edited.pk}, format="json")
    assert stale.status_code == 409, stale.content
    body = stale.json()
    assert body["current_version"] == 3 and body["deleted"] is True and f"deleted by {owner.username}" in body["detail"]
    assert not Annotation.objects.filter(pk=proposal.pk).exists()
    assert [e.action for e in AnnotationEvent.objects.filter(annotation_id=proposal.pk)] == ["updated", "deleted"]


def test_a_restored_model_proposal_keeps_its_source_scores_and_job(setup):
    """Undo of a delete brought a model's proposal back as a person's drawing: source "human",
    no detection or mask score, no job (round 11, U4); its candidates came back, the rest not."""
    client, owner, project, image, hammer, wrench = setup
    proposal = make_model_annotation(image, hammer, det_score=0.91, det_phrase="hammer", mask_score=0.77,
                                     class_margin=0.3, job_id=41)
    assert client.delete(url(project, "annotations", proposal.pk) + "?version=1").status_code == 204
    deleted = next(e for e in client.get(url(project, "annotations", proposal.pk, "events")).json()["results"]
                   if e["action"] == "deleted")
    restored = client.post(url(project, "annotations", proposal.pk, "restore"), {"version": 2, "event": deleted["id"]},
                           format="json")
    assert restored.status_code == 200, restored.content
    body = restored.json()
    assert (body["source"], body["det_score"], body["mask_score"], body["class_margin"], body["job_id"]) == (
        "model", 0.91, 0.77, 0.3, 41)
    assert Annotation.objects.get(pk=proposal.pk).det_phrase == "hammer"


def test_viewer_cannot_restore(setup, client_for):
    client, owner, project, image, hammer, wrench = setup
    viewer = make_user("view")
    add_member(project, viewer, "viewer")
    proposal = make_model_annotation(image, hammer)
    client.patch(url(project, "annotations", proposal.pk), {"version": 1, "label_class": wrench.pk}, format="json")
    event = AnnotationEvent.objects.filter(annotation_id=proposal.pk).first()
    response = client_for(viewer).post(url(project, "annotations", proposal.pk, "restore"), {"version": 2, "event": event.pk}, format="json")
    assert response.status_code == 403


# --------------------------------------------------------------------------- deletion and status


def test_deleting_a_project_with_annotations_cascades_but_a_used_class_stays_protected(setup):
    client, owner, project, image, hammer, wrench = setup
    make_model_annotation(image, hammer)
    with pytest.raises((ProtectedError, RestrictedError)):
        LabelClass.objects.filter(pk=hammer.pk).delete()
    response = client.delete(f"/api/projects/{project.pk}/?version={project.version}")
    assert response.status_code == 204, response.content
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not Annotation.objects.filter(project_id=project.pk).exists()
    assert not AnnotationEvent.objects.filter(project_id=project.pk).exists()


@pytest.mark.parametrize("current,total,settled,started,examined,expected", [
    ("new", 0, 0, 0, False, "new"),
    ("new", 0, 0, 0, True, "prelabeled"),
    ("done", 0, 0, 0, True, "done"),
    ("new", 3, 0, 0, False, "prelabeled"),
    ("prelabeled", 3, 1, 1, False, "in_review"),
    ("in_review", 3, 3, 3, False, "done"),
    ("done", 3, 2, 2, False, "in_review"),
])
def test_status_is_derived_from_the_annotations(current, total, settled, started, examined, expected):
    assert derive(current, total=total, settled=settled, started=started, examined=examined) == expected
