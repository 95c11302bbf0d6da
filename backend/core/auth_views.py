"""Browser login (session + CSRF) and script tokens."""
import hashlib
import math
import secrets
import time
import unicodedata

from django.contrib.auth import authenticate, get_user_model, login, logout, update_session_auth_hash
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.middleware.csrf import get_token
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.decorators import api_view, permission_classes, throttle_classes
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from . import events
from .accounts import change_own_password, must_change_password
from .errors import DomainError
from .permissions import SESSION_FLAG
from .strict import StrictFieldsMixin, empty_body


class LoginSerializer(StrictFieldsMixin, serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    must_change_password = serializers.BooleanField(help_text="Signed in with a one-time password: set your own first.")


class PasswordChangeSerializer(StrictFieldsMixin, serializers.Serializer):
    current_password = serializers.CharField(style={"input_type": "password"})
    new_password = serializers.CharField(style={"input_type": "password"}, max_length=128)


class LoginThrottle(AnonRateThrottle):
    rate = "30/min"


# Per account, whatever address the guesses come from (LoginThrottle counts per address): after
# this many wrong passwords in SIGN_IN_LOCKOUT_S the account refuses every sign-in, the right
# password too, until the window ends. A success clears the count.
SIGN_IN_FAILURES_MAX = 10
SIGN_IN_LOCKOUT_S = 15 * 60


def _failures_key(username: str) -> str:
    # One account whatever the spelling it is typed in (as _account_name finds it).
    folded = unicodedata.normalize("NFKC", username).strip().lower()
    return "sign-in-failures:" + hashlib.sha256(folded.encode()).hexdigest()


class LockedOut(Throttled):
    """A 429 whose text is the whole message: DRF's Throttled appends "Expected available in 900
    seconds.", which the sign-in page showed as is. The wait still goes out as Retry-After."""

    def __init__(self, *, wait: float, detail: str):
        super().__init__(detail=detail)
        self.wait = math.ceil(wait)


def wait_text(seconds: float) -> str:
    """ "15 minutes", "1 minute", "30 seconds": a wait in the words a person reads."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _refuse_if_locked(key: str, what: str) -> None:
    """`what`: what failed ("sign-ins", "password attempts"). The lock lifts when the window
    that the first failure opened ends; nobody can lift it sooner (a new password set meanwhile is
    refused too), so the message offers only the wait."""
    if (cache.get(key) or 0) >= SIGN_IN_FAILURES_MAX:
        started = cache.get(key + ":since")
        left = SIGN_IN_LOCKOUT_S if started is None else started + SIGN_IN_LOCKOUT_S - time.time()
        left = min(SIGN_IN_LOCKOUT_S, max(1, left))
        raise LockedOut(wait=left, detail=(
            f"Too many failed {what}: this account is locked. Try again in {wait_text(left)}."))


def _count_failure(key: str) -> None:
    # The window starts at the first failure; its start is kept to say how long the lock has left.
    if cache.add(key, 0, SIGN_IN_LOCKOUT_S):
        cache.set(key + ":since", time.time(), SIGN_IN_LOCKOUT_S)
    cache.incr(key)


# A browser that has signed in to an account gets a signed cookie naming that account and the
# device (OWASP's "device cookie"): the account-wide lock does not apply to it, its own wrong
# passwords lock it alone. Anyone could otherwise keep any account, `admin` too, locked for good
# with 10 requests every 15 minutes, without signing in.
DEVICE_COOKIE = "razmetka_device"
DEVICE_COOKIE_AGE_S = 365 * 24 * 3600
_DEVICE_SALT = "razmetka.sign-in-device"


def _device_of(request, account_key: str) -> str | None:
    """The trusted device's id when the request carries this account's device cookie, else None."""
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        value = signing.loads(raw, salt=_DEVICE_SALT, max_age=DEVICE_COOKIE_AGE_S)
    except signing.BadSignature:
        return None
    return value.get("d") if isinstance(value, dict) and value.get("a") == account_key[-32:] else None


def _account_name(typed: str) -> str:
    """The account a typed name means. Names are unique whatever their case and are stored NFKC
    (as Django's create_user folds them), and adding a member finds them so; sign-in looked up
    the exact spelling only, and 'NINA' or a full-width 'ｎｉｎａ' was "Wrong username or password"."""
    users = get_user_model().objects
    if users.filter(username=typed).exists():
        return typed
    folded = unicodedata.normalize("NFKC", typed.strip())
    found = list(users.filter(username__iexact=folded).values_list("username", flat=True)[:2])
    return found[0] if len(found) == 1 else typed


def _authenticate(request):
    serializer = LoginSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    account = _failures_key(serializer.validated_data["username"])
    device = _device_of(request, account)
    key = f"{account}:device:{device}" if device else account
    _refuse_if_locked(key, "sign-ins" if not device else "sign-ins from this browser")
    data = dict(serializer.validated_data, username=_account_name(serializer.validated_data["username"]))
    user = authenticate(request, **data)
    if user is None:
        _count_failure(key)
    else:
        cache.delete_many([key, key + ":since"])
        request._device_cookie = signing.dumps({"a": account[-32:], "d": device or secrets.token_hex(8)}, salt=_DEVICE_SALT)
    return user


def _remember_device(request, response: Response) -> Response:
    """Set after a successful sign-in (see DEVICE_COOKIE)."""
    value = getattr(request, "_device_cookie", None)
    if value:
        response.set_cookie(DEVICE_COOKIE, value, max_age=DEVICE_COOKIE_AGE_S, httponly=True, samesite="Lax",
                            secure=request.is_secure())
    return response


def _same_origin(request) -> bool:
    from django.conf import settings

    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return True  # not a browser's cross-site form (scripts send no Origin)
    own = f"{request.scheme}://{request.get_host()}"
    return origin == own or origin in getattr(settings, "CSRF_TRUSTED_ORIGINS", [])


def _bad_credentials() -> Response:
    return Response({"detail": "Wrong username or password.", "code": "bad_credentials"}, status=400)


def _me(user) -> dict:
    return {
        "id": user.pk, "username": user.username, "is_staff": user.is_staff,
        "must_change_password": must_change_password(user),
    }


@extend_schema(request=LoginSerializer, responses=MeSerializer)
@api_view(["POST"])
@permission_classes([AllowAny])
@throttle_classes([LoginThrottle])
def login_view(request):
    if not _same_origin(request):
        # Login CSRF: another site's page must not sign a visitor into an account it chose (their
        # uploads and labels would land there). A browser always says where a POST comes from.
        return Response({"detail": "Sign-in from another site is refused.", "code": "foreign_origin"}, status=403)
    user = _authenticate(request)
    if user is None:
        return _bad_credentials()
    login(request, user)
    me = _me(user)
    if me["must_change_password"]:
        request.session[SESSION_FLAG] = True
    return _remember_device(request, Response(me))


@extend_schema(request=None, responses={204: None})
@api_view(["POST"])
@permission_classes([IsAuthenticated])  # also on a one-time password
def logout_view(request):
    empty_body(request)
    _release_claims(request.user)
    if isinstance(request.auth, Token):
        request.auth.delete()  # a script's sign-out revokes its token (a leaked one stayed valid for ever)
    elif request.session.session_key:
        events.signed_out(user_id=request.user.pk, session_key=request.session.session_key)
    logout(request)
    return Response(status=204)


def _release_claims(user) -> None:
    """Signing out lets go of the images one held: the page's own release came after the sign-out
    and was refused, so the image stayed locked to others for the claim's five minutes."""
    from backend.images.claims import release_held
    from backend.images.models import Image

    release_held(Image.objects.filter(claimed_by=user))


@extend_schema(responses=MeSerializer)
@extend_schema(methods=["PATCH"], request=PasswordChangeSerializer, responses=MeSerializer)
@api_view(["GET", "PATCH"])
@permission_classes([AllowAny])
def me_view(request):
    """GET: who is signed in. PATCH: change one's own password (the one-time one at first)."""
    get_token(request)  # sets the CSRF cookie the browser app sends back
    if not request.user.is_authenticated:
        return Response({"detail": "Not signed in.", "code": "not_authenticated"}, status=401)
    if request.method == "PATCH":
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # Wrong current passwords count with wrong sign-ins: a stolen token or session could
        # otherwise guess the real password here without limit.
        key = _failures_key(request.user.get_username())
        _refuse_if_locked(key, "password attempts")
        try:
            change_own_password(user=request.user, **serializer.validated_data)
        except DomainError as exc:
            if exc.extra.get("field") == "current_password":
                _count_failure(key)
            raise
        update_session_auth_hash(request, request.user)  # stay signed in with the new password
        # A new password ends every other way in, the API token too, even the one this change came
        # with: a user has one token, and someone who got it with the old password kept it. A
        # change made with a token answers the new one.
        Token.objects.filter(user=request.user).delete()
        events.signed_out(user_id=request.user.pk)
        request.session.pop(SESSION_FLAG, None)
        if isinstance(request.auth, Token):
            return Response({**_me(request.user), "token": Token.objects.create(user=request.user).key})
    return Response(_me(request.user))


me_view = ensure_csrf_cookie(me_view)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


@extend_schema(request=LoginSerializer, responses=TokenSerializer)
@api_view(["POST"])
@permission_classes([AllowAny])
@throttle_classes([LoginThrottle])
def token_view(request):
    user = _authenticate(request)
    if user is None:
        return _bad_credentials()
    with transaction.atomic():
        # Locked as a password reset locks it: the token is made for the password just checked,
        # or not at all (one asked for during a reset outlived it).
        locked = type(user).objects.select_for_update().filter(pk=user.pk, password=user.password).first()
        if locked is None:
            return _bad_credentials()  # the password changed since it was checked
        if must_change_password(locked):
            return Response({"detail": "Sign in to the app and set your own password before asking for a token.",
                             "code": "password_change_required"}, status=403)
        token, _ = Token.objects.get_or_create(user=locked)
    return Response({"token": token.key})
