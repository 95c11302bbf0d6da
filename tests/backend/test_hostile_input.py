"""Hostile geometry and JSON against a real web server process: every write route answers 4xx (or
a valid 2xx), and the same server process still answers afterwards.

Before the geometry gate, `{"polygons": [[0, 0, 1e12, 0, 1e12, 1e12]]}` made pycocotools
allocate ~25 GB and segfault the web process; before the JSON limits, ~1000 nested lists
answered 500 (RecursionError).
"""
from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pycocotools import mask as mask_utils
from rest_framework.authtoken.models import Token

from backend.annotations.models import Annotation
from tests.backend.factories import add_member, make_class, make_image, make_project, make_user, rect_rle
from tests.live_server import start_web, stop

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    from django.db import connection

    proc, url = start_web(connection.settings_dict["NAME"], log_name="hostile-server.log")
    yield proc, url
    stop(proc)


@pytest.fixture
def api(server):
    proc, url = server
    owner = make_user("owner")
    project = make_project(owner)
    annotator = make_user("anna")
    add_member(project, annotator, "annotator")
    image = make_image(project, width=64, height=48)
    hammer = make_class(project, "hammer")
    token = Token.objects.create(user=annotator)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Token {token.key}"}, timeout=30)
    yield client, proc, project, image, hammer
    client.close()


def _post_raw(client, path: str, body: bytes, method: str = "POST"):
    return client.request(method, path, content=body, headers={"Content-Type": "application/json"})


def _still_up(client, proc, project) -> None:
    assert proc.poll() is None, "the web process died"
    assert client.get(f"/api/projects/{project.pk}/").status_code == 200


# --------------------------------------------------------------------------- strategies

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([1e12, -1e12, 1e8, 1e308, -0.0, 2**31, 2**32 + 1, 2**63]),
    st.integers(min_value=-5, max_value=70),
)
polygon = st.lists(numbers, min_size=0, max_size=14)
polygons = st.one_of(st.lists(polygon, min_size=0, max_size=4), numbers, st.text(max_size=5), st.none(), st.lists(numbers, max_size=8))
sizes = st.one_of(
    st.just([48, 64]), st.lists(st.one_of(st.integers(-(10**12), 10**12), numbers, st.booleans()), min_size=0, max_size=3),
    st.text(max_size=4),
)
rle_counts = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=140), max_size=40),
    st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=12),
    st.lists(numbers, max_size=6),
    st.sampled_from(["0", "", "1", "PP", "\u00ff", "o" * 30, "0o" * 10, mask_utils.encode(
        __import__("numpy").asfortranarray(__import__("numpy").ones((100, 100), dtype="uint8")))["counts"].decode()]),
    st.integers(), st.none(),
)
rles = st.one_of(
    st.fixed_dictionaries({"size": sizes, "counts": rle_counts}),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
    st.lists(st.integers(), max_size=3),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def _dumps(value) -> bytes:
    # allow_nan: the attacker's client writes NaN/Infinity tokens too; the parser must refuse them.
    return json.dumps(value, allow_nan=True).encode()


def _check_annotation_answer(response, image) -> None:
    assert response.status_code < 500, response.text
    if response.status_code in (200, 201):
        rle = response.json()["mask_rle"]
        assert rle["size"] == [image.height, image.width]
        mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert mask.shape == (image.height, image.width) and mask.any()
    else:  # a message: {"detail": ...} from the gate, or DRF's {"field": [...]}
        assert isinstance(response.json(), dict) and response.json(), response.text


# --------------------------------------------------------------------------- the attacks from the issue


def test_the_polygon_that_killed_the_server_is_a_400_naming_the_field(api):
    client, proc, project, image, hammer = api
    for coords in ([0, 0, 1e12, 0, 1e12, 1e12], [0, 0, 1e8, 0, 1e8, 1e8]):
        response = client.post(f"/api/projects/{project.pk}/annotations/", json={"image": image.pk, "polygons": [coords]})
        # Clipped to the image, a triangle that runs off the edge keeps its inside part.
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["bbox"][0] >= 0 and body["bbox"][0] + body["bbox"][2] <= image.width
    nan = _post_raw(client, f"/api/projects/{project.pk}/annotations/", b'{"image": %d, "polygons": [[0, 0, NaN, 0, 5, 5]]}' % image.pk)
    assert nan.status_code == 400
    inf = _post_raw(client, f"/api/projects/{project.pk}/annotations/", b'{"image": %d, "polygons": [[0, 0, 1e999, 0, 5, 5]]}' % image.pk)
    assert inf.status_code == 400 and "1e999 is out of range" in inf.text, inf.text  # the number named (round 13)
    outside = client.post(f"/api/projects/{project.pk}/annotations/", json={"image": image.pk, "polygons": [[-1e12, -1e12, -1e12, -5, -5, -1e12]]})
    assert outside.status_code == 400 and "polygons" in outside.json()["detail"]
    _still_up(client, proc, project)


def test_rle_runs_that_overflow_or_underflow_the_image_are_refused(api):
    client, proc, project, image, hammer = api
    import numpy as np

    big = mask_utils.encode(np.asfortranarray(np.ones((100, 100), dtype=np.uint8)))["counts"].decode()
    cases = [
        ({"size": [48, 64], "counts": big}, "sum to height*width"),  # pycocotools: area() believes it
        ({"size": [48, 64], "counts": "0"}, "sum to height*width"),  # decode() returns uninitialised memory
        ({"size": [48, 64], "counts": [-5, 3077]}, "counts"),
        ({"size": [48, 64], "counts": "\u00ff\u00fe"}, "ASCII"),
        ({"size": [48, 64], "counts": "~~~~"}, "alphabet"),
        ({"size": [48, 64], "counts": "oooooooooooo"}, "middle of a run"),
        ({"size": [48, 64], "counts": "ooooooooo0"}, "longer than any image"),
    ]
    for rle, message in cases:
        response = client.post(f"/api/projects/{project.pk}/annotations/", json={"image": image.pk, "mask_rle": rle})
        assert response.status_code == 400 and message in response.json()["detail"], (rle, response.text)
        assert response.json()["field"] == "mask_rle"
    good = client.post(f"/api/projects/{project.pk}/annotations/", json={"image": image.pk, "mask_rle": rect_rle(48, 64, 2, 2, 10, 10)})
    assert good.status_code == 201
    annotation = good.json()
    for rle, _ in cases:
        patch = client.patch(
            f"/api/projects/{project.pk}/annotations/{annotation['id']}/", json={"version": annotation["version"], "mask_rle": rle},
        )
        assert patch.status_code == 400, patch.text
    assert Annotation.objects.get(pk=annotation["id"]).mask_rle == annotation["mask_rle"]
    _still_up(client, proc, project)


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_a_400_on_every_json_route(api, depth):
    client, proc, project, image, hammer = api
    body = b"[" * depth + b"]" * depth
    nested_value = b'{"image": %d, "polygons": ' % image.pk + b"[" * depth + b"]" * depth + b"}"
    for method, path, payload in [
        ("POST", f"/api/projects/{project.pk}/annotations/", nested_value),
        ("POST", "/api/projects/", b'{"name": ' + body + b"}"),
        ("PATCH", f"/api/projects/{project.pk}/annotations/1/", body),
        ("POST", f"/api/projects/{project.pk}/images/{image.pk}/segment/", body),
        ("POST", "/api/auth/login/", body),
    ]:
        response = _post_raw(client, path, payload, method)
        assert response.status_code == 400, (path, response.status_code, response.text[:200])
        assert "nested" in response.json()["detail"]
    _still_up(client, proc, project)


def test_an_oversized_json_body_is_refused(api):
    client, proc, project, image, hammer = api
    body = b'{"image": %d, "polygons": [[' % image.pk + b"1," * (9 * 1024 * 1024) + b"1]]}"
    response = _post_raw(client, f"/api/projects/{project.pk}/annotations/", body)
    assert response.status_code == 400 and "larger than" in response.json()["detail"], response.text
    _still_up(client, proc, project)


# --------------------------------------------------------------------------- fuzzing every write route


def test_fuzz_annotation_create_with_hostile_geometry(api):
    client, proc, project, image, hammer = api

    @FUZZ
    @given(kind=st.sampled_from(["polygons", "mask_rle", "both"]), poly=polygons, rle=rles)
    def attack(kind, poly, rle):
        payload = {"image": image.pk, "label_class": hammer.pk}
        if kind in ("polygons", "both"):
            payload["polygons"] = poly
        if kind in ("mask_rle", "both"):
            payload["mask_rle"] = rle
        _check_annotation_answer(_post_raw(client, f"/api/projects/{project.pk}/annotations/", _dumps(payload)), image)

    attack()
    _still_up(client, proc, project)


def test_fuzz_annotation_patch_with_hostile_geometry(api):
    client, proc, project, image, hammer = api
    created = client.post(f"/api/projects/{project.pk}/annotations/", json={"image": image.pk, "mask_rle": rect_rle(48, 64, 1, 1, 9, 9)})
    annotation_id = created.json()["id"]

    @FUZZ
    @given(poly=polygons, rle=rles, use_rle=st.booleans())
    def attack(poly, rle, use_rle):
        version = Annotation.objects.get(pk=annotation_id).version
        payload = {"version": version, "mask_rle": rle} if use_rle else {"version": version, "polygons": poly}
        response = _post_raw(client, f"/api/projects/{project.pk}/annotations/{annotation_id}/", _dumps(payload), "PATCH")
        _check_annotation_answer(response, image)

    attack()
    _still_up(client, proc, project)


def test_fuzz_segment_boxes_are_refused_before_the_worker(api):
    """Bad boxes answer 400 at once (a valid one would wait for a gpu worker, none runs here)."""
    from backend.core.geometry import GeometryError, validate_box

    client, proc, project, image, hammer = api

    @FUZZ
    @given(box=st.one_of(st.lists(numbers, min_size=0, max_size=6), numbers, st.text(max_size=4), st.none()))
    def attack(box):
        try:
            validate_box(box, height=image.height, width=image.width)
            return  # a box the gate accepts goes to the worker
        except (GeometryError, TypeError, ValueError):
            pass
        response = _post_raw(client, f"/api/projects/{project.pk}/images/{image.pk}/segment/", _dumps({"box": box}))
        assert 400 <= response.status_code < 500, response.text

    attack()
    _still_up(client, proc, project)


def test_fuzz_arbitrary_json_bodies_on_write_routes(api):
    client, proc, project, image, hammer = api
    routes = [
        ("POST", f"/api/projects/{project.pk}/annotations/"),
        ("PATCH", f"/api/projects/{project.pk}/annotations/1/"),
        ("POST", "/api/projects/"),
        ("PATCH", f"/api/projects/{project.pk}/"),
        ("POST", f"/api/projects/{project.pk}/classes/"),
        ("POST", f"/api/projects/{project.pk}/jobs/"),
        ("POST", f"/api/projects/{project.pk}/images/{image.pk}/accept-all/"),
    ]

    @FUZZ
    @given(route=st.sampled_from(routes), body=json_values)
    def attack(route, body):
        method, path = route
        response = _post_raw(client, path, _dumps(body), method)
        assert response.status_code < 500, (route, body, response.text[:300])

    attack()
    _still_up(client, proc, project)
