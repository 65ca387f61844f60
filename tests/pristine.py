"""An emulated account's resources made once per process, then restored for each test.

Creating Coexist's resources in the emulator takes about sixty AWS calls (every table, queue,
bucket, topic and rule; 0.4 s of CPU), and every integration test starts from a fresh account:
made per test, that was a third of the integration suite's time. The emulator keeps an account's
state in its service backends, so the first account a process makes is copied right after its
resources exist, and each later account gets a deep copy of that copy instead of the calls. The
state is the same (the same names, the same attributes); nothing one test writes reaches another,
because each test gets its own copy.
"""

from __future__ import annotations

import copy
import copyreg
import threading
from collections.abc import Callable

from moto.core.base_backend import BackendDict

# The emulator guards its queues and tables with locks, which cannot be copied: a copy of a backend
# gets new ones, unlocked, as a backend nobody is using holds them. A condition is made anew around
# its lock's copy (copied field by field, it would keep calling the first lock's methods).
copyreg.pickle(type(threading.Lock()), lambda _: (threading.Lock, ()))
copyreg.pickle(type(threading.RLock()), lambda _: (threading.RLock, ()))
copyreg.pickle(threading.Condition, lambda condition: (threading.Condition, (condition._lock,)))


class PristineAccount:
    """What `create` made in the emulator, kept once, handed out as a fresh copy each time."""

    def __init__(self) -> None:
        self._services: list[BackendDict] = []
        self._kept: list[dict] = []
        self._env: dict[str, str] | None = None

    def make(self, create: Callable[[], dict[str, str]]) -> dict[str, str]:
        """Inside an active emulator that holds nothing yet: the resources, and their names."""
        if self._env is None:
            env = create()
            # Every service the creation touched, every account and region of it, in one copy (a
            # backend naming another's objects keeps naming the same copy).
            self._services = list(BackendDict._instances)
            self._kept = copy.deepcopy([{account: dict(regions) for account, regions in service.items()}
                                        for service in self._services])
            self._env = env
        else:
            for service, accounts in zip(self._services, copy.deepcopy(self._kept)):
                for account, regions in accounts.items():
                    holder = service[account]  # marks the service in use, as a call to it would
                    for region, backend in regions.items():
                        dict.__setitem__(holder, region, backend)
        return dict(self._env)
