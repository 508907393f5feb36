"""Configuration from the environment (and `.env`), validated once at start-up.

Temporal settings use Temporal's own names (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
`TEMPORAL_API_KEY`, `TEMPORAL_TLS_CERT`...); everything else is `HANDOFF_*`. Secrets
are `SecretStr`: they print as `**********` and never reach a log line. A secret can
also be read from a file by setting `<NAME>_FILE` (Kubernetes and Docker secrets).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.names import TASK_QUEUE


def _env(name: str, prefix: str = "HANDOFF_") -> AliasChoices:
    return AliasChoices(name if name.startswith("TEMPORAL_") else prefix + name)


class Settings(BaseSettings):
    """All of Handoff's settings. See README "Configuration" for the full table."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    environment: Literal["development", "production"] = Field(
        default="development", validation_alias=_env("ENVIRONMENT")
    )
    state_dir: Path = Field(default=Path(".handoff"), validation_alias=_env("STATE_DIR"))
    policy_path: Path | None = Field(default=None, validation_alias=_env("POLICY"))
    stalls_dsn: SecretStr | None = Field(
        default=None,
        validation_alias=_env("STALLS_DSN"),
        description="The stage-event store for stall analytics (SQLAlchemy URL, e.g. "
        "postgresql+psycopg://handoff:...@db/handoff); unset: stalls.sqlite3 in the state folder.",
    )

    # Temporal
    temporal_address: str = Field(
        default="127.0.0.1:7233", validation_alias=_env("TEMPORAL_ADDRESS")
    )
    temporal_namespace: str = Field(default="default", validation_alias=_env("TEMPORAL_NAMESPACE"))
    temporal_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("TEMPORAL_API_KEY")
    )
    temporal_tls: bool = Field(default=False, validation_alias=_env("TEMPORAL_TLS"))
    temporal_tls_cert: Path | None = Field(default=None, validation_alias=_env("TEMPORAL_TLS_CERT"))
    temporal_tls_key: Path | None = Field(default=None, validation_alias=_env("TEMPORAL_TLS_KEY"))
    temporal_tls_ca: Path | None = Field(default=None, validation_alias=_env("TEMPORAL_TLS_CA"))
    task_queue: str = Field(default=TASK_QUEUE, validation_alias=_env("TASK_QUEUE"))
    build_id: str = Field(default="dev", validation_alias=_env("BUILD_ID"))
    worker_versioning: bool = Field(
        default=False,
        validation_alias=_env("WORKER_VERSIONING"),
        description="Register as build HANDOFF_BUILD_ID of deployment `handoff` (docs/deploy.md).",
    )

    # CRM
    crm: Literal["hubspot", "salesforce", "memory"] = Field(
        default="hubspot", validation_alias=_env("CRM")
    )
    sandbox_token: SecretStr = Field(
        default=SecretStr("handoff-sandbox"), validation_alias=_env("SANDBOX_TOKEN")
    )
    hubspot_host: str = Field(
        default="https://api.hubapi.com", validation_alias=_env("HUBSPOT_HOST")
    )
    hubspot_token: SecretStr | None = Field(default=None, validation_alias=_env("HUBSPOT_TOKEN"))
    hubspot_app_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("HUBSPOT_APP_SECRET")
    )
    salesforce_instance_url: str | None = Field(
        default=None, validation_alias=_env("SALESFORCE_INSTANCE_URL")
    )
    salesforce_domain: str = Field(default="login", validation_alias=_env("SALESFORCE_DOMAIN"))
    salesforce_login_host: str | None = Field(
        default=None, validation_alias=_env("SALESFORCE_LOGIN_HOST")
    )
    salesforce_ca_file: Path | None = Field(
        default=None, validation_alias=_env("SALESFORCE_CA_FILE")
    )
    salesforce_username: str | None = Field(
        default=None, validation_alias=_env("SALESFORCE_USERNAME")
    )
    salesforce_password: SecretStr | None = Field(
        default=None, validation_alias=_env("SALESFORCE_PASSWORD")
    )
    salesforce_security_token: SecretStr | None = Field(
        default=None, validation_alias=_env("SALESFORCE_SECURITY_TOKEN")
    )
    salesforce_consumer_key: str | None = Field(
        default=None, validation_alias=_env("SALESFORCE_CONSUMER_KEY")
    )
    salesforce_consumer_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("SALESFORCE_CONSUMER_SECRET")
    )
    salesforce_private_key_file: Path | None = Field(
        default=None, validation_alias=_env("SALESFORCE_PRIVATE_KEY_FILE")
    )
    salesforce_session_id: SecretStr | None = Field(
        default=None, validation_alias=_env("SALESFORCE_SESSION_ID")
    )

    change_feed: bool = Field(
        default=True,
        validation_alias=_env("CHANGE_FEED"),
        description="Salesforce: run the change-feed poller (starts LeadToCash on new deals).",
    )
    feed_poll_s: float = Field(default=30.0, validation_alias=_env("FEED_POLL_S"))

    # API and observability
    api_host: str = Field(default="127.0.0.1", validation_alias=_env("API_HOST"))
    api_port: int = Field(default=8080, validation_alias=_env("API_PORT"))
    public_url: str = Field(default="http://127.0.0.1:8080", validation_alias=_env("PUBLIC_URL"))
    metrics_port: int = Field(default=9464, validation_alias=_env("METRICS_PORT"))
    api_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        validation_alias=_env("API_TOKENS"),
        description='email → token, as JSON: {"maya@example.com": "..."}',
    )
    trusted_user_header: str | None = Field(
        default=None, validation_alias=_env("TRUSTED_USER_HEADER")
    )
    link_secret: SecretStr | None = Field(default=None, validation_alias=_env("LINK_SECRET"))
    link_ttl_hours: int = Field(default=72, validation_alias=_env("LINK_TTL_HOURS"))
    encryption_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        validation_alias=_env("ENCRYPTION_KEYS"),
        description="key id → base64 AES-256 key, as JSON; the first is used to encrypt.",
    )
    notifier: Literal["log", "smtp", "webhook", "dev"] = Field(
        default="log",
        validation_alias=_env("NOTIFIER"),
        description="dev: log and keep notices for the /outbox page (handoff dev only).",
    )
    smtp_host: str = Field(default="localhost", validation_alias=_env("SMTP_HOST"))
    smtp_port: int = Field(default=587, validation_alias=_env("SMTP_PORT"))
    smtp_from: str = Field(default="handoff@localhost", validation_alias=_env("SMTP_FROM"))
    smtp_username: str | None = Field(default=None, validation_alias=_env("SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(default=None, validation_alias=_env("SMTP_PASSWORD"))
    smtp_starttls: bool = Field(default=True, validation_alias=_env("SMTP_STARTTLS"))
    webhook_url: SecretStr | None = Field(default=None, validation_alias=_env("WEBHOOK_URL"))
    graceful_shutdown_s: int = Field(
        default=70,
        validation_alias=_env("GRACEFUL_SHUTDOWN_S"),
        description="How long a stopping worker lets running activities finish.",
    )
    codec_cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:8233", "http://127.0.0.1:8233"],
        validation_alias=_env("CODEC_CORS_ORIGINS"),
        description="Origins of the Temporal UI allowed to call the codec server (JSON list).",
    )
    codec_token: SecretStr | None = Field(default=None, validation_alias=_env("CODEC_TOKEN"))
    # Surfaces: refuse before reading, trust only listed proxies, metrics stay local
    max_body_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        validation_alias=_env("MAX_BODY_BYTES"),
        description="Largest JSON or form body the API and web pages read (413 above).",
    )
    webhook_max_body_bytes: int = Field(
        default=1_000_000,
        gt=0,
        validation_alias=_env("WEBHOOK_MAX_BODY_BYTES"),
        description="Largest body the webhook ingress (`/webhooks/...`) reads.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        validation_alias=_env("TRUSTED_PROXIES"),
        description="IPs or CIDRs (JSON list) whose user header and X-Forwarded-* are "
        "honoured; empty: never.",
    )
    metrics_host: str = Field(default="127.0.0.1", validation_alias=_env("METRICS_HOST"))
    ops_roles: list[str] = Field(
        default_factory=lambda: ["sales_ops"],
        validation_alias=_env("OPS_ROLES"),
        description="Policy roles (JSON list) whose people may read every deal and queue.",
    )
    encrypt_payloads: bool | None = Field(
        default=None,
        validation_alias=_env("ENCRYPT_PAYLOADS"),
        description="Default: on in production, off in development.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        """Each trusted proxy is an IP address or a CIDR network (no names, no `*`)."""
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError("each entry must be an IP address or CIDR network") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        """`<NAME>_FILE=/run/secrets/x` reads the secret `<NAME>` from that file."""
        if not isinstance(data, dict):
            return data
        for key, value in os.environ.items():
            if key.endswith("_FILE") and key[:-5] not in os.environ:
                target = key[:-5]
                if target.startswith(("HANDOFF_", "TEMPORAL_")) and target not in (
                    "TEMPORAL_TLS_CERT",
                    "TEMPORAL_TLS_KEY",
                    "TEMPORAL_TLS_CA",
                ):
                    text = Path(value).read_text(encoding="utf-8").strip()
                    # dict settings (API tokens, encryption keys) are JSON in the file too
                    data.setdefault(target, json.loads(text) if text.startswith("{") else text)
        return data

    @property
    def encryption_enabled(self) -> bool:
        if self.encrypt_payloads is not None:
            return self.encrypt_payloads
        return self.environment == "production"
