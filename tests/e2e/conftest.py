"""The session-wide local-mode process every e2e test drives; helpers live in harness.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import LocalMode, start_local_mode


@pytest.fixture(scope="session")
def local_mode() -> Iterator[LocalMode]:
    with start_local_mode() as running:
        yield running
