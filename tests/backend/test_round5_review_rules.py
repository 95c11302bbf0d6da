"""Round-5 black-box findings on the review rules: an annotator deleted an accepted object, which
left the approved export with no review (an annotator's edit sends an object back to review)."""
import pytest

from backend.annotations.models import Annotation, ReviewState
from backend.projects.models import Role

from .factories import add_member, make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("accepted", ["class_review", "mask_review"])
def test_an_annotator_cannot_delete_an_accepted_object_a_reviewer_can(client_for, accepted):
    owner = make_user("own")
    project = make_project(owner)
    annotator, reviewer = make_user("ann"), make_user("rev")
    add_member(project, annotator, Role.ANNOTATOR)
    add_member(project, reviewer, Role.REVIEWER)
    image = make_image(project)
    hammer = make_class(project, "hammer")
    obj = make_model_annotation(image, hammer)
    Annotation.objects.filter(pk=obj.pk).update(**{accepted: ReviewState.ACCEPTED})
    pending = make_model_annotation(image, hammer)
    url = f"/api/projects/{project.pk}/annotations"

    refused = client_for(annotator).delete(f"{url}/{obj.pk}/?version={obj.version}")
    assert refused.status_code == 403, refused.content
    assert "accepted in review" in refused.json()["detail"]
    assert Annotation.objects.filter(pk=obj.pk).exists()
    # A pending one is theirs to delete, and a reviewer may delete an accepted one.
    assert client_for(annotator).delete(f"{url}/{pending.pk}/?version={pending.version}").status_code == 204
    assert client_for(reviewer).delete(f"{url}/{obj.pk}/?version={obj.version}").status_code == 204


def test_a_key_twice_in_a_json_body_is_refused(client_for):
    """The last one won without a word: a stale `version` hidden behind a fresh one went through."""
    owner = make_user("own")
    project = make_project(owner)
    image = make_image(project)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    obj = make_model_annotation(image, hammer)
    body = '{"version": %d, "label_class": %d, "label_class": %d}' % (obj.version, wrench.pk, hammer.pk)
    response = client_for(owner).generic("PATCH", f"/api/projects/{project.pk}/annotations/{obj.pk}/", body,
                                         content_type="application/json")
    assert response.status_code == 400, response.content
    assert "'label_class' appears twice" in response.json()["detail"]
    # The review's fast path hands such a body to the view, which refuses it the same way.
    body = '{"version": %d, "target": "both", "decision": "accepted", "decision": "rejected"}' % obj.version
    review = client_for(owner).generic("POST", f"/api/projects/{project.pk}/annotations/{obj.pk}/review/", body,
                                       content_type="application/json")
    assert review.status_code == 400 and "'decision' appears twice" in review.json()["detail"], review.content
    assert Annotation.objects.get(pk=obj.pk).version == obj.version
    # Nested objects too; the same key in two objects is fine.
    fine = client_for(owner).post(f"/api/projects/{project.pk}/images/{image.pk}/accept-all/",
                                  '{"seen": [[%d, %d]]}' % (obj.pk, obj.version), content_type="application/json")
    assert fine.status_code == 200, fine.content


def test_a_member_is_added_by_name_whatever_its_case(client_for):
    """"new user ADMIN" was refused as taken (names are unique whatever their case), then adding
    "ADMIN" as a member said "No active user named 'ADMIN'"."""
    owner = make_user("own")
    project = make_project(owner)
    make_user("Kirill")
    response = client_for(owner).post(f"/api/projects/{project.pk}/members/", {"username": "kirill", "role": "reviewer"},
                                      format="json")
    assert response.status_code == 201, response.content
    assert response.json()["username"] == "Kirill"


def test_prompts_without_a_word_and_image_ids_that_are_booleans_are_refused(client_for):
    """`["..."]` ran as an empty phrase and found nothing; `images: [true]` started a job on image 1."""
    owner = make_user("own")
    project = make_project(owner)
    make_image(project)
    base = f"/api/projects/{project.pk}"
    job = client_for(owner).post(f"{base}/jobs/", {"images": "all", "prompts": ["hammer", "..."]}, format="json")
    assert job.status_code == 400 and "no letter or digit" in job.content.decode(), job.content
    settings = client_for(owner).patch(f"{base}/", {"version": project.version, "prompts": ["- -"]}, format="json")
    assert settings.status_code == 400 and "no letter or digit" in settings.content.decode(), settings.content
    booleans = client_for(owner).post(f"{base}/jobs/", {"images": [True]}, format="json")
    assert booleans.status_code == 400, booleans.content


def test_a_class_name_too_long_is_said_in_plain_words(client_for):
    owner = make_user("own")
    project = make_project(owner)
    response = client_for(owner).post(f"/api/projects/{project.pk}/classes/", {"name": "x" * 300}, format="json")
    assert response.status_code == 400
    assert response.json()["name"] == ["A class name has at most 120 characters: shorten it."], response.content


def test_repeated_prompts_are_kept_once_in_the_first_spelling(client_for):
    """`["a", "A", "a "]` was stored as `["a", "A", "a"]`: a repeat once trimmed, and the uncased
    detectors read "A" as "a" (round 11)."""
    owner = make_user("own")
    project = make_project(owner)
    response = client_for(owner).patch(f"/api/projects/{project.pk}/",
                                       {"version": project.version, "prompts": ["hammer", "Hammer", "hammer ", "saw",
                                                                                 "ham\u200bmer", "caf\u00e9", "cafe\u0301",
                                                                                 "red  saw", "red saw"]},
                                       format="json")
    assert response.status_code == 200, response.content
    # Also one spelling per prompt (round 12): NFD and NFC, a zero-width space, double spaces.
    assert response.json()["prompts"] == ["hammer", "saw", "caf\u00e9", "red saw"]
