"""Logging for every Handoff process: structlog, JSON in production, pretty in development.

`configure_logging()` routes the standard library's logging (uvicorn's, temporalio's
`workflow.logger` and `activity.logger`) through the same structlog processors, so
every line has one shape. Two promises:

- **Secrets never appear.** `redact` masks values under secret-looking keys (token,
  secret, password, authorization, api_key, cookie, link...), bearer tokens and signed
  link tokens inside any text, and any value registered with `register_secrets()`.
- **Deal context is on every line where it is known.** Bind it with `deal_context()`
  (crm, deal_id, workflow_id, stage, approver); Temporal's own records carry the
  workflow id, from which the crm and deal id are derived.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
SECRET_KEYS = re.compile(
    r"token|secret|passw|authori[sz]ation|api[_-]?key|cookie|session|signature|link|"
    r"private[_-]?key|credential",
    re.IGNORECASE,
)
#: Text that carries a credential: bearer tokens, signed links (`hl1.<claims>.<sig>`).
SECRET_TEXT = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"\bhl1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "hl1." + REDACTED),
    # credentials inside URLs: user:password@, and secret-looking query parameters
    (re.compile(r"(?i)\b(https?://)[^/\s:@]+:[^/\s@]+@"), r"\1" + REDACTED + "@"),
    (
        re.compile(
            r"(?i)([?&][a-z0-9_.-]*(?:token|key|secret|sig|signature|passw|auth|code)"
            r"[a-z0-9_.-]*=)[^&\s\"']+"
        ),
        r"\1" + REDACTED,
    ),
)
#: HTTP client libraries log each request's full URL at INFO or DEBUG, and some URLs
#: are credentials (a chat webhook): they log warnings and errors only.
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "requests", "hpack", "simple_salesforce")
CONTEXT_KEYS = ("crm", "deal_id", "workflow_id", "stage", "approver")
_WORKFLOW_ID = re.compile(r"^lead-to-cash-(?P<crm>[a-z]+)-(?P<deal_id>.+?)(?:-approval-r\d+)?$")
_secrets: set[str] = set()


def register_secrets(*values: str | None) -> None:
    """Mask these exact values wherever they appear (API tokens, link secret...)."""
    _secrets.update(v for v in values if v and len(v) >= 4)


def _scrub(text: str) -> str:
    for pattern, replacement in SECRET_TEXT:
        text = pattern.sub(replacement, text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if key and SECRET_KEYS.search(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, MutableMapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact_value("", v) for v in value]
    return value


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets by key and by shape (see the module docstring)."""
    for key in list(event_dict):
        if key in ("event", "level", "timestamp", "logger"):
            value = event_dict[key]
            event_dict[key] = _scrub(value) if isinstance(value, str) else value
        else:
            event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


def lift_temporal_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Turn temporalio's `extra` (workflow/activity info) into flat deal context."""
    for extra_key in ("temporal_workflow", "temporal_activity"):
        info = event_dict.pop(extra_key, None)
        if isinstance(info, dict):
            for src, dst in (
                ("workflow_id", "workflow_id"),
                ("workflow_type", "workflow_type"),
                ("activity_type", "activity_type"),
                ("attempt", "attempt"),
            ):
                if src in info and dst not in event_dict:
                    event_dict[dst] = info[src]
    wf_id = event_dict.get("workflow_id")
    if isinstance(wf_id, str) and (m := _WORKFLOW_ID.match(wf_id)):
        event_dict.setdefault("crm", m["crm"])
        event_dict.setdefault("deal_id", m["deal_id"])
    return event_dict


def bind_deal_context(**values: str | None) -> None:
    """Bind crm, deal_id, workflow_id, stage or approver for this task's log lines."""
    unknown = set(values) - set(CONTEXT_KEYS)
    if unknown:
        raise ValueError(f"unknown log context {sorted(unknown)}; allowed: {CONTEXT_KEYS}")
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v})


@contextmanager
def deal_context(**values: str | None) -> Iterator[None]:
    """`with deal_context(crm=..., deal_id=...):` binds for the block, then restores."""
    with structlog.contextvars.bound_contextvars(
        **{k: v for k, v in values.items() if v and k in CONTEXT_KEYS}
    ):
        yield


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(allow=["temporal_workflow", "temporal_activity"]),
        lift_temporal_context,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(
    environment: str, *, level: int | str = logging.INFO, stream: TextIO | None = None
) -> None:
    """JSON lines in production, coloured console output in development, secrets masked.

    Replaces the root logger's handlers, so call it once at process start.
    """
    production = environment == "production"
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if production
        else console_renderer(tty=(stream or sys.stderr).isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if production else _keep,
            redact,
            _scrubbed(renderer),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "temporalio"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # reconfiguring (tests, `handoff dev`) must take effect
    )


def console_renderer(*, tty: bool) -> structlog.dev.ConsoleRenderer:
    """Development's console lines. Tracebacks never show locals: rendering a failed
    activity's locals (connectors, client models, partials) took ~0.5 s of the worker's
    GIL per failure, so a CRM returning errors starved the event loop until queries went
    unanswered (`handoff bench`'s fault phase failed so), and locals are where secrets
    sit that no pattern knows. A terminal gets rich's coloured traceback; a file or pipe
    the plain one."""
    formatter = (
        structlog.dev.RichTracebackFormatter(show_locals=False)
        if tty
        else structlog.dev.plain_traceback
    )
    return structlog.dev.ConsoleRenderer(colors=tty, exception_formatter=formatter)


def _scrubbed(renderer: Processor) -> Processor:
    """Scrub the rendered line too: catches secrets inside pretty-printed tracebacks."""

    def render(logger: WrappedLogger, name: str, event_dict: EventDict) -> Any:
        line = renderer(logger, name, event_dict)
        return _scrub(line) if isinstance(line, str) else line

    return render


def _keep(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The console renderer formats exceptions itself (with colours)."""
    return event_dict
