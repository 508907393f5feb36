"""AES-256-GCM payload encryption for Temporal, with key ids and rotation.

Every payload (workflow inputs, signals, activity results: deal data) is serialised,
encrypted with the first configured key, and stored as `binary/encrypted` with the key
id in its metadata. Any configured key decrypts, so rotation is: put a new key first,
keep the old ones until no open history needs them. The key id is GCM's associated
data, so a blob cannot be relabelled to another key. Payloads that are not encrypted
(histories from before encryption was turned on) pass through unchanged.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from worker.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(ValueError):
    """A payload cannot be decrypted (unknown key id, tampered data). Never holds a key."""


class EncryptionCodec(PayloadCodec):
    """Encrypts with the first key, decrypts with whichever key a payload names."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise CodecError("at least one encryption key is required")
        for kid, key in keys.items():
            if len(key) != 32:
                raise CodecError(f"key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_key_id = next(iter(keys))

    @classmethod
    def from_settings(cls, settings: Settings) -> EncryptionCodec:
        """From `HANDOFF_ENCRYPTION_KEYS` ({"key id": "base64 of 32 bytes"}, first encrypts).

        Encryption on with no key is an error at start-up, never a silent plaintext store.
        """
        if not settings.encryption_keys:
            raise CodecError(
                "payload encryption is on (the production default) but "
                "HANDOFF_ENCRYPTION_KEYS is empty; add a key (`handoff keys new`) or set "
                "HANDOFF_ENCRYPT_PAYLOADS=false explicitly"
            )
        keys: dict[str, bytes] = {}
        for kid, secret in settings.encryption_keys.items():
            try:
                keys[kid] = base64.b64decode(secret.get_secret_value(), validate=True)
            except ValueError:
                raise CodecError(f"HANDOFF_ENCRYPTION_KEYS[{kid!r}] is not valid base64") from None
        return cls(keys)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        aead = self._keys[self.active_key_id]
        aad = self.active_key_id.encode()
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = aead.encrypt(nonce, payload.SerializeToString(), aad)
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID: aad},
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)  # written before encryption was turned on
                continue
            kid = payload.metadata.get(KEY_ID, b"").decode()
            aead = self._keys.get(kid)
            if aead is None:
                raise CodecError(
                    f"payload was encrypted with key id {kid!r}, which is not configured "
                    f"(configured: {sorted(self._keys)})"
                )
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            try:
                plain = aead.decrypt(nonce, sealed, kid.encode())
            except InvalidTag:
                raise CodecError(f"payload under key id {kid!r} failed authentication") from None
            out.append(Payload.FromString(plain))
        return out


def generate_key() -> str:
    """A new random AES-256 key, base64-encoded for `HANDOFF_ENCRYPTION_KEYS`."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def new_key_id() -> str:
    """A short, sortable-enough id for a new key (e.g. `k-3f9a1c`)."""
    return f"k-{secrets.token_hex(3)}"
