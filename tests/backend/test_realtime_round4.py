"""Live notices added after the fourth black-box round: a member whose role changes is told (their
open pages reload it), and class changes reach open pages (a class deleted elsewhere stayed in
an open picker)."""
import pytest
from asgiref.sync import sync_to_async

from backend.projects import services as project_services
from backend.projects.models import Role

from .factories import make_class
from .test_realtime import close_thread_connections, connect, world  # noqa: F401  (the fixture is autouse)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_a_members_new_role_is_pushed_to_their_open_pages():
    owner, member, _, project, membership = await world()
    communicator, connected, _ = await connect(project.pk, member)
    assert connected
    await communicator.receive_json_from(timeout=5)  # hello
    await sync_to_async(project_services.change_role)(project=project, membership_id=membership.pk, role=Role.VIEWER,
                                                         version=membership.version)
    message = await communicator.receive_json_from(timeout=5)
    assert message == {"type": "membership.changed", "project": project.pk}
    await communicator.disconnect()


async def test_class_changes_are_announced():
    owner, member, _, project, _ = await world()
    communicator, connected, _ = await connect(project.pk, member)
    assert connected
    await communicator.receive_json_from(timeout=5)
    label_class = await sync_to_async(make_class)(project, "hammer")  # the factory goes around the service
    await sync_to_async(project_services.update_class)(project=project, class_id=label_class.pk, version=label_class.version,
                                                       name="mallet")
    assert (await communicator.receive_json_from(timeout=5))["type"] == "classes.changed"
    await sync_to_async(project_services.delete_class)(project=project, class_id=label_class.pk, version=label_class.version + 1)
    kinds = {(await communicator.receive_json_from(timeout=5))["type"] for _ in range(2)}
    assert "classes.changed" in kinds, kinds
    await communicator.disconnect()


@pytest.mark.parametrize("origin, host, ok", [
    ("http://localhost:8000", "localhost:8000", True),
    ("http://localhost:9999", "localhost:8000", False),  # another port of the same host: another site
    ("http://localhost:3000", "localhost:8000", False),
    ("http://localhost:8000.evil.com", "localhost:8000", False),
    ("https://localhost:8000", "localhost:8000", True),  # TLS ended by a proxy in front: same host and port
    ("http://localhost", "localhost:8000", False),
    ("http://localhost:80", "localhost", True),  # the default port, spelled or not
    ("https://example.org", "example.org", True),
    ("https://example.org:8443", "example.org", False),
    ("null", "localhost:8000", False),
])
async def test_the_socket_takes_only_this_sites_own_origin(origin, host, ok):  # async: the module is marked asyncio
    """The check compared the host only: a page on another port of the same host opened a member's socket."""
    from backend.realtime.origin import origin_allowed

    scope = {"type": "websocket", "headers": [(b"host", host.encode()), (b"origin", origin.encode())]}
    assert origin_allowed(scope) is ok


async def test_a_page_on_another_port_cannot_open_a_members_socket():
    owner, member, _, project, _ = await world()
    _, connected, _ = await connect(project.pk, member, origin="http://localhost:9999")
    assert not connected
    communicator, connected, _ = await connect(project.pk, member)  # this site itself
    assert connected
    await communicator.disconnect()


async def test_a_trusted_origin_is_let_in(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://localhost:9443"]  # e.g. a TLS proxy on another port
    owner, member, _, project, _ = await world()
    communicator, connected, _ = await connect(project.pk, member, origin="https://localhost:9443")
    assert connected
    await communicator.disconnect()
