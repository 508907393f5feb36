"""The AES-GCM payload codec: round trip, rotation, tampering, pass-through, settings."""

from __future__ import annotations

import base64
import json

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from worker.codec import ENCODING, KEY_ID, CodecError, EncryptionCodec, generate_key
from worker.settings import Settings

OLD, NEW = b"o" * 32, b"n" * 32


def plain(text: str) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([{"deal": text}])[0]


async def test_round_trip_hides_the_data_and_restores_it() -> None:
    """Encrypted payloads carry no plaintext and decode to the original payload."""
    codec = EncryptionCodec({"k1": NEW})
    original = plain("Acme Corp — 30% discount")
    (sealed,) = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k1"
    assert b"Acme" not in sealed.data and b"json" not in sealed.data
    assert await codec.decode([sealed]) == [original]


async def test_rotation_decodes_old_payloads_and_encrypts_with_the_new_key() -> None:
    """After prepending a new key, old payloads still decode; new ones use the new id."""
    (old_sealed,) = await EncryptionCodec({"k-old": OLD}).encode([plain("before")])
    rotated = EncryptionCodec({"k-new": NEW, "k-old": OLD})
    assert await rotated.decode([old_sealed]) == [plain("before")]
    (new_sealed,) = await rotated.encode([plain("after")])
    assert new_sealed.metadata[KEY_ID] == b"k-new"


async def test_tampered_ciphertext_fails_clearly() -> None:
    """Flipping one byte fails authentication with an error naming the key id only."""
    codec = EncryptionCodec({"k1": NEW})
    (sealed,) = await codec.encode([plain("x")])
    flipped = bytes([sealed.data[-1] ^ 0x01])  # a fixed b"\x00" is no change 1 time in 256
    broken = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + flipped)
    with pytest.raises(CodecError, match="'k1' failed authentication") as info:
        await codec.decode([broken])
    assert base64.b64encode(NEW).decode() not in str(info.value)


async def test_a_payload_cannot_be_relabelled_to_another_key() -> None:
    """The key id is authenticated: naming a different (known) key fails."""
    codec = EncryptionCodec({"a": NEW, "b": NEW})
    (sealed,) = await codec.encode([plain("x")])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"b"}, data=sealed.data)
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([relabelled])


async def test_unknown_key_id_names_the_id_and_the_configured_ones() -> None:
    """A payload under a retired key says which key is missing."""
    (sealed,) = await EncryptionCodec({"gone": OLD}).encode([plain("x")])
    with pytest.raises(CodecError, match=r"key id 'gone'.*configured: \['k1'\]"):
        await EncryptionCodec({"k1": NEW}).decode([sealed])


async def test_unencrypted_payloads_pass_through() -> None:
    """Histories from before encryption was switched on still read."""
    original = plain("legacy")
    assert await EncryptionCodec({"k1": NEW}).decode([original]) == [original]


def test_production_without_keys_refuses_to_start() -> None:
    """Encryption is on by default in production; no key is a clear start-up error."""
    settings = Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    assert settings.encryption_enabled
    with pytest.raises(CodecError, match="HANDOFF_ENCRYPTION_KEYS is empty"):
        EncryptionCodec.from_settings(settings)


def test_production_settings_build_an_encrypting_converter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With keys from the environment, the data converter encrypts by default."""
    from worker.client.temporal import data_converter

    monkeypatch.setenv("HANDOFF_ENCRYPTION_KEYS", json.dumps({"k1": generate_key()}))
    settings = Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    assert isinstance(data_converter(settings).payload_codec, EncryptionCodec)
    dev = Settings(_env_file=None, environment="development")  # type: ignore[call-arg]
    assert data_converter(dev).payload_codec is None


def test_bad_key_material_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-base64 or short keys fail naming the key id, never echoing the value."""
    monkeypatch.setenv("HANDOFF_ENCRYPTION_KEYS", json.dumps({"k1": "not base64!!"}))
    settings = Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    with pytest.raises(CodecError, match=r"\['k1'\] is not valid base64") as info:
        EncryptionCodec.from_settings(settings)
    assert "not base64!!" not in str(info.value)
    with pytest.raises(CodecError, match="must be 32 bytes"):
        EncryptionCodec({"short": b"x" * 16})
