import itertools

import pytest
from rest_framework.test import APIClient

from .factories import make_user

_addresses = itertools.count(1)


@pytest.fixture(autouse=True)
def own_client_address(monkeypatch):
    """Each test's clients come from an address of its own: the sign-in throttle (30 a minute per
    address) otherwise counts every test's sign-ins from 127.0.0.1 together, and a run that signs
    in a little more within one minute got 429s in unrelated tests. A test that names an address
    (REMOTE_ADDR=…) keeps it."""
    from django.test.client import RequestFactory

    n = next(_addresses)
    address = f"10.{200 + n // 65536 % 50}.{n // 256 % 256}.{n % 256}"
    base_environ = RequestFactory._base_environ

    def environ(self, **request):
        given = "REMOTE_ADDR" in request or "REMOTE_ADDR" in self.defaults
        return base_environ(self, **request) if given else base_environ(self, REMOTE_ADDR=address, **request)

    monkeypatch.setattr(RequestFactory, "_base_environ", environ)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # The real hasher is deliberately slow; the suite creates hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def client_for():
    """An API client signed in (session) as the given user."""

    def build(user) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return build


@pytest.fixture
def admin_user(db):
    return make_user("alice")
