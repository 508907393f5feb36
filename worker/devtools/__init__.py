"""Dev-only tools (dev stack, bench, scaffold): the `dev` extra, never in production.

Like the CRM emulators in the top-level `sandbox/` package, they are not in the wheel:
they run from a checkout. Importing this package puts the checkout's root on
`sys.path`, so `sandbox` imports however the checkout was installed (an editable
install maps only the wheel's packages).
"""

import sys
from pathlib import Path

#: The checkout these tools run from (the folder holding `sandbox/` and `worker/`).
CHECKOUT = Path(__file__).resolve().parents[2]

if (CHECKOUT / "sandbox").is_dir() and str(CHECKOUT) not in sys.path:
    sys.path.append(str(CHECKOUT))
