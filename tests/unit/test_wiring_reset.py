"""`wiring.reset` forgets every service it caches (tests and local mode switch accounts): a service
left cached would keep writing to the previous account's tables."""

from __future__ import annotations

from coexist import resources, wiring


def _services():
    return [wiring.message_store(), wiring.chat_repository(), wiring.contact_store(), wiring.number_store(),
            wiring.account_store(), wiring.sweeper(), wiring.throttle(), wiring.settings()]


def test_a_reset_forgets_every_service_so_the_next_account_gets_its_own(monkeypatch):
    for spec in resources.TABLES:
        monkeypatch.setenv(spec.env_var, f"coexist-first-{spec.logical_id}")
    monkeypatch.setenv("OUTBOUND_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/first")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    wiring.reset(keep_clients=True)
    try:
        first = _services()
        assert first == _services() and all(a is b for a, b in zip(first, _services()))  # cached meanwhile
        for spec in resources.TABLES:
            monkeypatch.setenv(spec.env_var, f"coexist-second-{spec.logical_id}")
        wiring.reset(keep_clients=True)
        second = _services()
        assert not [type(a).__name__ for a, b in zip(first, second) if a is b]
        assert second[0].table.name == f"coexist-second-{resources.MESSAGES.logical_id}"
    finally:
        # The clients too: made here, outside any emulated account, they would be kept by the next
        # test's account (same names, same endpoint) and reach for AWS itself.
        wiring.reset()
