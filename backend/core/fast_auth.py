"""Who is calling, and their role in one project, in one raw query: for the hot routes only.

It mirrors what DRF + Django do for the API (`Authorization: Token` when sent, else the session), but
only recognises the plain, valid case: a live session of an active user whose password hash still
matches the session (and who is not on a one-time password), or a valid token of an active user.
Anything else (no credentials, a bad token, a session Django would flush or rotate, a failed CSRF
check) returns None and the request goes to Django, which gives its usual answer. Nothing about
access is cached (only the decoding of a session's data): a removed member, a changed role or
password, a logout count on the very next request.
"""
from __future__ import annotations

from dataclasses import dataclass
from django.conf import settings

from .permissions import SESSION_FLAG

_MEMBER = (
    "SELECT u.id, u.username, u.is_active, u.password, m.role FROM auth_user u "
    "LEFT JOIN projects_membership m ON m.user_id = u.id AND m.project_id = %s "
)
_BY_TOKEN = _MEMBER + "JOIN authtoken_token t ON t.user_id = u.id WHERE t.key = %s"
_BY_ID = _MEMBER + "WHERE u.id = %s"
_SESSION = "SELECT session_data FROM django_session WHERE session_key = %s AND expire_date > now()"
_BACKEND = "django.contrib.auth.backends.ModelBackend"


@dataclass(frozen=True)
class Caller:
    user_id: int
    username: str
    role: str | None  # None: not a member of the project
    session: bool  # signed in by session cookie (unsafe methods need the CSRF check)


def header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def cookies(scope) -> dict[str, str]:
    """The cookies as Django reads them (its own lenient parser, latin-1 header)."""
    from django.http.cookie import parse_cookie

    raw = header(scope, b"cookie")
    return parse_cookie(raw.decode("latin-1").rstrip("; ")) if raw else {}


async def caller(conn, scope, project_id: int) -> Caller | None:
    if names_token(scope):  # the token alone decides, session or not (core.authentication)
        key = token_key(scope)
        if key is None:
            return None
        return _token_caller(key, await (await send_token_query(conn, key, project_id)).fetchone())
    jar = cookies(scope)
    session_key = jar.get(settings.SESSION_COOKIE_NAME)
    if session_key:
        return await _by_session(conn, session_key, project_id)
    return None


def names_token(scope) -> bool:
    """The request sends `Authorization: Token …` (well-formed or not)."""
    scheme = (header(scope, b"authorization") or b"").split()[:1]
    return bool(scheme) and scheme[0].lower() == b"token"


def token_key(scope) -> str | None:
    """The key of a well-formed `Authorization: Token <key>`; else None."""
    if not names_token(scope):
        return None
    parts = header(scope, b"authorization").split()
    if len(parts) != 2:
        return None
    try:
        return parts[1].decode()
    except UnicodeDecodeError:
        return None


async def send_token_query(conn, key: str, project_id: int):
    """The token lookup's cursor (in a pipeline, its row arrives with the next sync)."""
    return await conn.execute(_BY_TOKEN, (project_id, key))


def _token_caller(key: str, row) -> Caller | None:
    if row is None or not row[2]:
        return None
    _remember(_TOKEN_USERS, key, row[0])
    return Caller(row[0], row[1], row[4], session=False)


async def _by_session(conn, session_key: str, project_id: int) -> Caller | None:
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        return None
    guess = known_session_user(session_key)
    if guess is not None:  # both rows in one round trip; a wrong guess goes the long way below
        async with conn.pipeline():
            session_cur, user_cur = await send_session_queries(conn, session_key, guess, project_id)
            found = from_session_rows(session_key, await session_cur.fetchone(), await user_cur.fetchone())
        if found is not None:
            return found
    found = await (await conn.execute(_SESSION, (session_key,))).fetchone()
    if found is None:
        return None
    signed_in = _signed_in(session_key, found[0])
    if signed_in is None:
        return None
    return _session_caller(signed_in, await (await conn.execute(_BY_ID, (project_id, signed_in[0]))).fetchone())


# session_key -> (session_data, user id, session auth hash) as last decoded in this process. Only
# the decoding is remembered (a pure function of session_data); the session row and the user row
# are read on every request, so logging out, expiry and password changes count at once.
_DECODED: dict[str, tuple[str, int, str]] = {}
_DECODED_MAX = 10_000


def _remember(cache: dict, key, value) -> None:
    """Per-process memo with a bound (cleared whole when full: entries are cheap to find again)."""
    if len(cache) >= _DECODED_MAX:
        cache.clear()
    cache[key] = value


def _signed_in(session_key: str, session_data: str) -> tuple[int, str] | None:
    """(user id, session auth hash) of a plain password sign-in, or None (Django decides)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    known = _DECODED.get(session_key)
    if known is not None and known[0] == session_data:
        return known[1], known[2]
    data = SessionStore().decode(session_data)
    if data.get(SESSION_FLAG) or data.get(BACKEND_SESSION_KEY) != _BACKEND or _BACKEND not in settings.AUTHENTICATION_BACKENDS:
        return None
    try:
        user_id = int(data[SESSION_KEY])
    except (KeyError, TypeError, ValueError):
        return None
    _remember(_DECODED, session_key, (session_data, user_id, data.get(HASH_SESSION_KEY) or ""))
    return user_id, data.get(HASH_SESSION_KEY) or ""


def _session_caller(signed_in: tuple[int, str], row) -> Caller | None:
    from django.contrib.auth import get_user_model
    from django.utils.crypto import constant_time_compare

    if row is None or not row[2] or row[0] != signed_in[0]:
        return None
    expected = get_user_model()(password=row[3]).get_session_auth_hash()
    if not constant_time_compare(signed_in[1], expected):
        return None  # Django flushes it, or rotates it under a fallback secret
    _remember(_PASSWORDS, expected, row[3])
    return Caller(row[0], row[1], row[4], session=True)


# What a request's statement may prove itself (see Proof): a token key's user, and the password
# hash a session's auth hash was last found to match. Both only name what to check; the
# statement reads the token, session and user rows itself.
_TOKEN_USERS: dict[str, int] = {}
_PASSWORDS: dict[str, str] = {}  # session auth hash -> the user's password (hash) it matched


@dataclass(frozen=True)
class Proof:
    """A caller this process has verified before, checked again (sql() + params) inside the one
    statement that serves the request (the review's write, the image detail's query): one round
    trip instead of a lookup beside it. A proof that no longer holds makes that statement write or
    return nothing; the request then takes the step-by-step way, which gives Django's answer."""
    user_id: int
    session: bool
    params: dict

    def sql(self, user: str) -> str:
        """An SQL condition: the proof still holds for the user id expression `user`."""
        if not self.session:
            return ("EXISTS (SELECT 1 FROM authtoken_token pt JOIN auth_user pu ON pu.id = pt.user_id "
                    f"WHERE pt.key = %(proof_key)s AND pu.id = {user} AND pu.is_active)")
        return (f"EXISTS (SELECT 1 FROM django_session ps JOIN auth_user pu ON pu.id = {user} "
                "WHERE ps.session_key = %(proof_key)s AND ps.session_data = %(proof_data)s "
                "AND ps.expire_date > now() AND pu.is_active AND pu.password = %(proof_password)s)")


def proof(scope) -> Proof | None:
    """The caller as last verified by this process, or None (never seen, or not the plain case)."""
    if names_token(scope):
        key = token_key(scope)
        if key is None:
            return None
        user_id = _TOKEN_USERS.get(key)
        return None if user_id is None else Proof(user_id, False, {"proof_key": key})
    key = session_key(scope)
    known = _DECODED.get(key) if key else None
    password = _PASSWORDS.get(known[2]) if known else None
    if password is None:
        return None
    return Proof(known[1], True, {"proof_key": key, "proof_data": known[0], "proof_password": password})


def session_key(scope) -> str | None:
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        return None
    return cookies(scope).get(settings.SESSION_COOKIE_NAME) or None


def known_session_user(key: str) -> int | None:
    """The user this process last decoded for this session key (a guess to query by; verified
    against the fresh session row by from_session_rows)."""
    known = _DECODED.get(key)
    return known[1] if known is not None else None


async def send_session_queries(conn, key: str, user_id: int, project_id: int):
    """The session row's and the (guessed) user's cursors, for one pipelined round trip."""
    return await conn.execute(_SESSION, (key,)), await conn.execute(_BY_ID, (project_id, user_id))


def from_session_rows(key: str, session_row, user_row) -> Caller | None:
    if session_row is None:
        return None
    signed_in = _signed_in(key, session_row[0])
    if signed_in is None:
        return None
    return _session_caller(signed_in, user_row)  # None too when the guess was another user: Django decides


async def send_lookup(conn, scope, project_id: int):
    """For a pipeline: send the caller's lookup now and return a coroutine function that reads
    the Caller (or None) once its rows arrive; None when it cannot be sent ahead (a session this
    process has not decoded yet, or no credentials: caller() then asks step by step)."""
    if names_token(scope):
        token = token_key(scope)
        if token is None:
            return None
        found = await send_token_query(conn, token, project_id)

        async def read_token() -> Caller | None:
            return _token_caller(token, await found.fetchone())

        return read_token
    key = session_key(scope)
    guess = known_session_user(key) if key else None
    if guess is None:
        return None
    session_cur, user_cur = await send_session_queries(conn, key, guess, project_id)

    async def read_session() -> Caller | None:
        return from_session_rows(key, await session_cur.fetchone(), await user_cur.fetchone())

    return read_session


def host_allowed(scope) -> bool:
    """Django's ALLOWED_HOSTS check (CommonMiddleware answers 400 otherwise)."""
    from django.http.request import split_domain_port, validate_host

    raw = header(scope, b"host")
    if raw is None:
        return False
    host = raw.decode("latin-1")
    domain, _ = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def csrf_ok(scope, body: bytes) -> bool:
    """DRF's CSRF check for a session-authenticated unsafe request, run on a Django request built
    from the ASGI scope (no database)."""
    import io

    from django.core.handlers.asgi import ASGIRequest
    from rest_framework.authentication import CSRFCheck

    request = ASGIRequest(scope, io.BytesIO(body))
    check = CSRFCheck(lambda r: None)
    check.process_request(request)
    return check.process_view(request, None, (), {}) is None
