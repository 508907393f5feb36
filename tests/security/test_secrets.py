"""Secrets come from the environment or files and never print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.settings import Settings


def test_secrets_are_read_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`<NAME>_FILE` reads the secret from a file (Kubernetes and Docker secrets),
    including JSON maps such as the API tokens."""
    token, tokens = tmp_path / "token", tmp_path / "tokens.json"
    token.write_text("pat-from-file\n")
    tokens.write_text(json.dumps({"maya@example.com": "maya-token"}))
    monkeypatch.setenv("HANDOFF_HUBSPOT_TOKEN_FILE", str(token))
    monkeypatch.setenv("HANDOFF_API_TOKENS_FILE", str(tokens))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.hubspot_token is not None
    assert settings.hubspot_token.get_secret_value() == "pat-from-file"
    assert settings.api_tokens["maya@example.com"].get_secret_value() == "maya-token"


def test_settings_never_show_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """repr, str and JSON dumps of the settings mask every secret."""
    secrets = {
        "HANDOFF_HUBSPOT_TOKEN": "pat-na1-123",
        "HANDOFF_HUBSPOT_APP_SECRET": "app-secret-456",
        "TEMPORAL_API_KEY": "tmprl-key-789",
        "HANDOFF_LINK_SECRET": "link-secret-abc",
        "HANDOFF_SALESFORCE_PASSWORD": "sf-pass-def",
        "HANDOFF_ENCRYPTION_KEYS": json.dumps({"k1": "a2V5LWtleS1rZXk="}),
        "HANDOFF_API_TOKENS": json.dumps({"maya@example.com": "api-token-ghi"}),
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for value in (
        "pat-na1-123",
        "app-secret-456",
        "tmprl-key-789",
        "link-secret-abc",
        "sf-pass-def",
        "a2V5LWtleS1rZXk=",
        "api-token-ghi",
    ):
        assert value not in shown
    assert "**********" in shown
