"""Who approves and who may write: only reviewers approve, and claims are enforced by the server.

Through the API on the real database; the export check uses the export's own selector."""
from datetime import timedelta

import pytest
from django.utils import timezone

from backend.annotations.models import Annotation, AnnotationEvent
from backend.exchange.selectors import export_annotations
from backend.images.models import Image

from .factories import add_member, make_class, make_image, make_model_annotation, make_project, make_user, rect_rle

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(client_for):
    admin = make_user("ada")
    project = make_project(admin)
    people = {"admin": admin}
    for name, role in [("ann", "annotator"), ("rita", "reviewer"), ("bob", "reviewer")]:
        people[name] = make_user(name)
        add_member(project, people[name], role)
    image = make_image(project)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    clients = {name: client_for(user) for name, user in people.items()}
    return project, image, hammer, wrench, clients


def url(project, *parts, query=""):
    return "/api/projects/{}/{}/{}".format(project.pk, "/".join(str(p) for p in parts), query)


def approved_ids(project) -> set[int]:
    return set(export_annotations(project, {}).values_list("pk", flat=True))


def accept(client, project, annotation_id, version, target="both"):
    response = client.post(url(project, "annotations", annotation_id, "review"), {"version": version, "target": target, "decision": "accepted"}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def state(annotation_id):
    a = Annotation.objects.get(pk=annotation_id)
    return a.class_review, a.mask_review


# ---------------------------------------------------------------- approval only by review

def test_annotator_edit_is_pending_review_and_leaves_the_approved_export(team):
    project, image, hammer, wrench, c = team
    ann = make_model_annotation(image, hammer)
    accept(c["rita"], project, ann.pk, 1)
    assert approved_ids(project) == {ann.pk}

    edited = c["ann"].patch(url(project, "annotations", ann.pk), {"version": 2, "label_class": wrench.pk}, format="json")
    assert edited.status_code == 200, edited.content
    assert (edited.json()["class_review"], edited.json()["mask_review"]) == ("pending", "accepted")
    assert approved_ids(project) == set(), "an annotator's class reached the approved export unreviewed"
    event = AnnotationEvent.objects.filter(annotation_id=ann.pk).last()
    assert event.action == "updated" and event.actor.username == "ann"
    assert event.before["class_review"] == "accepted" and event.after["class_review"] == "pending"

    masked = c["ann"].patch(url(project, "annotations", ann.pk), {"version": 3, "polygons": [[0, 0, 10, 0, 10, 10, 0, 10]]}, format="json")
    assert masked.status_code == 200 and masked.json()["mask_review"] == "pending"
    assert approved_ids(project) == set()
    image.refresh_from_db()
    assert image.status == "in_review"

    # The annotator can't approve it themselves; only a review approves it again.
    events = AnnotationEvent.objects.count()
    review = c["ann"].post(url(project, "annotations", ann.pk, "review"), {"version": 4, "target": "both", "decision": "accepted"}, format="json")
    accept_all = c["ann"].post(url(project, "images", image.pk, "accept-all"), {}, format="json")
    assert review.status_code == 403 and accept_all.status_code == 403
    assert state(ann.pk) == ("pending", "pending") and AnnotationEvent.objects.count() == events
    accept(c["rita"], project, ann.pk, 4)
    assert approved_ids(project) == {ann.pk}

    # A new object drawn by an annotator starts pending too.
    mask = rect_rle(image.height, image.width, 2, 3, 12, 9)
    created = c["ann"].post(url(project, "annotations"), {"image": image.pk, "label_class": hammer.pk, "mask_rle": mask}, format="json")
    assert created.status_code == 201 and (created.json()["class_review"], created.json()["mask_review"]) == ("pending", "pending")
    assert approved_ids(project) == {ann.pk}


def test_reviewer_edits_are_decisions_and_an_admin_force_accept_is_audited(team):
    project, image, hammer, wrench, c = team
    # A reviewer's (or admin's) edit is their decision: the changed part is accepted.
    theirs = make_model_annotation(image, hammer)
    edited = c["rita"].patch(url(project, "annotations", theirs.pk), {"version": 1, "label_class": wrench.pk}, format="json")
    assert edited.status_code == 200 and (edited.json()["class_review"], edited.json()["mask_review"]) == ("accepted", "pending")
    assert approved_ids(project) == set(), "the mask still needs its review"

    # An annotator's edit waits; the admin accepting it is a review, with its event.
    ann = make_model_annotation(image, hammer)
    assert c["ann"].patch(url(project, "annotations", ann.pk), {"version": 1, "label_class": wrench.pk}, format="json").status_code == 200
    assert state(ann.pk) == ("pending", "pending")
    accept(c["admin"], project, ann.pk, 2)
    event = AnnotationEvent.objects.filter(annotation_id=ann.pk).last()
    assert event.action == "reviewed" and event.actor.username == "ada"
    assert (event.before["class_review"], event.after["class_review"]) == ("pending", "accepted")
    assert approved_ids(project) == {ann.pk}
    accept(c["rita"], project, theirs.pk, 2, target="mask")
    assert approved_ids(project) == {ann.pk, theirs.pk}


# ---------------------------------------------------------------- claims enforced by the server

def claim(client, project, image):
    response = client.post(url(project, "images", image.pk, "claim"))
    assert response.status_code == 200, response.content


def world(project):
    return list(Annotation.objects.filter(project=project).order_by("id").values()), AnnotationEvent.objects.filter(project=project).count()


def test_writes_to_an_image_someone_else_holds_are_409_naming_the_holder(team):
    project, image, hammer, wrench, c = team
    ann = make_model_annotation(image, hammer)
    claim(c["bob"], project, image)
    before = world(project)
    attempts = [
        ("ann", "post", url(project, "annotations"), {"image": image.pk, "label_class": hammer.pk, "polygons": [[1, 1, 8, 1, 8, 8]]}),
        ("ann", "patch", url(project, "annotations", ann.pk), {"version": 1, "label_class": wrench.pk}),
        ("ann", "delete", url(project, "annotations", ann.pk, query="?version=1"), None),
        ("rita", "post", url(project, "annotations", ann.pk, "review"), {"version": 1, "target": "both", "decision": "accepted"}),
        ("rita", "post", url(project, "images", image.pk, "accept-all"), {"seen": [[ann.pk, 1]]}),
        ("admin", "patch", url(project, "annotations", ann.pk), {"version": 1, "label_class": wrench.pk}),  # no ?force=1
    ]
    for who, method, path, body in attempts:
        response = getattr(c[who], method)(path, body, format="json") if body is not None else getattr(c[who], method)(path)
        assert response.status_code == 409, (who, method, path, response.content)
        data = response.json()
        assert data["code"] == "claimed" and data["claimed_by"] == "bob" and data["expires_at"], data
        assert "held by bob" in data["detail"] and "not saved" in data["detail"], data
    assert "force=1" in data["detail"], "an admin is told how to override"
    assert world(project) == before, "a refused write changed something"

    # The holder's own writes pass.
    assert c["bob"].patch(url(project, "annotations", ann.pk), {"version": 1, "mask_rle": rect_rle(image.height, image.width, 1, 1, 9, 9)}, format="json").status_code == 200
    # An idle claim expires and blocks nobody.
    Image.objects.filter(pk=image.pk).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    response = c["ann"].patch(url(project, "annotations", ann.pk), {"version": 2, "label_class": wrench.pk}, format="json")
    assert response.status_code == 200, response.content
    assert c["rita"].post(url(project, "images", image.pk, "accept-all"), {"seen": [[ann.pk, 3]]}, format="json").status_code == 200
    assert state(ann.pk) == ("accepted", "accepted")


def test_admin_overrides_a_claim_with_force_and_it_is_audited(team):
    project, image, hammer, wrench, c = team
    ann = make_model_annotation(image, hammer)
    other = make_model_annotation(image, wrench)
    claim(c["bob"], project, image)

    refused = c["rita"].patch(url(project, "annotations", ann.pk, query="?force=1"), {"version": 1, "label_class": wrench.pk}, format="json")
    assert refused.status_code == 409 and refused.json()["claimed_by"] == "bob", "only a project admin may force"

    forced = c["admin"].patch(url(project, "annotations", ann.pk, query="?force=1"), {"version": 1, "label_class": wrench.pk}, format="json")
    assert forced.status_code == 200, forced.content
    event = AnnotationEvent.objects.filter(annotation_id=ann.pk).last()
    assert event.actor.username == "ada" and event.after["claim_override"]["held_by"] == "bob"

    gone = c["admin"].delete(url(project, "annotations", other.pk, query="?version=1&force=1"))
    assert gone.status_code == 204
    event = AnnotationEvent.objects.filter(annotation_id=other.pk).last()
    assert event.action == "deleted" and event.after is None and event.before["claim_override"]["held_by"] == "bob"

    accepted = c["admin"].post(url(project, "images", image.pk, "accept-all", query="?force=1"), {"seen": [[ann.pk, 2]]},
                               format="json")
    assert accepted.status_code == 200 and len(accepted.json()) == 1
    event = AnnotationEvent.objects.filter(annotation_id=ann.pk).last()
    assert event.action == "reviewed" and event.after["claim_override"]["held_by"] == "bob"
    # The claim itself stays with bob: forcing a write is not taking the image over.
    assert Image.objects.get(pk=image.pk).claimed_by.username == "bob"


def test_claiming_another_image_releases_the_first(team):
    project, image, hammer, wrench, c = team
    second = make_image(project, seed=3)
    ann = make_model_annotation(image, hammer)
    claim(c["bob"], project, image)
    claim(c["bob"], project, second)  # bob moved on
    assert Image.objects.get(pk=image.pk).claimed_by is None
    assert Image.objects.get(pk=second.pk).claimed_by.username == "bob"
    assert c["ann"].patch(url(project, "annotations", ann.pk), {"version": 1, "label_class": wrench.pk}, format="json").status_code == 200
    claim(c["rita"], project, image)


def test_a_gallery_rescore_keeps_the_class_an_annotator_chose(team):
    """The annotator's class now waits for review like a model's proposal; re-scoring after a
    gallery change must still leave it alone (a person chose it)."""
    from backend.gallery.models import GalleryEmbedding, GalleryImage
    from backend.jobs.rescoring import rescore_project

    project, image, hammer, wrench, c = team
    for seed, (label_class, vector) in enumerate([(hammer, [1.0, 0.0, 0.0]), (wrench, [0.0, 1.0, 0.0])]):
        exemplar = GalleryImage.objects.create(
            project=project, label_class=label_class, file=f"gallery/{seed}.png", original_name=f"{seed}.png",
            content_type="image/png", sha256=f"sha-{seed}", width=8, height=8,
        )
        GalleryEmbedding.objects.create(gallery_image=exemplar, embedder_version="emb-v1", vector=vector)
    # The crop looks like a hammer; the annotator knows it is a wrench.
    ann = make_model_annotation(image, hammer, embedding=[0.9, 0.1, 0.0], embedder_version="emb-v1")
    assert c["ann"].patch(url(project, "annotations", ann.pk), {"version": 1, "label_class": wrench.pk}, format="json").status_code == 200
    rescore_project(project_id=project.pk)
    ann.refresh_from_db()
    assert (ann.label_class_id, ann.class_review, ann.version) == (wrench.pk, "pending", 2)
