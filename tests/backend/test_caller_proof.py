"""A caller this web process has already verified is checked again inside the one statement that
serves the request (core/fast_auth.Proof): the review's write, or the image detail's query, reads
the token, or the session row, its data and the user's password, and the membership itself.
Whatever changed since (a deleted token, a logout, a changed password, a deactivated user, a
removed member or lower role, a missing CSRF token) makes that statement write or return nothing,
and the request gets Django's answer.
"""
import contextlib
import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from rest_framework.authtoken.models import Token

from backend.annotations.hot_routes import HotRoutes
from backend.annotations.models import Annotation, AnnotationEvent
from backend.config.asgi import django_asgi_app
from backend.core import async_db, fast_auth
from backend.projects.models import Membership

from .test_api_hot_paths import (Probe, call, close_kept_connections, detail_path, review_body, review_path, scene,
                                 session_headers, token_headers)

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["close_kept_connections", "scene"]  # fixtures, used by name


def _started(scene):
    """The first object already reviewed once, so each class decision is the plain case."""
    Annotation.objects.filter(pk=scene["first"].pk).update(class_review="accepted", updated_by=scene["owner"], version=2)


def _scope(headers):
    return {"headers": [(b"host", b"127.0.0.1"), *headers]}


class Statements:
    """Counts the statements the hot route sends on its kept connections (psycopg's own
    connection, observed, not replaced)."""

    def __init__(self, monkeypatch):
        self.sent = []
        real = async_db.pool.connection
        outer = self

        @contextlib.asynccontextmanager
        async def counted():
            async with real() as conn:
                execute = conn.execute

                async def spy(query, *args, **kwargs):
                    outer.sent.append(str(query)[:60])
                    return await execute(query, *args, **kwargs)

                conn.execute = spy
                try:
                    yield conn
                finally:
                    del conn.execute

        monkeypatch.setattr(async_db.pool, "connection", counted)


@pytest.mark.parametrize("auth", ["token", "session"])
def test_a_known_caller_reviews_in_one_statement(scene, auth, monkeypatch):
    _started(scene)
    headers = token_headers(scene["reviewer"], json_body=True) if auth == "token" else session_headers(scene["reviewer"])
    app = HotRoutes(django_asgi_app)
    assert fast_auth.proof(_scope(headers)) is None
    assert call(app, "POST", review_path(scene, scene["first"]), headers, review_body(2, decision="rejected"))[0] == 200
    proof = fast_auth.proof(_scope(headers))
    assert proof is not None and proof.user_id == scene["reviewer"].pk and proof.session == (auth == "session")
    statements = Statements(monkeypatch)
    probe = Probe()
    status, _, body = call(HotRoutes(probe), "POST", review_path(scene, scene["first"]), headers,
                           review_body(3, decision="accepted"))
    assert status == 200 and probe.calls == 0 and json.loads(body)["version"] == 4
    assert len(statements.sent) == 1 and statements.sent[0].startswith("WITH u AS (UPDATE"), statements.sent
    row = Annotation.objects.get(pk=scene["first"].pk)
    assert (row.version, row.class_review, row.updated_by_id) == (4, "accepted", scene["reviewer"].pk)
    event = AnnotationEvent.objects.filter(annotation_id=row.pk).latest("id")
    assert event.actor_id == scene["reviewer"].pk and event.after["version"] == 4


def _deactivate(scene, _headers):
    get_user_model().objects.filter(pk=scene["reviewer"].pk).update(is_active=False)


def _new_password(scene, _headers):
    reviewer = get_user_model().objects.get(pk=scene["reviewer"].pk)
    reviewer.set_password("another-password-456")
    reviewer.save()


def _logout(_scene, headers):
    cookie = dict(headers)[b"cookie"].decode()
    Session.objects.filter(session_key=cookie.split("sessionid=")[1].split(";")[0]).delete()


def _delete_token(scene, _headers):
    Token.objects.filter(user=scene["reviewer"]).delete()


def _viewer(scene, _headers):
    Membership.objects.filter(project=scene["project"], user=scene["reviewer"]).update(role="viewer")


def _removed(scene, _headers):
    Membership.objects.filter(project=scene["project"], user=scene["reviewer"]).delete()


@pytest.mark.parametrize("auth,change,statuses", [
    ("token", _delete_token, {401, 403}),
    ("token", _deactivate, {401, 403}),
    ("token", _viewer, {403}),
    ("token", _removed, {403, 404}),
    ("session", _logout, {401, 403}),
    ("session", _new_password, {401, 403}),
    ("session", _deactivate, {401, 403}),
    ("session", _viewer, {403}),
    ("session", "no csrf", {403}),
])
def test_a_proof_that_no_longer_holds_writes_nothing_and_gets_djangos_answer(scene, auth, change, statuses):
    _started(scene)
    headers = token_headers(scene["reviewer"], json_body=True) if auth == "token" else session_headers(scene["reviewer"])
    app = HotRoutes(django_asgi_app)
    assert call(app, "POST", review_path(scene, scene["first"]), headers, review_body(2, decision="rejected"))[0] == 200
    assert fast_auth.proof(_scope(headers)) is not None
    if change == "no csrf":
        headers = [h for h in headers if h[0] != b"x-csrftoken"]
    else:
        change(scene, headers)
    before = list(Annotation.objects.order_by("id").values_list("id", "version", "class_review", "updated_by_id"))
    events_before = AnnotationEvent.objects.count()
    probe = Probe()
    status, _, body = call(HotRoutes(probe), "POST", review_path(scene, scene["first"]), headers,
                           review_body(3, decision="accepted"))
    assert probe.calls == 1 and status in statuses, (status, body)
    assert list(Annotation.objects.order_by("id").values_list("id", "version", "class_review", "updated_by_id")) == before
    assert AnnotationEvent.objects.count() == events_before


def test_another_users_token_never_borrows_a_proof(scene):
    """Proofs are keyed by the credential itself: the owner's token is looked up afresh and writes
    as the owner, not as the reviewer whose proof this process holds."""
    _started(scene)
    app = HotRoutes(django_asgi_app)
    assert call(app, "POST", review_path(scene, scene["first"]), token_headers(scene["reviewer"], json_body=True),
                review_body(2, decision="rejected"))[0] == 200
    owner_headers = token_headers(scene["owner"], json_body=True)
    assert fast_auth.proof(_scope(owner_headers)) is None
    assert call(app, "POST", review_path(scene, scene["first"]), owner_headers, review_body(3, decision="accepted"))[0] == 200
    assert Annotation.objects.get(pk=scene["first"].pk).updated_by_id == scene["owner"].pk


@pytest.mark.parametrize("auth", ["token", "session"])
def test_a_known_caller_reads_in_one_statement(scene, auth, monkeypatch):
    headers = token_headers(scene["reviewer"]) if auth == "token" else session_headers(scene["reviewer"], csrf=False)
    app = HotRoutes(django_asgi_app)
    first = call(app, "GET", detail_path(scene), headers)
    assert first[0] == 200 and fast_auth.proof(_scope(headers)) is not None
    statements = Statements(monkeypatch)
    probe = Probe()
    again = call(HotRoutes(probe), "GET", detail_path(scene), headers)
    assert again == first and probe.calls == 0
    assert len(statements.sent) == 1 and statements.sent[0].startswith("SELECT i."), statements.sent
    assert again == call(django_asgi_app, "GET", detail_path(scene), headers)


def _other_image(scene, _headers):
    from .factories import make_image, make_project

    other = make_project(scene["owner"], name="Other")
    scene["path"] = detail_path(scene, make_image(other))  # an image id of another project


@pytest.mark.parametrize("auth,change,statuses", [
    ("token", _delete_token, {401, 403}),
    ("token", _deactivate, {401, 403}),
    ("token", _removed, {404}),
    ("token", _other_image, {404}),
    ("session", _logout, {401, 403}),
    ("session", _new_password, {401, 403}),
    ("session", _deactivate, {401, 403}),
    ("session", _removed, {404}),
])
def test_a_read_whose_proof_no_longer_holds_gets_djangos_answer(scene, auth, change, statuses):
    headers = token_headers(scene["reviewer"]) if auth == "token" else session_headers(scene["reviewer"], csrf=False)
    app = HotRoutes(django_asgi_app)
    assert call(app, "GET", detail_path(scene), headers)[0] == 200
    assert fast_auth.proof(_scope(headers)) is not None
    change(scene, headers)
    path = scene.get("path", detail_path(scene))
    probe = Probe()
    hot = call(HotRoutes(probe), "GET", path, headers)
    assert probe.calls == 1 and hot[0] in statuses, hot
    assert hot == call(django_asgi_app, "GET", path, headers)
