"""Dev-only tools (dev stack, bench, scaffold): the `dev` extra, never in production.

Like the CRM emulators in the top-level `sandbox/` package, they are not in the wheel:
they run from a checkout. Importing this package puts the checkout's root on
`sys.path`, so `sandbox` imports however the checkout was installed (an editable
install maps only the wheel's packages).
"""

import os
import sys
from pathlib import Path

#: The checkout these tools run from (the folder holding `sandbox/` and `worker/`).
#: `os.path`, not `Path.resolve()`/`is_dir()`: the bench's baseline workflow lives in this
#: package, so the workflow sandbox imports it, and it refuses those `pathlib` calls.
CHECKOUT = Path(os.path.realpath(__file__)).parents[2]

if os.path.isdir(CHECKOUT / "sandbox") and str(CHECKOUT) not in sys.path:
    sys.path.append(str(CHECKOUT))
