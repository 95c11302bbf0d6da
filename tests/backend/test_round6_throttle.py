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


def test_a_locked_account_still_lets_in_a_browser_that_signed_in_to_it_before(client_for):
    """Anyone could keep any account (the default `admin` too) locked for good with 10 wrong
    passwords every 15 minutes, without signing in (black-box api6 F16)."""
    from .factories import make_user

    make_user("victim6", password="right-pass-606")
    mine = APIClient()
    assert mine.post("/api/auth/login/", {"username": "victim6", "password": "right-pass-606"}, format="json",
                     REMOTE_ADDR="10.66.1.1").status_code == 200
    assert mine.cookies.get("razmetka_device") and mine.cookies["razmetka_device"]["httponly"]
    mine.post("/api/auth/logout/", format="json", REMOTE_ADDR="10.66.1.1")
    attacker = APIClient()
    for i in range(10):
        attacker.post("/api/auth/token/", {"username": "victim6", "password": f"guess-{i}"}, format="json",
                      REMOTE_ADDR=f"10.66.2.{i}")
    locked = attacker.post("/api/auth/login/", {"username": "victim6", "password": "right-pass-606"}, format="json",
                           REMOTE_ADDR="10.66.2.99")
    assert locked.status_code == 429
    back = mine.post("/api/auth/login/", {"username": "victim6", "password": "right-pass-606"}, format="json",
                     REMOTE_ADDR="10.66.1.1")
    assert back.status_code == 200, back.content  # the owner's browser is not locked out
    # Its own wrong passwords lock that browser alone
    mine.post("/api/auth/logout/", format="json", REMOTE_ADDR="10.66.1.1")
    for i in range(10):
        mine.post("/api/auth/login/", {"username": "victim6", "password": f"mine-{i}"}, format="json", REMOTE_ADDR="10.66.1.2")
    again = mine.post("/api/auth/login/", {"username": "victim6", "password": "right-pass-606"}, format="json",
                      REMOTE_ADDR="10.66.1.3")
    assert again.status_code == 429 and "this browser" in again.json()["detail"]


def test_a_device_cookie_of_another_account_or_forged_does_not_unlock(client_for):
    from .factories import make_user

    make_user("victim7", password="right-pass-707")
    make_user("other7", password="right-pass-708")
    other = APIClient()
    assert other.post("/api/auth/login/", {"username": "other7", "password": "right-pass-708"}, format="json",
                      REMOTE_ADDR="10.66.3.1").status_code == 200
    for i in range(10):
        APIClient().post("/api/auth/token/", {"username": "victim7", "password": f"guess-{i}"}, format="json",
                         REMOTE_ADDR=f"10.66.4.{i}")
    assert other.post("/api/auth/login/", {"username": "victim7", "password": "right-pass-707"}, format="json",
                      REMOTE_ADDR="10.66.3.1").status_code == 429
    forged = APIClient()
    forged.cookies["razmetka_device"] = "e30:1:abc"
    assert forged.post("/api/auth/login/", {"username": "victim7", "password": "right-pass-707"}, format="json",
                       REMOTE_ADDR="10.66.3.2").status_code == 429
