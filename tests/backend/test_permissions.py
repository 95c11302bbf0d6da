"""Every route × every role × own project / another project / another project's object ids.

Members get 2xx when their role allows the action and 403 when not; anyone reaching into a
project they are not in, or naming another project's object, gets 404.
"""
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.annotations.models import Annotation
from backend.gallery.models import GalleryImage
from backend.projects.access import ROLE_CAPABILITIES, Capability
from backend.projects.models import Role

from .factories import add_member, image_bytes, make_class, make_image, make_model_annotation, make_project, make_user, rect_rle


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    needs: Capability
    body: str | None = None  # name of a body builder below
    multipart: bool = False


ROUTES = [
    Route("get", "/api/projects/{p}/", Capability.READ),
    Route("patch", "/api/projects/{p}/", Capability.MANAGE, "project_patch"),
    Route("delete", "/api/projects/{p}/?version=1", Capability.MANAGE),
    Route("get", "/api/projects/{p}/members/", Capability.READ),
    Route("post", "/api/projects/{p}/members/", Capability.MANAGE, "member_add"),
    Route("patch", "/api/projects/{p}/members/{m}/", Capability.MANAGE, "member_role"),
    Route("delete", "/api/projects/{p}/members/{m}/?version=1", Capability.MANAGE),
    Route("get", "/api/projects/{p}/classes/", Capability.READ),
    Route("get", "/api/projects/{p}/classes/{c}/", Capability.READ),
    Route("post", "/api/projects/{p}/classes/", Capability.MANAGE, "class_new"),
    Route("patch", "/api/projects/{p}/classes/{c}/", Capability.MANAGE, "class_patch"),
    Route("delete", "/api/projects/{p}/classes/{c2}/?version=1", Capability.MANAGE),
    Route("get", "/api/projects/{p}/gallery/", Capability.READ),
    Route("post", "/api/projects/{p}/gallery/", Capability.MANAGE, "gallery_upload", multipart=True),
    Route("get", "/api/projects/{p}/gallery/{g}/file/", Capability.READ),
    Route("get", "/api/projects/{p}/gallery/versions/", Capability.READ),
    Route("delete", "/api/projects/{p}/gallery/{g}/", Capability.MANAGE),
    Route("get", "/api/projects/{p}/images/", Capability.READ),
    Route("post", "/api/projects/{p}/images/", Capability.ANNOTATE, "image_upload", multipart=True),
    Route("get", "/api/projects/{p}/images/{i}/", Capability.READ),
    Route("get", "/api/projects/{p}/images/{i}/file/", Capability.READ),
    Route("get", "/api/projects/{p}/images/{i}/events/", Capability.READ),
    Route("post", "/api/projects/{p}/images/{i}/accept-all/", Capability.REVIEW, "seen_all"),
    Route("delete", "/api/projects/{p}/images/{i}/?version=1", Capability.MANAGE),
    Route("get", "/api/projects/{p}/annotations/{a}/", Capability.READ),
    Route("post", "/api/projects/{p}/annotations/", Capability.ANNOTATE, "annotation_new"),
    Route("patch", "/api/projects/{p}/annotations/{a}/", Capability.ANNOTATE, "annotation_patch"),
    Route("delete", "/api/projects/{p}/annotations/{a}/?version=1", Capability.ANNOTATE),
    Route("post", "/api/projects/{p}/annotations/{a}/review/", Capability.REVIEW, "review"),
]


class World:
    """Two projects with one of everything; `me` has `role` in project A only."""

    def __init__(self, role: str | None):
        owner = make_user("owner")
        self.me = make_user("me")
        self.newcomer = make_user("newcomer")
        self.projects = {}
        for key in ("A", "B"):
            project = make_project(owner, name=f"Project {key}")
            label = make_class(project, "hammer")
            spare = make_class(project, "spare")
            image = make_image(project, seed=1 if key == "A" else 2)
            annotation = make_model_annotation(image, label)
            other = add_member(project, make_user(f"member{key}"), Role.VIEWER)
            exemplar = GalleryImage.objects.create(
                project=project, label_class=label, file="x.png", original_name="x.png", content_type="image/png",
                sha256=key * 64, width=8, height=8,
            )
            from django.core.files.storage import default_storage
            from django.core.files.base import ContentFile

            exemplar.file = default_storage.save(f"projects/{project.pk}/gallery/e.png", ContentFile(image_bytes(8, 8)))
            exemplar.save()
            self.projects[key] = dict(
                p=project.pk, c=label.pk, c2=spare.pk, i=image.pk, a=annotation.pk, m=other.pk, g=exemplar.pk,
                image=image, label=label,
            )
        if role is not None:
            add_member(self.projects["A"]["image"].project, self.me, role)

    def ids(self, scope: str) -> dict:
        if scope == "own":
            return self.projects["A"]
        if scope == "other_project":
            return self.projects["B"]
        # project A's URL, project B's object ids
        return {**self.projects["B"], "p": self.projects["A"]["p"]}

    def body(self, name: str | None, ids: dict):
        image = ids["image"]
        return {
            None: None,
            "empty": {},
            "seen_all": {"seen": [[a.pk, a.version] for a in Annotation.objects.filter(image_id=ids["i"])]},
            "project_patch": {"name": "Renamed", "version": 1},
            "member_add": {"username": "newcomer", "role": "viewer"},
            "member_role": {"role": "annotator", "version": 1},
            "class_new": {"name": "wrench", "color": "#00ff00"},
            "class_patch": {"color": "#123456", "version": 1},
            "gallery_upload": {"label_class": ids["c"], "files": [SimpleUploadedFile("g.png", image_bytes(9, 9, (1, 2, 3)))]},
            "image_upload": {"files": [SimpleUploadedFile("n.png", image_bytes(10, 10, (9, 9, 9)))]},
            "annotation_new": {"image": ids["i"], "label_class": ids["c"], "mask_rle": rect_rle(image.height, image.width, 1, 1, 5, 5)},
            "annotation_patch": {"version": 1, "label_class": ids["c2"]},
            "review": {"version": 1, "target": "class", "decision": "accepted"},
        }[name]


ROLES = [Role.ADMIN, Role.REVIEWER, Role.ANNOTATOR, Role.VIEWER, None]


def _cases():
    for route in ROUTES:
        names_object = "{" in route.path.replace("{p}", "")
        for role in ROLES:
            for scope in ("own", "other_project", "other_objects"):
                if scope == "other_objects" and not names_object:
                    continue  # nothing but the project in the URL: the same request as "own"
                yield pytest.param(route, role, scope, id=f"{route.method} {route.path} {role or 'outsider'} {scope}")


@pytest.mark.django_db
@pytest.mark.parametrize("route,role,scope", list(_cases()))
def test_permission_matrix(route, role, scope, client_for):
    world = World(role)
    ids = world.ids(scope)
    url = route.path.format(**ids)
    body = world.body(route.body, ids)
    client = client_for(world.me)
    kwargs = {"format": "multipart"} if route.multipart else ({"format": "json"} if body is not None else {})
    response = getattr(client, route.method)(url, body, **kwargs) if body is not None else getattr(client, route.method)(url)

    if role is None or scope != "own":
        # Project A's URL with B's objects only exists for A's members; everyone else sees no project.
        if role is not None and scope == "other_objects" and route.needs not in ROLE_CAPABILITIES[role]:
            assert response.status_code in (403, 404), response.content
            return
        assert response.status_code == 404, (response.status_code, response.content)
        return
    if route.needs in ROLE_CAPABILITIES[role]:
        assert 200 <= response.status_code < 300, (response.status_code, response.content)
    else:
        assert response.status_code == 403, (response.status_code, response.content)


@pytest.mark.django_db
def test_anonymous_gets_401_or_403_everywhere(client):
    world = World(None)
    ids = world.ids("own")
    for route in ROUTES:
        response = getattr(client, route.method)(route.path.format(**ids))
        assert response.status_code in (401, 403), (route, response.status_code)


@pytest.mark.django_db
def test_project_list_shows_only_my_projects(client_for):
    world = World(Role.VIEWER)
    response = client_for(world.me).get("/api/projects/")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [world.projects["A"]["p"]]
    assert response.json()["results"][0]["my_role"] == "viewer"
