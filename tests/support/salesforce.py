"""Helpers for the Salesforce tests: a TLS sandbox on a free port, its control endpoints,
connectors in every auth mode, an RSA key with a certificate for the JWT flow, the sales
rep's own session, the connector test modules' fixtures (`connector_fixtures`), and (for
integration tests) Handoff's processes using a sandbox as their org.

Test modules import these and wrap them in their own pytest fixtures; the connector
modules bind the ready-made ones of `connector_fixtures`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import simple_salesforce
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from simple_salesforce.format import format_soql

from connectors.salesforce import LoginHostAdapter, SalesforceAuth, SalesforceConnector
from sandbox.common import FaultSettings, free_port, serve_in_thread
from sandbox.salesforce import create_app, make_ca
from sandbox.salesforce_schema import (
    API_PASSWORD,
    API_SECURITY_TOKEN,
    API_USERNAME,
    CONSUMER_KEY,
    CONSUMER_SECRET,
)

if TYPE_CHECKING:
    from temporalio.testing import WorkflowEnvironment

    from support.processes import Stack

TOKEN = "handoff-sandbox"
JWT_CONSUMER_KEY = "handoff-jwt-app"
API = "/services/data/v59.0"


@dataclass
class Sandbox:
    """A running TLS sandbox: its base URL, CA file and an HTTP session that trusts it."""

    base: str
    ca_pem: Path
    http: requests.Session
    private_key_pem: bytes = b""
    app: Any = None
    recorded_sleeps: list[float] = field(default_factory=list)
    connectors: list[SalesforceConnector] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.base.removeprefix("https://")

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.base}/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def faults(self, **settings: Any) -> None:
        self.control("POST", "faults", FaultSettings(**settings).model_dump())

    def activity(self, opportunity_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", f"opportunities/{opportunity_id}/activity")
        return result

    def rest(self, method: str, path: str, **kw: Any) -> requests.Response:
        """A raw REST call with the sandbox token (for wire-level checks)."""
        headers = {"Authorization": f"Bearer {TOKEN}", **kw.pop("headers", {})}
        return self.http.request(method, f"{self.base}{path}", headers=headers, **kw)

    def reset(self) -> None:
        self.faults()
        self.control("POST", "locks", {"count": 0, "rate": 0.0})
        self.control("POST", "limits", {"allocation": 15_000, "used": 0})


def rsa_key_and_certificate() -> tuple[bytes, bytes]:
    """A fresh RSA private key (PEM) and a self-signed certificate for it (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "handoff-jwt")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def store_with_unique_ids(path: Path) -> Path:
    """A seeded org whose new record ids start at a random point, so workflow ids
    (`lead-to-cash-salesforce-<id>`) never collide between tests on a shared server."""
    from sandbox.salesforce_store import Store

    store = Store(path)
    store.set_meta("id_counter", str(10**6 + uuid.uuid4().int % 10**9))
    return path


@contextmanager
def running_sandbox(state_dir: Path, store_path: Path | None = None) -> Iterator[Sandbox]:
    """Serve a fresh sandbox over HTTPS with a JWT connected app registered."""
    tls = make_ca(state_dir)
    app = create_app(store_path, token=TOKEN)
    with serve_in_thread(
        app, port=free_port(), ssl_certfile=str(tls.cert_pem), ssl_keyfile=str(tls.key_pem)
    ) as base:
        http = requests.Session()
        http.verify = str(tls.ca_pem)
        http.trust_env = False
        sandbox = Sandbox(base=base, ca_pem=tls.ca_pem, http=http, app=app)
        key_pem, cert_pem = rsa_key_and_certificate()
        sandbox.private_key_pem = key_pem
        sandbox.control(
            "POST",
            "connected-apps",
            {"consumer_key": JWT_CONSUMER_KEY, "certificate": cert_pem.decode()},
        )
        try:
            yield sandbox
        finally:
            # Idle keep-alive connections would hold up the server's shutdown.
            for connector in sandbox.connectors:
                connector.close()
            http.close()


def stack_env(sandbox: Sandbox, *, feed: bool = True) -> dict[str, str]:
    """The environment a `handoff` process needs to use this sandbox as its org (with
    `feed`, the change feed polled every second)."""
    env = {
        "HANDOFF_SALESFORCE_LOGIN_HOST": sandbox.host,
        "HANDOFF_SALESFORCE_CA_FILE": str(sandbox.ca_pem),
        "HANDOFF_SALESFORCE_DOMAIN": "handoff-sandbox.my",
        "HANDOFF_SALESFORCE_CONSUMER_KEY": "handoff-sandbox-consumer",
        "HANDOFF_SALESFORCE_CONSUMER_SECRET": "handoff-sandbox-secret",
    }
    return env | ({"HANDOFF_FEED_POLL_S": "1"} if feed else {})


@contextmanager
def salesforce_stack(
    dev_env: WorkflowEnvironment, state_dir: Path
) -> Iterator[tuple[Sandbox, Stack]]:
    """A fresh org (its record ids unique to the test) and a `Stack` in `state_dir` on
    the dev server whose processes use it (`stack_env`: the change feed polled every
    second), with the worker running."""
    from support.processes import stack

    address = dev_env.client.service_client.config.target_host
    with (
        running_sandbox(state_dir, store_with_unique_ids(state_dir / "org.sqlite3")) as sandbox,
        stack(address, state_dir, crm="salesforce", extra_env=stack_env(sandbox)) as s,
    ):
        s.worker()
        yield sandbox, s


def auth_for(sandbox: Sandbox, mode: str, tmp_path: Path | None = None) -> SalesforceAuth:
    """Credentials that the sandbox accepts, for each auth mode."""
    if mode == "client_credentials":
        return SalesforceAuth(
            mode="client_credentials",
            domain="handoff-sandbox.my",
            consumer_key=CONSUMER_KEY,
            consumer_secret=CONSUMER_SECRET,
        )
    if mode == "jwt_bearer":
        key_args: dict[str, Any] = {"private_key": sandbox.private_key_pem.decode()}
        if tmp_path is not None:
            key_file = tmp_path / "jwt-key.pem"
            key_file.write_bytes(sandbox.private_key_pem)
            key_args = {"private_key_file": key_file}
        return SalesforceAuth(
            mode="jwt_bearer", username=API_USERNAME, consumer_key=JWT_CONSUMER_KEY, **key_args
        )
    if mode == "password":
        return SalesforceAuth(
            mode="password",
            username=API_USERNAME,
            password=API_PASSWORD,
            security_token=API_SECURITY_TOKEN,
        )
    if mode == "oauth_password":
        return SalesforceAuth(
            mode="password",
            username=API_USERNAME,
            password=API_PASSWORD + API_SECURITY_TOKEN,
            consumer_key=CONSUMER_KEY,
            consumer_secret=CONSUMER_SECRET,
        )
    if mode == "session":
        return SalesforceAuth(mode="session", session_id=TOKEN, instance_url=sandbox.base)
    raise ValueError(mode)


def issued_session_id(sandbox: Sandbox) -> str:
    """A session id from the OAuth password grant (it can expire, unlike the sandbox token)."""
    response = sandbox.http.post(
        f"{sandbox.base}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": CONSUMER_KEY,
            "client_secret": CONSUMER_SECRET,
            "username": API_USERNAME,
            "password": API_PASSWORD + API_SECURITY_TOKEN,
        },
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def connector_for(sandbox: Sandbox, auth: SalesforceAuth, **kw: Any) -> SalesforceConnector:
    """A connector that logs in through the sandbox and records its backoff sleeps."""
    kw.setdefault("sleep", sandbox.recorded_sleeps.append)
    connector = SalesforceConnector(auth, login_host=sandbox.host, ca_file=sandbox.ca_pem, **kw)
    sandbox.connectors.append(connector)
    return connector


def seeded_opportunity(sandbox: Sandbox, name: str) -> dict[str, Any]:
    """A seeded Opportunity by name (via SOQL over the wire)."""
    q = format_soql("SELECT Id, Name, AccountId, OwnerId FROM Opportunity WHERE Name = {}", name)
    records: list[dict[str, Any]] = sandbox.rest("GET", f"{API}/query/", params={"q": q}).json()[
        "records"
    ]
    return records[0]


def sales_rep_session(sandbox: Sandbox) -> str:
    """Log in as the sales rep (SOAP), so changes are theirs, not Handoff's API user's."""
    sandbox.control(
        "POST",
        "credentials",
        {"username": "sam.rep@example.com", "password": "rep-pass", "security_token": "TOK"},
    )
    with requests.Session() as http:
        http.verify, http.trust_env = str(sandbox.ca_pem), False
        http.mount("https://", LoginHostAdapter(sandbox.host, timeout_s=10))
        sf = simple_salesforce.Salesforce(
            username="sam.rep@example.com",
            password="rep-pass",
            security_token="TOK",
            session=http,
            domain="login",
        )
        return str(sf.session_id)


def rep_headers(sandbox: Sandbox) -> dict[str, str]:
    """Authorization as the sales rep's own session, so the org records a change as the
    rep's, not Handoff's API user's (pass as `headers` to `Sandbox.rest`)."""
    return {"Authorization": f"Bearer {sales_rep_session(sandbox)}"}


def create_opportunity(sandbox: Sandbox, headers: dict[str, str], fields: dict[str, Any]) -> str:
    """An Opportunity created over REST (201) with these fields and `headers` (e.g. the
    rep's, `rep_headers`); its id."""
    opp = sandbox.rest("POST", f"{API}/sobjects/Opportunity/", headers=headers, json=fields)
    assert opp.status_code == 201, opp.text
    return str(opp.json()["id"])


@contextmanager
def sales_rep_client(sandbox: Sandbox) -> Iterator[simple_salesforce.Salesforce]:
    """The sales rep's own simple-salesforce client, editing the org beside Handoff."""
    with requests.Session() as http:
        http.verify, http.trust_env = str(sandbox.ca_pem), False
        http.mount("https://", LoginHostAdapter(sandbox.host, timeout_s=10))
        yield simple_salesforce.Salesforce(
            session_id=sales_rep_session(sandbox), instance_url=sandbox.base, session=http
        )


def connector_fixtures(folder: str) -> tuple[Any, Any, Any, Any]:
    """The fixtures of a connector test module, bound at its top as
    `server, sandbox, connector, rep = connector_fixtures("sf-name")`:

    - `server`: one sandbox for the module, its state in a temporary folder `folder`;
    - `sandbox`: that sandbox for one test, its recorded backoff sleeps cleared before
      the test and its faults, record locks and API limits reset after it;
    - `connector`: a connector to it logged in with client credentials;
    - `rep`: the sales rep's own simple-salesforce session (`sales_rep_client`).

    A factory, not a conftest: the HubSpot modules beside them have fixtures of their
    own named `sandbox` and `rep`."""

    @pytest.fixture(scope="module", name="server")
    def server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
        with running_sandbox(tmp_path_factory.mktemp(folder)) as sandbox:
            yield sandbox

    @pytest.fixture(name="sandbox")
    def sandbox_fixture(server: Sandbox) -> Iterator[Sandbox]:
        server.recorded_sleeps.clear()
        yield server
        server.reset()

    @pytest.fixture(name="connector")
    def connector_fixture(sandbox: Sandbox) -> SalesforceConnector:
        return connector_for(sandbox, auth_for(sandbox, "client_credentials"))

    @pytest.fixture(scope="module", name="rep")
    def rep_fixture(server: Sandbox) -> Iterator[simple_salesforce.Salesforce]:
        with sales_rep_client(server) as sf:
            yield sf

    return server_fixture, sandbox_fixture, connector_fixture, rep_fixture


def rep_opportunity(rep: simple_salesforce.Salesforce, **fields: Any) -> str:
    """A fresh Opportunity the rep creates (Prospecting, 100,000, closing 2026-12-31, a
    unique name), with any further `fields`; its id."""
    created = rep.Opportunity.create(
        {
            "Name": f"Deal {uuid.uuid4().hex[:8]}",
            "StageName": "Prospecting",
            "CloseDate": "2026-12-31",
            "Amount": 100_000,
            **fields,
        }
    )
    return str(created["id"])
