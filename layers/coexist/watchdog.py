"""The daily watch on the 14-day rule: every coexistence number whose Business App has been quiet for
10, 12 and 13 days is reported once per quiet spell (docs/OPERATIONS.md says what to do)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from coexist.store.numbers import AccountStore, NumberStore, quiet_of


@dataclass(frozen=True)
class Warning:
    phone_number_id: str
    days: int
    disconnect_expected_at: int


@dataclass
class AppWatchdog:
    numbers: NumberStore
    accounts: AccountStore
    notify: Callable[[Warning], None]
    clock: Callable[[], float] = time.time

    def run(self) -> list[Warning]:
        now = int(self.clock())
        given = []
        accounts: dict[str, dict | None] = {}
        for number in self.numbers.all():
            waba = number.get("waba_id")
            if waba and waba not in accounts:
                accounts[waba] = self.accounts.state(waba)
            quiet = quiet_of(number, accounts.get(waba), now)
            if quiet is None or quiet.warn_at is None:
                continue
            warning = Warning(number["phone_number_id"], quiet.warn_at, quiet.disconnect_expected_at)
            # Sent, then noted: a run that fails in between sends it again rather than never.
            self.notify(warning)
            self.numbers.record_inactivity_warning(warning.phone_number_id, quiet.warn_at, quiet.since, now)
            given.append(warning)
        return given
