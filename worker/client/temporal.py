"""Connecting to Temporal: one place for the data converter, TLS, API keys and setup."""

from __future__ import annotations

import dataclasses

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from worker.settings import Settings
from workflows.names import SEARCH_ATTRIBUTES

log = structlog.get_logger("handoff.temporal")

_INDEXED = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic JSON payloads, encrypted with AES-GCM when encryption is enabled."""
    if not settings.encryption_enabled:
        return pydantic_data_converter
    from worker.codec import EncryptionCodec

    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec.from_settings(settings),
        # failure messages (a refusal's reason names people) are encrypted too
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def _tls(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        return TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
            server_root_ca_cert=(
                settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None
            ),
        )
    return settings.temporal_tls or settings.temporal_api_key is not None


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client for the configured cluster (dev server, self-hosted or Temporal Cloud)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=(
            settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
        ),
        tls=_tls(settings),
        data_converter=data_converter(settings),
        runtime=runtime,
    )


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register Handoff's search attributes if missing; returns the ones added.

    Needs operator rights; on Temporal Cloud register them once with `tcld` instead
    (see docs/deploy.md), and this logs a warning rather than failing.
    """
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        known = set(existing.custom_attributes)
    except RPCError:  # the time-skipping test server cannot list, but can add
        known = set()
    missing = {
        name: _INDEXED[kind] for name, kind in SEARCH_ATTRIBUTES.items() if name not in known
    }
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    except RPCError as exc:  # no operator rights: tell ops, keep running
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            log.warning("could not register search attributes", error=exc.message)
            return []
    return sorted(missing)
