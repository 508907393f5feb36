"""Who is calling: bearer tokens, the web session cookie, or a trusted proxy's header.

- `Authorization: Bearer <token>`: the token is looked up in `settings.api_tokens`
  (email → token), compared in constant time against every token.
- The web pages' cookie holds the same token (set by `/login`): HttpOnly and
  `SameSite=Strict`, and every form also carries a CSRF token derived from it.
- When `settings.trusted_user_header` is set, that header names the user, but only
  on a connection from one of `settings.trusted_proxies` (`worker/proxies.py`), and
  only if it is an email address (anything else is a 401, as a wrong token is).

A credential that is present but wrong is a 401, never a fall-through to the next
method. Handlers receive an `Identity`; what the user may do is the workflows' call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from fastapi import HTTPException, Request, status

from worker.proxies import is_trusted, parse_networks, peer_of
from worker.settings import Settings

SESSION_COOKIE = "handoff_session"
#: A person as the trusted header may name one: an email with nothing that could break
#: out of a visibility query (quotes, backslashes) or a log line (spaces, controls).
_HEADER_EMAIL = re.compile(r"[^\s\x00-\x1f\x7f@'\"\\]{1,64}@[^\s\x00-\x1f\x7f@'\"\\]{1,189}")


@dataclass(frozen=True)
class Identity:
    """An authenticated user and how they proved it (the secret derives CSRF tokens)."""

    email: str
    via: Literal["bearer", "cookie", "header"]
    secret: bytes

    def csrf_token(self) -> str:
        """The token a form must echo: unguessable without this session's credential."""
        return hmac.new(self.secret, b"handoff-csrf:" + self.email.encode(), "sha256").hexdigest()

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(), token or "")


class Unauthenticated(HTTPException):
    """401: no credential, or one that matches nobody."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            status.HTTP_401_UNAUTHORIZED,
            detail={"error": "unauthenticated", "reason": detail},
            headers={"WWW-Authenticate": 'Bearer realm="handoff"'},
        )


class Authenticator:
    """Resolves a request to an `Identity` (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = [
            (email.strip().lower(), token.get_secret_value().encode())
            for email, token in settings.api_tokens.items()
        ]
        self._header = settings.trusted_user_header
        self._proxies = parse_networks(settings.trusted_proxies)
        link_secret = settings.link_secret.get_secret_value() if settings.link_secret else ""
        # Header users have no secret of their own: derive CSRF from a server key.
        self._server_key = (
            hashlib.sha256(b"handoff-csrf-key:" + link_secret.encode()).digest()
            if link_secret
            else secrets.token_bytes(32)
        )
        self.secure_cookies = settings.public_url.startswith("https://")

    def user_for_token(self, token: str) -> str | None:
        """The email whose token this is; every token is compared, in constant time."""
        given, found = token.encode(), None
        for email, expected in self._tokens:
            if hmac.compare_digest(given, expected):
                found = email
        return found

    def identify(self, request: Request) -> Identity | None:
        """The caller, None if no credential was given; raises 401 for a wrong one."""
        auth = request.headers.get("authorization")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("use 'Authorization: Bearer <token>'")
            return self._from_token(token.strip(), "bearer")
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return self._from_token(cookie, "cookie")
        if not (self._header and is_trusted(peer_of(request), self._proxies)):
            return None  # the user header counts only from a listed proxy
        if user := request.headers.get(self._header, "").strip().lower():
            if not _HEADER_EMAIL.fullmatch(user):  # never repeated: it may be anything
                raise Unauthenticated(f"the {self._header} header is not an email address")
            return Identity(user, "header", self._server_key)
        return None

    def _from_token(self, token: str, via: Literal["bearer", "cookie"]) -> Identity:
        email = self.user_for_token(token)
        if email is None:
            raise Unauthenticated("unknown or revoked token")
        return Identity(email, via, token.encode())


def authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


def current_user(request: Request) -> Identity:
    """FastAPI dependency: the authenticated caller, or 401."""
    identity = authenticator(request).identify(request)
    if identity is None:
        raise Unauthenticated("missing credentials")
    return identity


def optional_user(request: Request) -> Identity | None:
    """FastAPI dependency: the caller if any credential was given (a wrong one is 401)."""
    return authenticator(request).identify(request)
