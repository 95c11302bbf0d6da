"""How the OpenAPI schema names core.authentication.SessionUnlessToken: the session scheme it is
(drf-spectacular matches authenticators by class; an unknown one fails the schema build)."""
from drf_spectacular.authentication import SessionScheme


class SessionUnlessTokenScheme(SessionScheme):
    target_class = "backend.core.authentication.SessionUnlessToken"
