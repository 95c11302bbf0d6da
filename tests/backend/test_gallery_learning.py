"""A gallery that learns (issue 15): a reviewer's class fix adds the object's crop as a learned
exemplar of the new class and a hard negative of the old one, bumps the gallery version and
re-scores pending objects, so the next match changes. Real database, real HTTP, real worker."""
import io
import time

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from backend.annotations.changes import Create, apply_changes
from backend.annotations.models import Annotation, AnnotationEvent, ChangeSource, ReviewState, Source
from backend.core.masks import mask_geometry
from backend.gallery import learning
from backend.gallery.models import ExemplarSource, GalleryEmbedding, GalleryImage, GalleryVersion, HardNegative
from backend.projects.models import Project

from .factories import add_member, make_class, make_image, make_project, make_user, rect_rle

VERSION = "test-embedder-v1"


def unit(*values) -> list[float]:
    v = np.asarray(values, np.float32)
    return (v / np.linalg.norm(v)).tolist()


# Closer to A's exemplar (1,0,0,0) than to B's (0,1,0,0): the model calls it A; it is a B.
WRONG = unit(1, 0.8, 0.5, 0)
LOOKALIKE = unit(1, 0.8, 0.45, 0)  # another photo of the same tool
CLEAN_A = unit(1, 0.05, 0, 0.05)


def add_exemplar(label_class, vector, seed: int) -> GalleryImage:
    exemplar = GalleryImage.objects.create(
        project=label_class.project, label_class=label_class, file=f"gallery/{seed}.png", original_name=f"{seed}.png",
        content_type="image/png", sha256=f"sha-{seed}", width=8, height=8,
    )
    GalleryEmbedding.objects.create(gallery_image=exemplar, embedder_version=VERSION, vector=vector)
    return exemplar


def proposal(image, label_class, vector) -> Annotation:
    """A pending model object as a job writes it (through the one writer, with its created event)."""
    rle = rect_rle(image.height, image.width, 6, 5, 30, 20)
    bbox, area = mask_geometry(rle)
    fields = {"label_class": label_class, "mask_rle": rle, "bbox": bbox, "area": area, "source": Source.MODEL,
              "class_score": 0.7, "embedding": vector, "embedder_version": VERSION, "candidates": []}
    return apply_changes(project_id=image.project_id, changes=[Create(image.pk, fields)], actor=None,
                         source=ChangeSource.MODEL).created[0]


def setup_project(owner, *, learn: bool = True):
    project = make_project(owner, name=f"learn-{time.monotonic_ns()}", unknown_threshold=0.3,
                           unique_classes_per_image=False)
    if learn:  # off by default: a project opts in
        Project.objects.filter(pk=project.pk).update(learn_from_reviews=True)
    project.refresh_from_db()
    assert project.learn_from_reviews is learn
    a, b = make_class(project, "wrench"), make_class(project, "spanner")
    add_exemplar(a, unit(1, 0, 0, 0), time.monotonic_ns())
    add_exemplar(b, unit(0, 1, 0, 0), time.monotonic_ns())
    return project, a, b


def patch_class(client, annotation, class_id):
    annotation.refresh_from_db()
    return client.patch(f"/api/projects/{annotation.project_id}/annotations/{annotation.pk}/",
                        {"label_class": class_id, "version": annotation.version}, format="json")


def wait_for(predicate, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def learned(project):
    return GalleryImage.objects.filter(project=project, source=ExemplarSource.LEARNED)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_reviewers_fix_changes_the_next_match(celery_worker, client_for):
    from backend.gallery.tasks import learn_from_change

    stamp = time.monotonic_ns()
    admin, reviewer, annotator = make_user(f"adm{stamp}"), make_user(f"rev{stamp}"), make_user(f"ann{stamp}")
    project, wrench, spanner = setup_project(admin)
    off, off_wrench, off_spanner = setup_project(admin, learn=False)
    for p in (project, off):
        add_member(p, reviewer, "reviewer")
        add_member(p, annotator, "annotator")
    fixed = proposal(make_image(project, seed=1), wrench, WRONG)
    lookalike = proposal(make_image(project, seed=2), wrench, LOOKALIKE)
    clean = proposal(make_image(project, seed=3), wrench, CLEAN_A)
    annotated = proposal(make_image(project, seed=4), wrench, WRONG)
    off_fixed = proposal(make_image(off, seed=5), off_wrench, WRONG)
    project.refresh_from_db()
    start_version = project.gallery_version

    # Off by default, and an annotator's pending edit: nothing is learned.
    assert patch_class(client_for(reviewer), off_fixed, off_spanner.pk).status_code == 200
    assert patch_class(client_for(annotator), annotated, spanner.pk).status_code == 200
    annotated.refresh_from_db()
    assert annotated.class_review == ReviewState.PENDING

    # The reviewer's fix. The worker runs tasks in order, so once this one is learned the two
    # changes above have had their chance too.
    assert patch_class(client_for(reviewer), fixed, spanner.pk).status_code == 200
    wait_for(lambda: learned(project).exists(), "the learned exemplar")
    exemplar = learned(project).get()
    fixed.refresh_from_db()
    event = AnnotationEvent.objects.get(annotation_id=fixed.pk, after__version=fixed.version)
    assert (exemplar.label_class_id, exemplar.source_image_id, exemplar.source_annotation_id) == (
        spanner.pk, fixed.image_id, fixed.pk)
    assert exemplar.uploaded_by_id == reviewer.pk and exemplar.learned_event_id == event.pk
    with default_storage.open(exemplar.file.name, "rb") as fh, PILImage.open(io.BytesIO(fh.read())) as crop:
        assert crop.size == (24, 15) == (exemplar.width, exemplar.height)  # the object's box
    # No model pass: the object's stored crop embedding is the exemplar's vector.
    vector = GalleryEmbedding.objects.get(gallery_image=exemplar, embedder_version=VERSION).vector
    assert np.allclose(vector, WRONG, atol=1e-6)
    negative = HardNegative.objects.get(project=project)
    assert (negative.label_class_id, negative.crop_id, negative.reviewer_id) == (wrench.pk, exemplar.pk, reviewer.pk)

    # One new gallery version, holding both; pending objects re-score against it.
    project.refresh_from_db()
    assert project.gallery_version == start_version + 1
    newest = GalleryVersion.objects.filter(project=project).order_by("-number").first()
    assert newest.number == project.gallery_version
    assert exemplar.pk in newest.exemplar_ids and newest.negative_ids == [negative.pk]
    wait_for(lambda: Annotation.objects.get(pk=lookalike.pk).label_class_id == spanner.pk, "the re-score")
    lookalike.refresh_from_db()
    assert lookalike.candidates[0]["exemplar_id"] == exemplar.pk
    # The hard negative reached the re-scoring matcher: wrench is demoted by how much the
    # lookalike leans towards the corrected crop (ml.matcher.demote_negatives).
    sim_a, sim_neg = float(np.dot(LOOKALIKE, unit(1, 0, 0, 0))), float(np.dot(LOOKALIKE, WRONG))
    score = {c["name"]: c["score"] for c in lookalike.candidates}["wrench"]
    assert np.isclose(score, sim_a - (sim_neg - sim_a), atol=1e-4)
    rescored = AnnotationEvent.objects.filter(annotation_id=lookalike.pk, action="rescored").order_by("-id").first()
    assert rescored.after["gallery_version"] == newest.number
    clean.refresh_from_db()
    assert clean.label_class_id == wrench.pk, "an unlike wrench stays a wrench"

    assert not learned(off).exists() and not HardNegative.objects.filter(project=off).exists()
    assert learned(project).count() == 1 and HardNegative.objects.filter(project=project).count() == 1

    # A redelivered task adds nothing twice.
    assert learn_from_change.apply_async(args=[fixed.pk, fixed.version], ignore_result=False).get(timeout=60) == {}
    assert learned(project).count() == 1 and HardNegative.objects.filter(project=project).count() == 1
    project.refresh_from_db()
    assert project.gallery_version == start_version + 1


@pytest.mark.django_db
def test_learning_directly_and_what_does_not_count(admin_user):
    reviewer = make_user("rev")
    project, wrench, spanner = setup_project(admin_user)
    add_member(project, reviewer, "reviewer")
    obj = proposal(make_image(project, seed=1), wrench, WRONG)
    # A changed mask: the stored embedding describes the model's mask, so no vector is copied
    # (the gpu worker embeds the stored crop).
    from backend.annotations.services import update_annotation

    update_annotation(project=project, annotation_id=obj.pk, user=reviewer, version=obj.version,
                      class_id=spanner.pk, mask_rle=rect_rle(48, 64, 6, 5, 20, 20))
    obj.refresh_from_db()
    got = learning.learn_from_change(annotation_id=obj.pk, version=obj.version)
    exemplar = GalleryImage.objects.get(pk=got["exemplar"])
    assert (exemplar.width, exemplar.height) == (14, 15)
    assert not GalleryEmbedding.objects.filter(gallery_image=exemplar).exists()
    # Moving it back retracts what it taught: the learned spanner goes, a negative of spanner comes.
    update_annotation(project=project, annotation_id=obj.pk, user=reviewer, version=obj.version, class_id=wrench.pk)
    obj.refresh_from_db()
    back = learning.learn_from_change(annotation_id=obj.pk, version=obj.version)
    exemplar.refresh_from_db()
    assert exemplar.removed_at is not None and back["retracted"] == 2
    assert HardNegative.objects.get(pk=back["negative"]).label_class_id == spanner.pk
    # Accepting a class teaches nothing (the class did not change).
    from backend.annotations.services import review_annotation

    review_annotation(project=project, annotation_id=obj.pk, user=reviewer, version=obj.version,
                      target="class", decision="accepted")
    obj.refresh_from_db()
    assert learning.learn_from_change(annotation_id=obj.pk, version=obj.version) == {}


@pytest.mark.django_db
def test_admins_see_filter_and_prune_learned_exemplars_and_negatives(admin_user, client_for):
    reviewer = make_user("rev")
    project, wrench, spanner = setup_project(admin_user)
    add_member(project, reviewer, "reviewer")
    obj = proposal(make_image(project, seed=1), wrench, WRONG)
    from backend.annotations.services import update_annotation

    update_annotation(project=project, annotation_id=obj.pk, user=reviewer, version=obj.version, class_id=spanner.pk)
    obj.refresh_from_db()
    got = learning.learn_from_change(annotation_id=obj.pk, version=obj.version)
    admin, rev = client_for(admin_user), client_for(reviewer)
    base = f"/api/projects/{project.pk}/gallery/"

    shown = admin.get(base, {"source": "learned"}).json()["results"]
    assert [(e["id"], e["source"], e["source_image_id"], e["source_annotation_id"], e["added_by"]) for e in shown] == [
        (got["exemplar"], "learned", obj.image_id, obj.pk, "rev")]
    assert {e["source"] for e in admin.get(base, {"source": "uploaded"}).json()["results"]} == {"uploaded"}
    assert admin.get(base, {"source": "stolen"}).status_code == 400
    negatives = rev.get(f"{base}negatives/").json()["results"]
    assert [(n["id"], n["label_class"], n["crop"], n["reviewer"]) for n in negatives] == [
        (got["negative"], wrench.pk, got["exemplar"], "rev")]
    assert rev.get(negatives[0]["crop_url"]).status_code == 200

    # Reviewers see but cannot prune (server-enforced); admins can, and each prune is a version.
    assert rev.delete(f"{base}{got['exemplar']}/").status_code == 403
    assert rev.post(f"{base}prune/", {"exemplar_ids": [got["exemplar"]]}, format="json").status_code == 403
    assert rev.delete(f"{base}negatives/{got['negative']}/").status_code == 403
    project.refresh_from_db()
    before = project.gallery_version
    assert admin.delete(f"{base}negatives/{got['negative']}/").status_code == 204
    uploaded = [e["id"] for e in admin.get(base, {"source": "uploaded"}).json()["results"]]
    answer = admin.post(f"{base}prune/", {"exemplar_ids": [got["exemplar"], uploaded[0]]}, format="json")
    assert answer.status_code == 200 and answer.json() == {"exemplars": 2, "negatives": 0}
    project.refresh_from_db()
    assert project.gallery_version == before + 2
    newest = GalleryVersion.objects.filter(project=project).order_by("-number").first()
    assert got["exemplar"] not in newest.exemplar_ids and newest.negative_ids == []
    # All or nothing: an id that is gone (or another project's) removes nothing.
    assert admin.post(f"{base}prune/", {"exemplar_ids": [uploaded[1], got["exemplar"]]}, format="json").status_code == 404
    assert GalleryImage.objects.get(pk=uploaded[1]).removed_at is None


@pytest.mark.django_db
def test_negatives_belong_to_a_gallery_version_like_exemplars(admin_user):
    from backend.gallery.services import prune
    from backend.gallery.versions import current_version
    from backend.jobs.gallery_index import load_gallery

    reviewer = make_user("rev")
    project, wrench, spanner = setup_project(admin_user)
    add_member(project, reviewer, "reviewer")
    before = current_version(project.pk)
    obj = proposal(make_image(project, seed=1), wrench, WRONG)
    from backend.annotations.services import update_annotation

    update_annotation(project=project, annotation_id=obj.pk, user=reviewer, version=obj.version, class_id=spanner.pk)
    obj.refresh_from_db()
    got = learning.learn_from_change(annotation_id=obj.pk, version=obj.version)
    learned_version = current_version(project.pk)
    assert learned_version.negative_ids == [got["negative"]]

    def negatives(**ids):
        g = load_gallery(project_id=project.pk, embedder_version=VERSION, **ids)
        return g.negatives.labels

    assert negatives() == [str(wrench.pk)]
    assert negatives(exemplar_ids=before.exemplar_ids) == [], "an older version has no negatives"
    prune(project=project, exemplar_ids=[], negative_ids=[got["negative"]])
    assert negatives() == []
    # A job pinned to the learned version still sees its negative (and its learned exemplar).
    pinned = load_gallery(project_id=project.pk, embedder_version=VERSION, exemplar_ids=learned_version.exemplar_ids,
                          negative_ids=learned_version.negative_ids)
    assert pinned.negatives.labels == [str(wrench.pk)] and got["exemplar"] in pinned.exemplar_ids
