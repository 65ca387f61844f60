"""`python -m local`, recording the functions' AWS calls (the e2e suite starts local mode this way
when the test session records calls; see recorder.py)."""

from __future__ import annotations

import sys

from tests.contract import recorder

if __name__ == "__main__":
    recorder.install()
    from local.__main__ import main

    sys.exit(main())
