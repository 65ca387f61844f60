"""Build the services from settings, once per process: the one place that knows which table
serves which store. Built on first use, never at import, so a cold start pays only for what the
function touches."""

from __future__ import annotations

from functools import lru_cache

from coexist import aws
from coexist.settings import settings


@lru_cache(maxsize=1)
def archive():
    from coexist.store.archive import Archive

    return Archive(aws.client("s3"), settings().archive_bucket)


@lru_cache(maxsize=1)
def intake():
    from coexist.intake import InboundQueue, Intake

    config = settings()
    return Intake(archive(), InboundQueue(aws.client("sqs"), config.inbound_queue_url, config.inline_body_limit))


@lru_cache(maxsize=1)
def inbox():
    from coexist.inbox import Inbox
    from coexist.store.chats import ChatStore
    from coexist.store.contacts import ContactStore
    from coexist.store.messages import MessageStore
    from coexist.store.numbers import AccountStore, NumberStore

    config = settings()
    return Inbox(
        messages=MessageStore(aws.table(config.messages_table)),
        chats=ChatStore(aws.table(config.chats_table)),
        contacts=ContactStore(aws.table(config.contacts_table)),
        numbers=NumberStore(aws.table(config.numbers_table)),
        accounts=AccountStore(aws.table(config.accounts_table)),
        archive=archive(),
    )


@lru_cache(maxsize=1)
def inbox_reader():
    from coexist.reads import InboxReader

    return InboxReader(inbox())


def reset() -> None:
    """Forget settings, clients and services (tests and local mode switch environments)."""
    for cached in (archive, intake, inbox, inbox_reader, settings):
        cached.cache_clear()
    aws.reset()
