"""Signed approve/reject links: an approver decides from an email or chat message.

A link token is `hl1.<claims>.<signature>`: strict unpadded base64url JSON claims and an
HMAC-SHA256 over them with `settings.link_secret`. The claims bind the link to one
approver, one workflow id (of any handoff type, with its crm and deal), one approval
round and tier, one decision and an expiry; the link pages decide on exactly the
handoff that workflow id names. The
approve and reject links of one request share a link id, and a link id can be used
once (recorded in `<state_dir>/links.sqlite3`), so using one spends both.

Verification here covers what the token alone can tell (signature, expiry, reuse).
Whether the approval is still pending, for this round and tier and this approver, is
checked against the workflow's status by the link pages before anything changes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from activities.notify import ApprovalNotice
from worker.settings import Settings
from worker.state import private_file

PREFIX = "hl1"
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
Decision = Literal["approve", "reject"]


class LinkClaims(BaseModel):
    """What a link token says; all of it is covered by the signature."""

    id: str
    approver: str
    workflow_id: str
    crm: str
    deal_id: str
    round: int
    tier: str
    decision: Decision
    expires: int

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


class LinkError(Exception):
    """A link that must not be used; `why` names the case and `status` the HTTP code."""

    why = "invalid"
    status = 400

    def __init__(self, message: str, claims: LinkClaims | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.claims = claims


class LinkTampered(LinkError):
    """The signature does not match: altered, truncated or signed with another key."""

    why, status = "tampered", 403


class LinkExpired(LinkError):
    """Past the expiry in its claims."""

    why, status = "expired", 410


class LinkUsed(LinkError):
    """Already used (this link or its sibling approve/reject link)."""

    why, status = "used", 410


class LinkWrongApprover(LinkError):
    """Bound to someone who is not (or no longer) asked, or to another signed-in user."""

    why, status = "wrong_approver", 403


class LinkSuperseded(LinkError):
    """The terms, round or tier moved on since it was sent, or nothing is pending."""

    why, status = "superseded", 409


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _canonical(text: str) -> bool:
    """Unpadded URL-safe base64 exactly as `_b64` writes it (the decoder alone would skip
    foreign characters and ignore trailing bits)."""
    try:
        return _B64URL.fullmatch(text) is not None and _b64(_unb64(text)) == text
    except (binascii.Error, ValueError):
        return False


def _unb64(text: str) -> bytes:
    """Strict unpadded base64url: any character outside the alphabet, padding, or a
    non-canonical encoding (stray low bits) is refused, so one token has one spelling."""
    if "=" in text:
        raise binascii.Error("padding is not allowed")
    data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    if _b64(data) != text:
        raise binascii.Error("non-canonical base64")
    return data


class UsedLinks:
    """The ids of spent links, in a small SQLite table (shared by API replicas on one disk)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        private_file(path)  # 0600: the ledger of who decided what
        self._path = path
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS used_links (id TEXT PRIMARY KEY, used_at REAL NOT NULL,"
                " expires REAL NOT NULL, approver TEXT NOT NULL, decision TEXT NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=10, isolation_level=None)

    def is_used(self, link_id: str) -> bool:
        with self._lock, self._connect() as db:
            row = db.execute("SELECT 1 FROM used_links WHERE id = ?", (link_id,)).fetchone()
        return row is not None

    def claim(self, claims: LinkClaims) -> bool:
        """Mark the link used; False if it already was (atomic across processes)."""
        now = time.time()
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM used_links WHERE expires < ?", (now - 86_400,))
            try:
                db.execute(
                    "INSERT INTO used_links VALUES (?, ?, ?, ?, ?)",
                    (claims.id, now, claims.expires, claims.approver, claims.decision),
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def release(self, link_id: str) -> None:
        """Give a claim back when the decision could not be delivered (Temporal down)."""
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM used_links WHERE id = ?", (link_id,))


class SignedLinks:
    """Makes and checks signed approval links (implements `activities.notify.LinkMaker`)."""

    def __init__(
        self,
        secret: str,
        *,
        public_url: str,
        state_dir: Path,
        ttl: timedelta = timedelta(hours=72),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("link_secret must be at least 16 characters")
        self._key = hashlib.sha256(b"handoff-links:" + secret.encode()).digest()
        self.public_url = public_url.rstrip("/")
        self.ttl = ttl
        self.used = UsedLinks(state_dir / "links.sqlite3")
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> SignedLinks | None:
        """None when no `HANDOFF_LINK_SECRET` is set (notices then carry no links)."""
        if settings.link_secret is None:
            return None
        return cls(
            settings.link_secret.get_secret_value(),
            public_url=settings.public_url,
            state_dir=settings.state_dir,
            ttl=timedelta(hours=settings.link_ttl_hours),
        )

    # -- making ----------------------------------------------------------------------------
    def links_for(self, notice: ApprovalNotice, approver: str) -> dict[str, str]:
        """An approve and a reject URL for `approver`, sharing one single-use id."""
        link_id = secrets.token_urlsafe(12)
        expires = int(self._clock() + self.ttl.total_seconds())
        tokens = {
            decision: self.sign(
                LinkClaims(
                    id=link_id,
                    approver=approver.strip().lower(),
                    workflow_id=notice.workflow_id,
                    crm=notice.crm,
                    deal_id=notice.deal_id,
                    round=notice.round,
                    tier=notice.tier,
                    decision=decision,
                    expires=expires,
                )
            )
            for decision in ("approve", "reject")
        }
        return {decision: f"{self.public_url}/links/{token}" for decision, token in tokens.items()}

    def sign(self, claims: LinkClaims) -> str:
        body = _b64(json.dumps(claims.model_dump(), separators=(",", ":")).encode())
        return f"{PREFIX}.{body}.{_b64(self._mac(body))}"

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, f"{PREFIX}.{body}".encode(), "sha256").digest()

    # -- checking --------------------------------------------------------------------------
    def verify(self, token: str) -> LinkClaims:
        """The claims of a genuine, unexpired, unused link; raises a `LinkError` otherwise."""
        prefix, _, rest = token.partition(".")
        body, _, sig = rest.partition(".")
        if prefix != PREFIX or not body or not sig:
            raise LinkTampered("This link is not a Handoff approval link.")
        if not (_canonical(body) and _canonical(sig)):  # one spelling per link, no slack
            raise LinkTampered("This link's signature does not match: it was altered or forged.")
        try:
            valid = hmac.compare_digest(_unb64(sig), self._mac(body))
            claims = LinkClaims.model_validate_json(_unb64(body)) if valid else None
        except (binascii.Error, ValueError, ValidationError):
            claims = None
        if claims is None:
            raise LinkTampered("This link's signature does not match: it was altered or forged.")
        if self._clock() >= claims.expires:
            raise LinkExpired(
                f"This link expired at {claims.expires_at:%Y-%m-%d %H:%M} UTC.", claims
            )
        if self.used.is_used(claims.id):
            raise LinkUsed("This link was already used; a decision was made with it.", claims)
        return claims

    def claim(self, claims: LinkClaims) -> None:
        """Spend the link (and its sibling); raises `LinkUsed` if someone was faster."""
        if not self.used.claim(claims):
            raise LinkUsed("This link was already used; a decision was made with it.", claims)
