"""How the API knows its caller: a browser's session, or a script's `Authorization: Token <key>`."""
from rest_framework.authentication import SessionAuthentication, get_authorization_header


def token_header(request) -> bool:
    """The request names a token (`Authorization: Token …`, well-formed or not). Other schemes
    (a proxy's Basic auth in front of the app) are not the API's and are left alone."""
    scheme = get_authorization_header(request).split()[:1]
    return bool(scheme) and scheme[0].lower() == b"token"


class SessionUnlessToken(SessionAuthentication):
    """The session, unless the request names a token: then the token alone decides (a revoked
    token sent from a browser that also held a session went on as the session's user, 200, and
    the script never learnt its token was dead; the README promises 401)."""

    def authenticate(self, request):
        if token_header(request):
            return None
        return super().authenticate(request)
