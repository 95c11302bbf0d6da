import pytest
from rest_framework.test import APIClient

from .factories import make_user


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
