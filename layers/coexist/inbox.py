"""The inbox's repositories, bundled: what ingest writes and the API reads."""

from __future__ import annotations

from dataclasses import dataclass

from coexist.store.archive import Archive
from coexist.store.chats import ChatRepository
from coexist.store.contacts import ContactStore
from coexist.store.customers import CustomerStore
from coexist.store.messages import MessageStore
from coexist.store.numbers import AccountStore, NumberStore


@dataclass
class Inbox:
    messages: MessageStore
    chats: ChatRepository
    contacts: ContactStore
    numbers: NumberStore
    accounts: AccountStore
    archive: Archive
    customers: CustomerStore  # who each customer is, by any identifier
