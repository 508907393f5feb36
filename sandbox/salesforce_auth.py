"""Logins for the Salesforce sandbox: OAuth token flows, the partner SOAP login and sessions.

The flows answer in the shapes simple-salesforce parses: OAuth JSON with
``access_token``/``instance_url`` (errors as ``{"error","error_description"}`` with 400),
and the partner ``loginResponse`` with ``sessionId``/``serverUrl`` (faults as HTTP 500 with
``sf:exceptionCode``/``sf:exceptionMessage``). Sessions are opaque tokens held in memory;
`Sessions.expire_all` revokes every issued one, and a new login always gets a fresh token.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.salesforce_errors import SfError
from sandbox.salesforce_schema import (
    API_PASSWORD,
    API_SECURITY_TOKEN,
    API_USERNAME,
    CONSUMER_KEY,
    CONSUMER_SECRET,
)
from sandbox.salesforce_store import Store
from sandbox.salesforce_values import checksum_id

ORG_ID = checksum_id("00DHd0000000001")
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER_NS = "urn:partner.soap.sforce.com"


@dataclass
class Sessions:
    """Issued session ids → user ids; the sandbox token is a never-expiring session."""

    static_token: str
    static_user: str
    _issued: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, user_id: str) -> str:
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(24)}"
        with self._lock:
            self._issued[token] = user_id
        return token

    def user(self, token: str) -> str | None:
        if secrets.compare_digest(token, self.static_token):
            return self.static_user
        with self._lock:
            return self._issued.get(token)

    def expire_all(self) -> None:
        with self._lock:
            self._issued.clear()


class Credentials:
    """Connected apps (consumer key → secret, certificate, run-as user) and passwords."""

    def __init__(self, store: Store) -> None:
        self.store = store
        if store.meta("apps") is None:
            self.register_app(CONSUMER_KEY, CONSUMER_SECRET, None, API_USERNAME)
            self.set_password(API_USERNAME, API_PASSWORD, API_SECURITY_TOKEN)

    def _load(self, key: str) -> dict[str, dict[str, Any]]:
        data: dict[str, dict[str, Any]] = json.loads(self.store.meta(key) or "{}")
        return data

    def register_app(
        self, consumer_key: str, secret: str | None, certificate: str | None, run_as: str
    ) -> None:
        apps = self._load("apps")
        apps[consumer_key] = {"secret": secret, "certificate": certificate, "run_as": run_as}
        self.store.set_meta("apps", json.dumps(apps))

    def set_password(self, username: str, password: str, security_token: str) -> None:
        users = self._load("passwords")
        users[username.lower()] = {"password": password, "token": security_token}
        self.store.set_meta("passwords", json.dumps(users))

    def app(self, consumer_key: str) -> dict[str, Any] | None:
        return self._load("apps").get(consumer_key)

    def password_ok(self, username: str, given: str) -> bool:
        entry = self._load("passwords").get(username.lower())
        if entry is None:
            return False
        accepted = (entry["password"], entry["password"] + entry["token"])
        return any(secrets.compare_digest(given, a) for a in accepted)

    def user_id(self, username: str) -> str | None:
        for user in self.store.records("User"):
            if str(user["Username"]).lower() == username.lower() and user["IsActive"]:
                return str(user["Id"])
        return None


class LoginError(Exception):
    """An OAuth failure: the ``error`` code and its description."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


class Auth:
    """The login endpoints and bearer-token checks, bound to one sandbox's state."""

    def __init__(self, store: Store, sessions: Sessions, api_version: str) -> None:
        self.credentials = Credentials(store)
        self.sessions = sessions
        self.api_version = api_version

    def authenticate(self, request: Request) -> str:
        """The user id behind the request's bearer token, or a 401 INVALID_SESSION_ID.
        A composite's subrequests run as the user the composite itself authenticated as,
        as on Salesforce: a session ended mid-composite does not fail half of it."""
        already = request.scope.get("state", {}).get("composite_user")
        if already is not None:
            return str(already)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = self.sessions.user(token) if scheme.lower() in ("bearer", "oauth") else None
        if user is None:
            raise SfError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return user

    # -- OAuth -----------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        try:
            user_id = self._grant(form, request.headers.get("authorization", ""))
        except LoginError as exc:
            return JSONResponse(
                {"error": exc.error, "error_description": exc.description}, status_code=400
            )
        base = _base_url(request)
        return JSONResponse(
            {
                "access_token": self.sessions.issue(user_id),
                "instance_url": base,
                "id": f"{base}/id/{ORG_ID}/{user_id}",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
        )

    def _grant(self, form: Mapping[str, str], authorization: str) -> str:
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            key, secret = form.get("client_id", ""), form.get("client_secret", "")
            if authorization.lower().startswith("basic "):
                try:
                    decoded = base64.b64decode(authorization[6:], validate=True).decode()
                except (binascii.Error, UnicodeDecodeError) as exc:
                    raise LoginError("invalid_client", "malformed basic credentials") from exc
                key, _, secret = decoded.partition(":")
            app = self._app(key, secret)
            return self._user(app["run_as"])
        if grant == "password":
            self._app(form.get("client_id", ""), form.get("client_secret", ""))
            username = form.get("username", "")
            if not self.credentials.password_ok(username, form.get("password", "")):
                raise LoginError("invalid_grant", "authentication failure")
            return self._user(username)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._jwt(form.get("assertion", ""))
        raise LoginError("unsupported_grant_type", "grant type not supported")

    def _app(self, key: str, secret: str) -> dict[str, Any]:
        app = self.credentials.app(key)
        if app is None:
            raise LoginError("invalid_client_id", "client identifier invalid")
        if not app["secret"] or not secrets.compare_digest(secret, app["secret"]):
            raise LoginError("invalid_client", "invalid client credentials")
        return app

    def _user(self, username: str) -> str:
        user_id = self.credentials.user_id(username)
        if user_id is None:
            raise LoginError("invalid_grant", "user not found or inactive")
        return user_id

    def _jwt(self, assertion: str) -> str:
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise LoginError("invalid_grant", "invalid assertion") from exc
        app = self.credentials.app(str(claims.get("iss", "")))
        if app is None or not app["certificate"]:
            raise LoginError("invalid_client_id", "client identifier invalid")
        try:
            claims = jwt.decode(
                assertion,
                _public_key(app["certificate"]),
                algorithms=["RS256"],
                options={"require": ["iss", "sub", "aud", "exp"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise LoginError("invalid_grant", "expired authorization code") from exc
        except (jwt.PyJWTError, ValueError) as exc:
            raise LoginError("invalid_grant", "invalid assertion") from exc
        aud = str(claims["aud"])
        if not (aud.startswith("https://") and aud.endswith(".salesforce.com")):
            raise LoginError("invalid_grant", "audience is invalid")
        return self._user(str(claims["sub"]))

    # -- SOAP partner login -------------------------------------------------------------
    async def soap_login(self, request: Request) -> Response:
        body = await request.body()
        # The stdlib parser never fetches external entities and expat >= 2.4.1 caps entity
        # expansion; DOCTYPEs are refused outright, so hostile XML cannot blow up here.
        if b"<!DOCTYPE" in body.upper():
            return _soap_fault("INVALID_LOGIN", "DOCTYPE is not allowed", "sf:INVALID_LOGIN")
        try:
            root = ET.fromstring(body)  # noqa: S314
        except ET.ParseError:
            return _soap_fault("INVALID_LOGIN", "malformed SOAP envelope", "soapenv:Client")
        username = _text(root, "username")
        password = _text(root, "password")
        user_id = self.credentials.user_id(username) if username else None
        if user_id is None or not self.credentials.password_ok(username, password):
            return _soap_fault(
                "INVALID_LOGIN",
                "Invalid username, password, security token; or user locked out.",
                "sf:INVALID_LOGIN",
            )
        return _soap_login_response(
            _base_url(request), self.api_version, self.sessions.issue(user_id), user_id, username
        )


def _base_url(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"https://{host}"


def _public_key(pem: str) -> Any:
    data = pem.encode()
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return load_pem_public_key(data)


def _text(root: ET.Element, local: str) -> str:
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == local:
            return element.text or ""
    return ""


def _soap_login_response(
    base: str, version: str, session_id: str, user_id: str, username: str
) -> Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns="{PARTNER_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><loginResponse><result>"
        f"<metadataServerUrl>{base}/services/Soap/m/{version}/{ORG_ID[:15]}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{base}/services/Soap/u/{version}/{ORG_ID[:15]}</serverUrl>"
        f"<sessionId>{escape(session_id)}</sessionId><userId>{user_id}</userId>"
        f"<userInfo><organizationId>{ORG_ID}</organizationId><userId>{user_id}</userId>"
        f"<userName>{escape(username)}</userName><userEmail>{escape(username)}</userEmail>"
        "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(xml, media_type="text/xml; charset=utf-8")


def _soap_fault(code: str, message: str, faultcode: str) -> Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body><soapenv:Fault><faultcode>{faultcode}</faultcode>"
        f"<faultstring>{code}: {escape(message)}</faultstring><detail>"
        '<sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(xml, status_code=500, media_type="text/xml; charset=utf-8")
