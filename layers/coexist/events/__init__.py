"""Domain events for CRMs and other systems: what happened, on an Amazon EventBridge bus.

`models.py` holds one typed, versioned model per event; `publisher.py` puts them on the bus in
batches, after the business write they describe, never failing that write. The builders
(`from_webhook.py`, `from_chats.py`) turn what ingest and the chat repository did into events.
docs/EVENTS.md is generated from the models (`python -m coexist.events.catalog`).
"""
