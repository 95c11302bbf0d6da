"""The sign-in throttle counts the caller's real address (black-box api6 F1): with DRF's
NUM_PROXIES unset, the whole X-Forwarded-For header was the address, so a client sending a new
one with each guess was never throttled."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


# Each test signs in from an address of its own (the throttle's counts live in Redis, per test run).
def test_a_forged_forwarded_for_does_not_escape_the_sign_in_throttle():
    client = APIClient()
    codes = [client.post("/api/auth/token/", {"username": f"nobody{i}", "password": "x"}, format="json",
                         HTTP_X_FORWARDED_FOR=f"10.0.0.{i}", REMOTE_ADDR="10.66.0.1").status_code for i in range(35)]
    assert codes[:30] == [400] * 30
    assert set(codes[30:]) == {429}, codes


def test_behind_one_trusted_proxy_the_address_it_saw_counts(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    from rest_framework.settings import api_settings

    api_settings.reload()
    try:
        client = APIClient()
        # the client forges one hop; the proxy appends what it saw (10.9.9.9) last
        codes = [client.post("/api/auth/token/", {"username": f"nobody{i}", "password": "x"}, format="json",
                             HTTP_X_FORWARDED_FOR=f"1.1.1.{i}, 10.9.9.9", REMOTE_ADDR="10.66.0.2").status_code
                 for i in range(32)]
        assert codes.count(429) == 2, codes
        other = client.post("/api/auth/token/", {"username": "nobody", "password": "x"}, format="json",
                            HTTP_X_FORWARDED_FOR="10.8.8.8", REMOTE_ADDR="10.66.0.2")
        assert other.status_code == 400  # another address behind the proxy is not throttled
    finally:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
        api_settings.reload()
