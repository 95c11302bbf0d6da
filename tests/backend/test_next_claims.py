"""`/images/next/?claim=1` finds and claims in one request: two reviewers pressing Enter at once
were sent to the same image (black-box report ui5 #5), and the second got a read-only page."""
import threading

import pytest
from django.db import connection

from backend.images.models import Image, ImageStatus
from backend.projects.models import Role

from .factories import add_member, make_image, make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_reviewers_asking_at_once_get_two_images(client_for):
    owner = make_user("own")
    project = make_project(owner)
    images = [make_image(project, seed=s) for s in range(4)]
    Image.objects.filter(pk__in=[i.pk for i in images]).update(status=ImageStatus.PRELABELED)
    reviewers = [make_user(f"rev{i}") for i in range(4)]
    for user in reviewers:
        add_member(project, user, Role.REVIEWER)
    url = f"/api/projects/{project.pk}/images/next/?claim=1"
    got, start = {}, threading.Barrier(len(reviewers))

    def ask(user):
        try:
            client = client_for(user)
            start.wait()
            response = client.get(url)
            got[user.username] = (response.status_code, response.json().get("id"))
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(u,)) for u in reviewers]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    ids = [image_id for status, image_id in got.values()]
    assert all(status == 200 for status, _ in got.values()), got
    assert len(set(ids)) == len(reviewers), f"each reviewer got an image of their own: {got}"
    holders = dict(Image.objects.filter(pk__in=ids).values_list("pk", "claimed_by__username"))
    assert {holders[i] for _, i in got.values()} == {u.username for u in reviewers}


def test_without_claim_or_for_a_viewer_nothing_is_claimed(client_for):
    owner = make_user("own")
    project = make_project(owner)
    image = make_image(project)
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.PRELABELED)
    viewer = make_user("vera")
    add_member(project, viewer, Role.VIEWER)
    base = f"/api/projects/{project.pk}/images/next/"
    assert client_for(owner).get(base).json()["id"] == image.pk
    assert client_for(viewer).get(base + "?claim=1").json()["id"] == image.pk
    assert Image.objects.get(pk=image.pk).claimed_by is None
    assert client_for(owner).get(base + "?claim=maybe").status_code == 400
