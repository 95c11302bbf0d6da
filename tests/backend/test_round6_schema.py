"""The OpenAPI schema says what the server takes (black-box api6 F9): DELETEs need `version`,
which the schema left out (a generated client could not delete), and accept-all was offered
page/page_size, which the server refuses. Built without warnings or errors."""
from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    out = tmp_path_factory.mktemp("schema") / "openapi.yml"
    call_command("spectacular", "--file", str(out), "--fail-on-warn", "--validate")
    return yaml.safe_load(out.read_text())


def _query(schema, path, method):
    return {p["name"] for p in schema["paths"][path][method].get("parameters", []) if p["in"] == "query"}


@pytest.mark.parametrize("path", ["/api/projects/{id}/", "/api/projects/{project_pk}/classes/{id}/",
                                  "/api/projects/{project_pk}/annotations/{id}/", "/api/projects/{project_pk}/images/{id}/"])
def test_deletes_that_need_a_version_say_so(schema, path):
    assert "version" in _query(schema, path, "delete")


def test_accept_all_offers_only_what_it_takes(schema):
    assert _query(schema, "/api/projects/{project_pk}/images/{id}/accept-all/", "post") == {"force"}


@pytest.mark.parametrize("component, field", [
    ("Annotation", "class_name"), ("AnnotationEvent", "actor"), ("PrelabelJob", "created_by"),
])
def test_fields_the_server_answers_null_are_nullable(schema, component, field):
    """Black-box round 16: an object without a class, an event by a job or an import and a job of a
    deleted user answer null, which the schema declared a plain string."""
    assert schema["components"]["schemas"][component]["properties"][field].get("nullable") is True
