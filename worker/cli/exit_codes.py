"""The `handoff` exit codes: one table from each typed refusal to the code a script sees.

- 0: done.
- 1: refused, not possible in the handoff's state now: `not_pending`, `duplicate`,
  `terms_fixed`, `ended`.
- 2: bad input: a usage error, an invalid payload (`invalid`, `unknown_message`,
  `too_large`), an unknown handoff type, bad configuration.
- 3: Temporal could not be reached or did not answer.
- 4: refused, you may not do this: `not_authorised`.
- 5: no such handoff (never started for this deal and type).
"""

from __future__ import annotations

from workflows.names import Refusal

OK = 0
CONFLICT = 1
BAD_INPUT = 2
UNAVAILABLE = 3
NOT_AUTHORISED = 4
NOT_FOUND = 5

#: Each refusal code to its exit code (every `Refusal` has a row).
EXIT_CODES: dict[Refusal, int] = {
    Refusal.NOT_PENDING: CONFLICT,
    Refusal.DUPLICATE: CONFLICT,
    Refusal.TERMS_FIXED: CONFLICT,
    Refusal.ENDED: CONFLICT,
    Refusal.INVALID: BAD_INPUT,
    Refusal.UNKNOWN_MESSAGE: BAD_INPUT,
    Refusal.TOO_LARGE: BAD_INPUT,
    Refusal.NOT_AUTHORISED: NOT_AUTHORISED,
}

#: The table in words, for `handoff --help`.
HELP = (
    "Exit codes: 0 done; 1 refused in the handoff's state (not_pending, duplicate, "
    "terms_fixed, ended); 2 bad input (usage, invalid, unknown_message, too_large, "
    "unknown type, bad configuration); 3 Temporal unreachable; 4 not_authorised; "
    "5 no such handoff."
)
