"""How the Salesforce connector logs in: the auth modes, and the adapter that sends
simple-salesforce's hard-coded login host to the configured one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import requests
from pydantic import BaseModel, ConfigDict, SecretStr, model_validator
from requests.adapters import HTTPAdapter


class SalesforceAuth(BaseModel):
    """How to log in. Secrets are `SecretStr` and never logged.

    - ``client_credentials``: consumer_key, consumer_secret and a My Domain ``domain``
      (for example ``acme.my``; Salesforce refuses this flow on ``login``/``test``).
    - ``jwt_bearer``: username, consumer_key and private_key_file or private_key.
    - ``password``: username, password and security_token (SOAP partner login), or with
      consumer_key and consumer_secret the OAuth password grant.
    - ``session``: a session_id and the instance_url it belongs to (no re-login possible).
    """

    model_config = ConfigDict(frozen=True)

    mode: Literal["client_credentials", "jwt_bearer", "password", "session"]
    domain: str = "login"
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    private_key_file: Path | None = None
    private_key: SecretStr | None = None
    session_id: SecretStr | None = None
    instance_url: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> SalesforceAuth:
        needs = {
            "client_credentials": ("consumer_key", "consumer_secret"),
            "jwt_bearer": ("username", "consumer_key"),
            "password": ("username", "password"),
            "session": ("session_id", "instance_url"),
        }[self.mode]
        missing = [name for name in needs if getattr(self, name) is None]
        if self.mode == "jwt_bearer" and self.private_key_file is None and not self.private_key:
            missing.append("private_key_file or private_key")
        if self.mode == "client_credentials" and self.domain in ("login", "test"):
            missing.append("domain (a My Domain such as 'acme.my', not login/test)")
        if missing:
            raise ValueError(f"Salesforce auth mode {self.mode!r} needs: {', '.join(missing)}")
        return self

    def client_kwargs(self) -> dict[str, Any]:
        """The simple-salesforce constructor arguments for this mode."""

        def secret(value: SecretStr | None) -> str | None:
            return None if value is None else value.get_secret_value()

        if self.mode == "session":
            return {"session_id": secret(self.session_id), "instance_url": self.instance_url}
        kw: dict[str, Any] = {"domain": self.domain, "consumer_key": self.consumer_key}
        if self.mode == "client_credentials":
            return kw | {"consumer_secret": secret(self.consumer_secret)}
        if self.mode == "jwt_bearer":
            key = {"privatekey_file": str(self.private_key_file)} if self.private_key_file else {}
            return kw | {"username": self.username, "privatekey": secret(self.private_key)} | key
        kw |= {"username": self.username, "password": secret(self.password)}
        if self.consumer_key:
            return kw | {"consumer_secret": secret(self.consumer_secret)}
        return kw | {"security_token": secret(self.security_token) or ""}


class LoginHostAdapter(HTTPAdapter):
    """Sends login calls (hard-coded to ``https://{domain}.salesforce.com``) to `login_host`.

    Only the host changes: the scheme stays https and certificates are still verified.
    Every request also gets a default timeout, which simple-salesforce never sets.
    """

    def __init__(self, login_host: str | None, timeout_s: float) -> None:
        super().__init__()
        self.login_host, self.timeout_s = login_host, timeout_s

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        if self.login_host and (url.hostname or "").endswith(".salesforce.com"):
            request.url = urlunsplit(url._replace(netloc=self.login_host))
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().send(request, **kwargs)
