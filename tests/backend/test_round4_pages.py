"""Round 4 of the black-box report, the server's side: a deleted project tells its members who
deleted it (live), and the sign-in lockout says how long in words, with no DRF suffix and no
advice the product cannot honour."""
import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from rest_framework.test import APIClient

from backend.core.auth_views import SIGN_IN_LOCKOUT_S, _failures_key, wait_text
from backend.projects.models import Membership, Project, Role

from .factories import make_project, make_user


def _fresh_lock(username: str) -> str:
    key = _failures_key(username)
    cache.delete_many([key, key + ":since"])
    return key


@pytest.mark.django_db
def test_lockout_says_how_long_in_minutes_without_drf_suffix_or_admin_advice():
    make_user("locked-lena", password="right-pass-123")
    key = _fresh_lock("locked-lena")
    api = APIClient()
    for i in range(10):
        assert api.post("/api/auth/login/", {"username": "locked-lena", "password": f"guess-{i}"},
                        format="json").status_code == 400
    locked = api.post("/api/auth/login/", {"username": "locked-lena", "password": "right-pass-123"}, format="json")
    assert locked.status_code == 429
    detail = locked.json()["detail"]
    assert detail == "Too many failed sign-ins: this account is locked. Try again in 15 minutes.", detail
    assert "Expected available" not in detail and "admin" not in detail.lower()
    assert 890 <= int(locked["Retry-After"]) <= SIGN_IN_LOCKOUT_S

    # Ten minutes into the window: five are left, and the message says so.
    cache.set(key + ":since", time.time() - 600, SIGN_IN_LOCKOUT_S)
    later = api.post("/api/auth/token/", {"username": "locked-lena", "password": "right-pass-123"}, format="json")
    assert later.status_code == 429
    assert later.json()["detail"].endswith("Try again in 5 minutes."), later.json()
    assert 290 <= int(later["Retry-After"]) <= 300
    cache.delete_many([key, key + ":since"])


def test_wait_text_reads_like_a_person_wrote_it():
    assert wait_text(900) == "15 minutes"
    assert wait_text(61) == "2 minutes"
    assert wait_text(60) == "1 minute"
    assert wait_text(1) == "1 second"
    assert wait_text(0.2) == "1 second"
    assert wait_text(45) == "45 seconds"


@pytest.mark.django_db
def test_password_change_lockout_has_the_same_plain_words(client_for):
    user = make_user("locked-lev", password="right-pass-789")
    _fresh_lock("locked-lev")
    client = client_for(user)
    for i in range(10):
        client.patch("/api/auth/me/", {"current_password": f"guess-{i}", "new_password": "n3w-Pass-xyz!"}, format="json")
    locked = client.patch("/api/auth/me/", {"current_password": "right-pass-789", "new_password": "n3w-Pass-xyz!"},
                          format="json")
    assert locked.status_code == 429
    assert locked.json()["detail"] == "Too many failed password attempts: this account is locked. Try again in 15 minutes."
    _fresh_lock("locked-lev")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_deleting_a_project_tells_its_open_pages_who_deleted_it_then_closes_them():
    from .test_realtime import connect

    def world():
        owner, member, other_owner = make_user("del-owner"), make_user("del-member"), make_user("del-other")
        project = make_project(owner, name="Doomed")
        Membership.objects.create(project=project, user=member, role=Role.VIEWER)
        other = make_project(other_owner, name="Survivor")
        Membership.objects.create(project=other, user=member, role=Role.VIEWER)
        return owner, member, project, other

    owner, member, project, other = await sync_to_async(world)()
    doomed_socket, connected, _ = await connect(project.pk, member)
    assert connected
    assert (await doomed_socket.receive_json_from(timeout=5))["type"] == "hello"
    other_socket, connected, _ = await connect(other.pk, member)
    assert connected
    assert (await other_socket.receive_json_from(timeout=5))["type"] == "hello"

    def delete():
        api = APIClient()
        api.force_login(owner)
        return api.delete(f"/api/projects/{project.pk}/", {"version": project.version}, format="json")

    response = await sync_to_async(delete)()
    assert response.status_code == 204, response.content
    assert not await sync_to_async(Project.objects.filter(pk=project.pk).exists)()

    message = await doomed_socket.receive_json_from(timeout=5)
    assert message == {"type": "project.deleted", "project": project.pk, "by": "del-owner"}
    assert (await doomed_socket.receive_json_from(timeout=5))["type"] == "access.revoked"
    closed = await doomed_socket.receive_output(timeout=5)
    assert closed["type"] == "websocket.close" and closed["code"] == 4403

    # The member's socket of another project hears of it too (one group per user), names the
    # deleted project so the page can tell it is not its own, and stays open.
    heard = await other_socket.receive_json_from(timeout=5)
    assert heard["type"] == "project.deleted" and heard["project"] == project.pk
    await other_socket.send_json_to({"type": "ping"})
    assert (await other_socket.receive_json_from(timeout=5))["type"] == "pong"
    # Both consumers end inside this test's event loop (the channel layer's receive lock is bound
    # to it; one still waiting made a later test's loop trip over it).
    await other_socket.disconnect()
    await doomed_socket.disconnect()
    await asyncio.sleep(0)

    from django.db import connections

    await sync_to_async(connections.close_all)()
